import os


def main(backend, user_messenger, marker="x", **kwargs):
    found = sorted(os.listdir("."))
    with open(marker, "w") as handle:
        handle.write(marker)
    return {"cwd": os.getcwd(), "found": found}
