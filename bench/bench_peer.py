"""The scrape-based peer on issue 18's flip workload: Prometheus + Alertmanager, measured the way
bench_flip.py measures growalert, so that the two can be run back to back on the same machine.

The peer is tuned as the issue describes it: a 1 s scrape, 1 s rule evaluation, one alert rule
per device (the like-for-like of one monitor per device: ``sensor_value{device="dI"} > 30``,
no ``for``), and Alertmanager with ``group_wait: 0s``, grouped by device (one notification per
device and state change, as growalert sends), ``send_resolved``, to a webhook receiver in this
process that timestamps arrivals. The rules are in groups of BENCH_PEER_GROUP (1,000), which
Prometheus evaluates concurrently. Debian's packages (``apt-get install prometheus
prometheus-alertmanager``); nothing here is installed by the project, which does not need them.

The data: an exporter in this process serves N gauges ``sensor_value{device="dI"}`` (20, or 35
while flipped; its body is rendered once per change, not per scrape). Prometheus scrapes it
every second: the flip takes effect at the next scrape, as growalert's takes effect at the
writer's next batch.

1. Steady state: after BENCH_WARMUP (15) s, CPU (utime + stime) of Prometheus and
   Alertmanager over BENCH_WINDOW (60) s, per 1,000 rule evaluations: both per due evaluation
   (N x window) and per evaluation done (Prometheus's ``prometheus_rule_evaluations_total``);
   missed group iterations are printed beside it. The exporter's CPU is not counted, as the
   bench's data writer is not counted for growalert (InfluxDB's ingest is; here the scrape is).
2. Rounds: BENCH_ROUNDS (10) times, K (100) fresh devices flip to 35 at a random instant and
   each device's ``firing`` arrival is recorded; hold 3 s, flip back, record ``resolved``.
   Latency = arrival - flip instant: p50/p99/max, lost, duplicated (an alert's state and start
   received twice), and the spread of one round's arrivals (first to last).

    .venv/bin/python bench/bench_peer.py [N]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

sys.path.insert(0, str(common.ROOT))  # common.free_port uses the tests' receivers

K = int(os.environ.get("BENCH_K", "100"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
WINDOW = float(os.environ.get("BENCH_WINDOW", "60"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "15"))
GROUP = int(os.environ.get("BENCH_PEER_GROUP", "1000"))
HOLD = 3.0  # as bench_flip.py
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


class Exporter:
    """N gauges on /metrics; ``flipped`` devices read 35. The body is rendered once per flip."""

    def __init__(self, devices: int) -> None:
        self.devices = devices
        self.flipped: set[int] = set()
        self.lock = threading.Lock()
        self.body = self._render()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # Prometheus keeps its scrape connection open

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = exporter.body
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = common._Server(("127.0.0.1", common.free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _render(self) -> bytes:
        lines = ["# TYPE sensor_value gauge"]
        lines += [
            f'sensor_value{{device="d{d}"}} {35 if d in self.flipped else 20}'
            for d in range(self.devices)
        ]
        return ("\n".join(lines) + "\n").encode()

    def flip(self, devices: list[int], on: bool) -> None:
        with self.lock:
            self.flipped = common.flipped_after(self.flipped, devices, on)
            self.body = self._render()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


class AlertReceiver(common.LoopbackReceiver):
    """Alertmanager's webhook sink: the first arrival (time.time) of each device's ``firing``
    and ``resolved``, per alert (its ``startsAt``); an alert's state received twice is a
    duplicate."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, str, str], float] = {}
        self.duplicates = 0
        super().__init__(keep_alive=True)

    def post(self, request: BaseHTTPRequestHandler, key: str) -> None:
        now = time.time()
        payload = json.loads(getattr(request, "body", b"") or b"{}")
        with self.lock:
            for alert in payload.get("alerts", ()):
                seen = (alert["labels"]["device"], alert["status"], alert["startsAt"])
                if seen in self.received:
                    self.duplicates += 1
                else:
                    self.received[seen] = now
        self.ok(request)

    def arrivals(self, status: str, since: float) -> dict[str, float]:
        """Each device's first ``status`` arrival at or after ``since``."""
        with self.lock:
            return {
                device: at
                for (device, kind, _), at in self.received.items()
                if kind == status and at >= since
            }

    def wait_for(self, status: str, devices: set[str], since: float, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and not devices <= set(self.arrivals(status, since)):
            time.sleep(0.02)


def write_configs(root: Path, devices: int, target: str, am_port: int, hook: str) -> None:
    groups = [
        {
            "name": f"devices-{start}",
            "interval": "1s",
            "rules": [
                {
                    "alert": "SensorHigh",
                    "expr": f'sensor_value{{device="d{d}"}} > 30',
                    "annotations": {"summary": f"d{d} above 30"},
                }
                for d in range(start, min(start + GROUP, devices))
            ],
        }
        for start in range(0, devices, GROUP)
    ]
    # JSON is YAML: no YAML library needed to write either file.
    (root / "rules.yml").write_text(json.dumps({"groups": groups}))
    prometheus = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(root / "rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": [{"job_name": "devices", "static_configs": [{"targets": [target]}]}],
    }
    (root / "prometheus.yml").write_text(json.dumps(prometheus))
    alertmanager = {
        "route": {
            "receiver": "hook",
            "group_by": ["device"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "24h",
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": hook, "send_resolved": True}]}],
    }
    (root / "alertmanager.yml").write_text(json.dumps(alertmanager))


def start(root: Path, name: str, command: list[str]) -> common.Started:
    log = open(root / f"{name}.log", "wb")  # noqa: SIM115 (closed by common.stop)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log


def rule_evaluations(port: int) -> tuple[float, float]:
    """Prometheus's own count of rule evaluations and of missed group iterations."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    done = missed = 0.0
    for line in text.splitlines():
        if line.startswith("prometheus_rule_evaluations_total{"):
            done += float(line.rsplit(" ", 1)[1])
        elif line.startswith("prometheus_rule_group_iterations_missed_total{"):
            missed += float(line.rsplit(" ", 1)[1])
    return done, missed


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    root = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    exporter = Exporter(devices)
    receiver = AlertReceiver()
    from tests.observability.receivers import free_ports

    prom_port, am_port = free_ports(2, 29000)
    write_configs(root, devices, exporter.target, am_port, receiver.url)
    processes = {
        "alertmanager": start(
            root,
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={root / 'alertmanager.yml'}",
                f"--storage.path={root / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # one instance: no gossip
            ],
        ),
        "prometheus": start(
            root,
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
        ),
    }
    try:
        wait_up(f"http://127.0.0.1:{am_port}/-/ready")
        wait_up(f"http://127.0.0.1:{prom_port}/-/ready")
        roots = {name: [process.pid] for name, (process, _) in processes.items()}
        time.sleep(WARMUP)
        (done0, missed0), cpu0, t0 = (
            rule_evaluations(prom_port),
            common.cpu_by_tree(roots),
            time.time(),
        )
        time.sleep(WINDOW)
        (done1, missed1), cpu1, t1 = (
            rule_evaluations(prom_port),
            common.cpu_by_tree(roots),
            time.time(),
        )
        elapsed = t1 - t0
        done = done1 - done0
        due = devices * elapsed
        split = {name: cpu1[name] - cpu0[name] for name in cpu1}

        fired: list[float] = []
        resolved: list[float] = []
        spreads: dict[str, list[float]] = {"fired": [], "resolved": []}
        lost = 0
        order = list(range(devices))
        random.Random(18).shuffle(order)
        for r in range(ROUNDS):
            chosen = order[(r * K) % devices : (r * K) % devices + K]
            names = {f"d{d}" for d in chosen}
            time.sleep(random.uniform(0.0, 1.0))
            flipped_at = time.time()
            exporter.flip(chosen, on=True)
            receiver.wait_for("firing", names, flipped_at, 20)
            time.sleep(HOLD)
            back_at = time.time()
            exporter.flip(chosen, on=False)
            receiver.wait_for("resolved", names, back_at, 20)
            for status, since, into, label in (
                ("firing", flipped_at, fired, "fired"),
                ("resolved", back_at, resolved, "resolved"),
            ):
                arrived = receiver.arrivals(status, since)
                lost += common.record_round(arrived, since, names, into, spreads[label])
        time.sleep(2)  # a late duplicate would show up by now
    finally:
        common.stop(processes.values())
        exporter.server.shutdown()
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"bench_peer: N={devices:,} devices, Prometheus (1 s scrape, 1 s evaluation, one rule "
        f"per device in groups of {GROUP}) + Alertmanager (group_wait 0s), K={K}, {ROUNDS} rounds"
    )
    common.print_flip_arrivals(fired, resolved)
    common.print_round_spreads(spreads)
    print(f"  lost {lost}, duplicated {receiver.duplicates}")
    print(
        f"  steady window {elapsed:.0f} s: rule evaluations done {done:,.0f} of {due:,.0f} due "
        f"({done / elapsed:,.0f}/s); group iterations missed {missed1 - missed0:,.0f}"
    )
    common.print_cpu_split(split, done=done, due=due)


if __name__ == "__main__":
    main()
