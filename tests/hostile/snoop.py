"""A hostile tenant: looks for another tenant's secret in every process it can see."""
import os


def main(backend, user_messenger, prefix="", **kwargs):
    me = str(os.getpid())
    seen, found = [], []
    needle = prefix.encode() + b"-"
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        seen.append(int(pid))
        for name in ("environ", "cmdline", "mem"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as handle:
                    if needle in handle.read(1 << 20):
                        found.append(f"{pid}/{name}")
            except OSError:
                pass
    return {"seen": seen, "found": found}
