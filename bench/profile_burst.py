"""What one delivery burst costs the delivery process: ROUNDS bursts of N outbox rows (a round of
alerts), each delivered by ``burst.deliver_burst`` in this process, as the delivery worker's
burst task runs it, to a webhook receiver in a process of its own (its CPU is not counted).
Prints this process's CPU per notification, each burst's wall time (first claim to last
record), and the CPU of each phase per notification: the claim and the records on the task's
thread, the sends on the pool's threads (httpx, the receiver limits' Redis scripts, the
payload). Query logging is off (``DEBUG`` False), as in a deployed worker; the first burst is
printed apart: the process warms up as a delivery worker does
(``notify.warmup``), then the first burst makes the pool's threads and their connections.

    .venv/bin/python bench/profile_burst.py [N] [--rounds R] [--concurrency C]
        [--keep-alive] [--tls]
"""

from __future__ import annotations

import argparse
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

parser = argparse.ArgumentParser()
parser.add_argument("n", nargs="?", type=int, default=100)
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--concurrency", type=int, default=0, help="NOTIFY_BURST_CONCURRENCY")
parser.add_argument(
    "--keep-alive",
    action="store_true",
    help="the receiver keeps connections open (HTTP/1.1), as most production receivers do",
)
parser.add_argument(
    "--tls",
    action="store_true",
    help="https to the receiver (a certificate made for this run with openssl, trusted by "
    "the sender for this run only)",
)
ARGS = parser.parse_args()
env = {"WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true", "NOTIFY_RECEIVER_CONCURRENCY": "1000"}
if ARGS.concurrency:
    env["NOTIFY_BURST_CONCURRENCY"] = str(ARGS.concurrency)
common.setup_django(env=env)

import logging

from django.conf import settings

from monitors.models import Monitor, Notification
from monitors.notify import breaker, burst, delivery, http, warmup, webhook

settings.DEBUG = False  # no query log: a deployed worker keeps none
logging.getLogger("monitors").setLevel(logging.WARNING)  # one INFO line per send otherwise

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

class Handler(BaseHTTPRequestHandler):
    protocol_version = sys.argv[2]

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
if len(sys.argv) > 3:  # certificate and key: https
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def certificate(directory: str) -> list[str]:
    """A self-signed certificate for ``localhost`` and its key; the sender's TLS context (one
    per process, ``http.ssl_context``) trusts it for this run."""
    cert, key = f"{directory}/cert.pem", f"{directory}/key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key),
            *("-out", cert, "-days", "1", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    trusted = ssl.create_default_context(cafile=cert)
    http._built_once = lambda: trusted  # type: ignore[assignment]
    return [cert, key]


spent: defaultdict[str, float] = defaultdict(float)
_lock = threading.Lock()


def timed(owner: Any, name: str, label: str) -> None:
    """Counts the calling thread's CPU in ``owner.name`` under ``label``."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            with _lock:
                spent[label] += time.thread_time() - began

    setattr(owner, name, wrapper)


PHASES = [
    (delivery, "claim_many", "claim (task thread, one statement per burst)"),
    (delivery, "finish", "record (task thread)"),
    (delivery, "send", "send (pool thread), all of it"),
    (breaker, "send", "  within the receiver limits (2 Redis scripts)"),
    (webhook.WebhookNotifier, "send", "    the webhook: document, signature"),
    (http, "post", "      the HTTP request (httpx, address check)"),
]


def main() -> None:
    for owner, name, label in PHASES:
        timed(owner, name, label)
    port = common.free_port()
    protocol = "HTTP/1.1" if ARGS.keep_alive else "HTTP/1.0"
    tls = certificate(tempfile.mkdtemp()) if ARGS.tls else []
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), protocol, *tls])
    time.sleep(0.5)
    url = f"https://localhost:{port}/hook" if tls else f"http://127.0.0.1:{port}/hook"
    owner, source = common.customer_source("bench-burst", "bench_burst")  # never queried
    owner, channel = common.webhook_channel("bench-burst", url)
    monitor = common.monitor(owner, source, "bench burst", "d0", critical=30.0)
    monitor.save()
    warmup.warm_up()  # as a delivery worker does at its start (worker_init)
    cpu = wall = 0.0
    first = (0.0, 0.0)
    try:
        for round_ in range(ARGS.rounds + 1):
            rows = Notification.objects.bulk_create(
                Notification(
                    channel=channel,
                    monitor=monitor,
                    event="fired",
                    idempotency_key=f"bench-burst:{uuid.uuid4().hex}",
                    payload=common.PAYLOAD,
                )
                for _ in range(ARGS.n)
            )
            began_cpu, began = time.process_time(), time.perf_counter()
            outcomes = burst.deliver_burst([row.pk for row in rows])
            assert outcomes == {"sent": ARGS.n}, outcomes
            if round_ == 0:
                first = (time.process_time() - began_cpu, time.perf_counter() - began)
                spent.clear()  # the first burst: not in the steady figures
                continue
            cpu += time.process_time() - began_cpu
            wall += time.perf_counter() - began
    finally:
        receiver.kill()
        Monitor.objects.filter(owner=owner).delete()
        owner.delete()
    sends = ARGS.rounds * ARGS.n
    print(
        f"profile_burst: {ARGS.rounds} bursts of {ARGS.n}, "
        f"NOTIFY_BURST_CONCURRENCY={settings.NOTIFY_BURST_CONCURRENCY}, receiver {protocol}"
        f"{' over TLS' if tls else ''}, "
        f"pid {os.getpid()}"
    )
    print(
        f"  first burst after the worker's warm-up: {first[1] * 1000:.0f} ms wall, "
        f"{first[0] / ARGS.n * 1000:.2f} ms CPU per notification"
    )
    print(f"  process CPU per notification  {cpu / sends * 1000:6.2f} ms")
    print(f"  burst wall time (claim to last record)  {wall / ARGS.rounds * 1000:6.0f} ms")
    print("  CPU per notification by phase (threads' own CPU):")
    for _, _, label in PHASES:
        print(f"    {label:52} {spent[label] / sends * 1000:6.3f} ms")


if __name__ == "__main__":
    main()
