"""The domain core shared by the API and the workers: configuration, key schema,
job store, event log, program registry, status machine and errors.

It imports neither Flask nor Celery, so both sides (and tests) can use it alone.
"""
