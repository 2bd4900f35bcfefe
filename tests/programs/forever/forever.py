import time


def main(backend, user_messenger, **kwargs):
    count = 0
    while True:
        count += 1
        if count % 10 == 0:
            user_messenger.publish({"count": count})
        time.sleep(0.01)
