import time


def main(backend, user_messenger, count=10, interval=0.0, final=None, **kwargs):
    for index in range(1, count + 1):
        user_messenger.publish({"index": index})
        if interval:
            time.sleep(interval)
    if final is not None:
        user_messenger.publish(final, final=True)
        return None
    return f"published {count}"
