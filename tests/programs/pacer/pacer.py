import math
import time


def main(backend, user_messenger, rate_hz=50.0, count=100, **kwargs):
    """Publish ``count`` VQE-like interim results at a steady ``rate_hz``, with counts."""
    start = time.monotonic()
    for index in range(1, count + 1):
        delay = start + index / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        energy = -1.85 + 0.9 * math.exp(-index / 60) + 0.01 * math.sin(index)
        ones = 500 + (index * 37) % 200
        user_messenger.publish({"iteration": index, "energy": energy,
                                "counts": {"00": 1024 - ones, "11": ones}})
    return {"published": count, "seconds": time.monotonic() - start}
