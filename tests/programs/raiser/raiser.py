def main(backend, user_messenger, **kwargs):
    user_messenger.publish({"before": "raising"})
    print("about to fail")
    return {}["missing-key"]
