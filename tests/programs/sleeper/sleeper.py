import time


def main(backend, user_messenger, seconds=1.0, **kwargs):
    user_messenger.publish({"started": True})
    time.sleep(seconds)
    return {"slept": seconds}
