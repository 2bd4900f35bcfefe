import time


def main(backend, user_messenger, count=100, interval=0.01, pad=0, **kwargs):
    padding = "x" * pad
    for index in range(1, count + 1):
        user_messenger.publish({"i": index, "t": time.time(), "pad": padding})
        if interval:
            time.sleep(interval)
    return f"published {count}"
