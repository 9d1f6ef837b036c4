"""Checks an HTTP URL every 10 seconds and alerts by logging. Standard library only.

python -m alerts_core.examples.http_monitor https://example.com/health
"""

from __future__ import annotations

import logging
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta

from alerts_core import Check, Context, Monitor, Policy, Runner, jittered

log = logging.getLogger("http-monitor")


def http_check(url: str, slow_after: float = 1.0) -> Check:
    """Passes on a 2xx answer; degraded (a warning) when it took longer than ``slow_after``."""

    if not url.startswith(("http://", "https://")):
        raise ValueError("only http(s) URLs can be checked")

    def check(ctx: Context) -> tuple[bool, BaseException | None]:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=ctx.remaining() or 10) as response:  # noqa: S310
                response.read(1024)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return False, exc
        took = time.monotonic() - started
        if took > slow_after:
            return True, TimeoutError(f"slow: {took:.2f}s")
        return True, None

    return check


def log_alert(ctx: Context, *errors: BaseException) -> None:
    log.error("ALERT: %s", "; ".join(map(str, errors)))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9/"
    monitor = Monitor(
        name=url,
        check=http_check(url),
        alert=log_alert,
        interval=jittered(timedelta(seconds=10)),
        policy=Policy(pending_for=2, recover_after=2, repeat_every=timedelta(minutes=30)),
        timeout=timedelta(seconds=5),
        on_event=lambda event: log.info("%s: %s", event.kind, event.message),
    )
    runner = Runner(workers=2)
    runner.add(monitor)
    with runner:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
