"""POST /ingest: devices push readings (docs/devices.md).

The hot path (``wsgi.py`` in front of Django, ``service.ingest``) authenticates the key against an
in-process cache, checks the optional signature, validates every point (``parse``), and in one
Redis round trip checks the rate limits and the replay window and appends the batch to a Redis
stream (``queue``): the answer is sent once the batch is in Redis. ``manage.py ingest_flusher``
moves the stream to each account's InfluxDB database in batches and records what the devices
reported about themselves (last seen, battery, signal, firmware).
"""
