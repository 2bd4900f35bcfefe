import logging


def main(backend, user_messenger, **kwargs):
    log = logging.getLogger("logger-program")
    log.info("info line from the program")
    log.warning("warning line from the program")
    return "logged"
