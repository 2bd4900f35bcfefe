import time


def main(backend, user_messenger, count=10, hold_at=None, interval_s=0.0, oversized=False, **kwargs):
    """Publish 1..count, each with a checkpoint; a first run holds after ``hold_at`` (its worker is to be killed)."""
    if oversized:
        try:
            user_messenger.checkpoint("x" * (user_messenger._max_checkpoint_bytes + 1))
        except ValueError as exc:
            return {"refused": str(exc)}
        return {"refused": None}
    restored = user_messenger.restore()
    first = 1 if restored is None else restored["done"] + 1
    for number in range(first, count + 1):
        if interval_s:
            time.sleep(interval_s)
        user_messenger.publish({"number": number}, checkpoint={"done": number})
        if restored is None and number == hold_at:
            while True:  # the test kills this run's worker here
                time.sleep(1)
    return {"resumed_after": None if restored is None else restored["done"]}
