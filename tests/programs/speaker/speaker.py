import logging


def main(backend, user_messenger, interim=(), final=None, returns=None, **kwargs):
    print("printed line")
    log = logging.getLogger("speaker")
    log.debug("debug record")
    log.info("info record")
    log.warning("warning record")
    log.error("error record")
    for message in interim:
        user_messenger.publish(message)
    if final is not None:
        user_messenger.publish(final, final=True)
    return returns
