def main(backend, user_messenger, chunk_mb=256, **kwargs):
    hoard = []
    while True:
        hoard.append(bytearray(chunk_mb * 1024 * 1024))
