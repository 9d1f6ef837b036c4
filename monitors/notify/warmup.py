"""A worker pays the first send's one-time costs when it starts, not during the first alert.

A fresh process's first delivery of a firing notification took ~200 ms of CPU against ~4 ms
for the next ones (``bench/profile_burst.py``'s set-up, one webhook, loopback receiver):

- loading the URLconf (every app's views and serializers) for the first acknowledgement link,
  ~150 ms;
- the verifying TLS context, ~13 ms;
- the connections to Redis for the receiver limits (``breaker.connect`` opens all of them and
  loads the limits' scripts): a first burst of 100 whose threads opened their own took
  490-615 ms, against 350-460 ms;
- in a process that queues deliveries, its first publish (``queue.connect``), ~25 ms.

The first round of alerts after a deploy or a restart waited for all of it; it is part, not
all, of why the flip bench's first round is its slowest (docs/arrival.md, "The first round").
Run once per worker before it consumes (``growalert/celery.py``: Celery's ``worker_init``, in
the main process before a prefork pool forks, so its children inherit what was imported and
built; a delivery worker runs a pool of threads in one process, which keeps the connections);
the arrival evaluator does the same for the links it writes into notifications and the
deliveries it queues (its first firing round waited for both). Nothing here may stop a worker
from starting: Redis may be down, and the limits already send without it.
"""

from __future__ import annotations

import logging
import time

import redis
from django.urls import get_resolver
from kombu.exceptions import OperationalError

from monitors.notify import breaker, http, queue

logger = logging.getLogger(__name__)


def warm_up(*, send: bool = True) -> float:
    """Loads and builds what the first notification needs; returns the seconds it took.
    ``send=False``: only what writing one and queueing it need (its links, the broker), for a
    process that decides but does not send (the arrival evaluator)."""
    began = time.perf_counter()
    load_links()
    try:
        queue.connect()
    except OperationalError as exc:
        logger.warning("delivery queue: broker not reachable at start (%s)", exc)
    if send:
        http.ssl_context()
        try:
            breaker.connect()
        except redis.RedisError as exc:
            logger.warning("receiver limits: Redis not reachable at start (%s)", exc)
    took = time.perf_counter() - began
    logger.info("ready to notify: warmed up in %.0f ms", took * 1000)
    return took


def load_links() -> None:
    """The URLconf and its reverse index: a notification's links (its monitor's page, the
    acknowledgement link) are built with ``reverse``."""
    get_resolver().url_patterns  # noqa: B018 (imports every URLconf module and view)
    get_resolver().reverse_dict  # noqa: B018 (the reverse index the links are built with)
