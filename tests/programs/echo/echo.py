def main(backend, user_messenger, **kwargs):
    return kwargs
