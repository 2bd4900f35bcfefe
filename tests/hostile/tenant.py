"""A tenant's long job holding a secret in its memory and its environment."""
import os
import time


def main(backend, user_messenger, secret="", seconds=60, **kwargs):
    os.environ["TENANT_SECRET"] = secret
    kept = [secret * 4]
    user_messenger.publish({"holding": True})
    time.sleep(seconds)
    return len(kept)
