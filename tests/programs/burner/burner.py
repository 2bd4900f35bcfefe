import time


def main(backend, user_messenger, cpu_seconds=2.0, hold_mb=0, **kwargs):
    """Burns about ``cpu_seconds`` of CPU while holding ``hold_mb`` of touched memory."""
    held = bytearray(hold_mb * 1024 * 1024)
    for offset in range(0, len(held), 4096):
        held[offset] = 1  # touch every page, so it is resident
    start = time.process_time()
    spins = 0
    while time.process_time() - start < cpu_seconds:
        spins += 1
    return {"spins": spins, "held_mb": hold_mb}
