"""POST /ingest through the web server, against writing the same batches straight to InfluxDB
/write.

Starts the real server (granian serving ``growalert.wsgi``: ``python -m growalert.serve``,
WORKERS workers x THREADS threads, DEBUG off, as scripts/run_all.sh runs it) and the ingest
flusher (``manage.py ingest_flusher``), with Postgres, Redis and InfluxDB running, then runs wrk
(CONNECTIONS connections) for DURATION seconds each against:

1. InfluxDB's own ``/write`` with a batch of 100 points of line protocol (the reference);
2. ``POST /ingest`` with the same batch (line protocol, the device's key);
3. ``POST /ingest`` with one JSON reading per request, as a cheap device sends it;

and prints requests/s, points/s, p50 and p99 per target, the ratio of (2) to (1), the stream
backlog when the load stopped and how long the flusher then took to make every accepted point
queryable (the end-to-end rate, and its ratio to (1), count that time), and the CPU per request
of each kind of process (wrk's own included). The rate limits are raised out of reach (their
Redis work is still done).

``--arrival`` also runs the arrival evaluator (``manage.py evaluate_on_arrival``, one shard, as
``make run`` and docker-compose do): it reads every batch of the stream in its own consumer
group, and its CPU (and Redis' for its reads) counts in the per-request figures. The bench's
device has its health monitors, so the evaluator watches its ``_device`` heartbeat.
Needs Debian's wrk (``scripts/bootstrap.sh --bench``).

    .venv/bin/python bench/bench_ingest.py [seconds] [--rounds=N] [--only=direct,batch,single]
        [--arrival]

``--only=...,stored`` adds a second reference, off by default: InfluxDB's ``/write`` with the
batch as growalert stores it (the ``device_id`` tag, VPD and dew point on each reading, and the
heartbeat point: 101 points, 4 fields per reading), so the ingest's own cost can be told from
the cost of what it stores. The target of issue 16 is the ratio to (1); the ratio to this one
is printed after it, for that comparison only.

``--rounds=N`` runs every target N times, alternating the order, and prints medians (one run of
each in a row compares different moments of a busy machine).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # bench/common.py: this directory is first on sys.path

ROOT = common.ROOT
LIMITS = {
    "INGEST_DEVICE_REQUESTS_PER_SECOND": "10000000",
    "INGEST_DEVICE_POINTS_PER_SECOND": "100000000",
    "INGEST_ACCOUNT_POINTS_PER_SECOND": "100000000",
}
common.setup_django(env=LIMITS)

import httpx
import redis
from django.conf import settings
from django.contrib.auth import get_user_model

from devices import hosted, services
from devices.ingest import backlog, canonical, heartbeat, queue
from devices.models import Device

WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
BATCH = 100
DIRECT_DB = "bench_ingest_direct"


def batch_body() -> str:
    """100 points of 100 sensors, no timestamp: InfluxDB (direct) and growalert (ingest) both
    stamp them on arrival, so every request adds 100 new points on either path."""
    return "\n".join(
        f"gro01,sensor=s{i:03d} temperature={20 + i / 10:.1f},humidity={50 + i / 7:.2f}"
        for i in range(BATCH)
    )


def wrk_script(body: str, headers: dict[str, str], folder: Path, name: str) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path = folder / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(url: str, script: Path, seconds: int) -> tuple[float, float, float, int]:
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    return common.wrk_figures(out)


def children_cpu() -> float:
    """CPU seconds of this process's finished children: wrk's own, read around a run (the
    servers are still running, so they are not counted here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each group of processes (a process and its children: the web
    server's master and its workers)."""
    return {
        name: sum(_cpu(pid) + sum(_cpu(c) for c in _children(pid)) for pid in pids)
        for name, pids in groups.items()
    }


def service_pid(name: str) -> int:
    return int((ROOT / ".local" / "run" / f"{name}.pid").read_text().split()[0])


def count_points(database: str) -> int:
    with hosted.client(timeout=60) as conn:
        (result,) = conn.query('SELECT count("temperature") FROM "gro01"', database=database)
    if result.error or not result.series:
        return 0
    return int(result.series[0].values[0][1])


READERS = [queue.GROUP]  # the consumer groups waited for (and the arrival evaluator's)


def drain_seconds(expected_points: int, database: str, before: int) -> float:
    """Seconds until the stream is empty and InfluxDB holds every accepted point (and, with
    --arrival, the evaluator has read every batch too)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    started = time.monotonic()
    while time.monotonic() - started < 120:
        lags = {g.group: g.oldest_age_seconds for g in backlog.read(client).groups}
        caught_up = all(lags.get(name, 0) == 0 for name in READERS)
        if caught_up and count_points(database) - before >= expected_points:
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(
        f"the flusher did not write every accepted point within 120 s: "
        f"{count_points(database) - before} of {expected_points} in InfluxDB, "
        f"{client.xlen(queue.STREAM)} entries left in the stream"
    )


def visible_after(base: str, key: str, database: str, probes: int = 20) -> list[float]:
    """Milliseconds from a 202 to the reading being queryable in InfluxDB (idle server)."""
    out = []
    with hosted.client() as conn:
        for i in range(probes):
            marker = f"probe{i}-{time.time_ns()}"
            body = f"gro01,probe={marker} temperature=1"
            started = time.perf_counter()
            answer = httpx.post(f"{base}/ingest", content=body, headers={"X-API-Key": key})
            assert answer.status_code == 202, answer.text
            while time.perf_counter() - started < 10:
                (result,) = conn.query(
                    'SELECT count("temperature") FROM "gro01" WHERE "probe" = $p',
                    database=database,
                    params={"p": marker},
                )
                if result.series:
                    break
                time.sleep(0.01)
            out.append((time.perf_counter() - started) * 1000)
    return out


def stored_body(device_id: int) -> str:
    """The batch as the flusher writes it for the device, without timestamps (InfluxDB stamps
    it, as for the reference), heartbeat included."""
    batch = canonical.read(batch_body().encode(), device_id=device_id, now_ns=0, scale=1)
    assert batch is not None
    readings = [line.rsplit(" ", 1)[0] for line in batch.lines]
    beat = heartbeat.line(device_id=device_id, status={}, time_ns=0).rsplit(" ", 1)[0]
    return "\n".join([*readings, beat])


def seed() -> tuple[str, str, int]:
    user, _ = get_user_model().objects.get_or_create(username="bench-ingest")
    Device.objects.filter(owner=user).delete()
    device, key = services.device_add(owner=user, name="bench")
    database = hosted.database_name(user.pk)
    hosted.ensure_database(database)
    with hosted.client() as conn:
        conn.query(f"DROP DATABASE {DIRECT_DB}", database=DIRECT_DB, method="POST")
        conn.query("DROP SERIES FROM gro01", database=database, method="POST")
        conn.create_database(DIRECT_DB)
    return key, database, device.pk


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: scripts/bootstrap.sh --bench")
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--rounds=")), 1)
    only = next((a.split("=")[1] for a in sys.argv[1:] if a.startswith("--only=")), "")
    chosen = [
        name
        for name in ("direct", "stored", "batch", "single")
        if (not only and name != "stored") or name in only
    ]
    seconds = int(args[0]) if args else 10
    key, database, device_id = seed()
    port = common.free_port()
    env = common.production_env(**LIMITS)
    common.LOG_DIR.mkdir(parents=True, exist_ok=True)
    server = common.start_web_server(port, env, workers=WORKERS, threads=THREADS)
    flusher_log = open(common.LOG_DIR / "bench_ingest_flusher.log", "ab")  # noqa: SIM115
    flusher = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "ingest_flusher"],
        cwd=ROOT,
        env=env,
        stdout=flusher_log,
        stderr=subprocess.STDOUT,
    )
    arrival = None
    if "--arrival" in sys.argv:
        arrival = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "evaluate_on_arrival"],
            cwd=ROOT,
            env=env,
            stdout=flusher_log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    influx_write = f"{settings.INFLUXDB_URL}/write?db={DIRECT_DB}"
    body = batch_body()
    single = json.dumps({"event_type": "gro01", "data": {"temperature": 21.5, "humidity": 61.2}})
    results: dict[str, list[tuple[float, float, float, int]]] = {}
    drains: list[float] = []
    backlogs: list[int] = []  # stream entries (batches) not yet written when wrk stopped
    stream = redis.Redis.from_url(settings.REDIS_URL)
    groups = {
        "web": [server.pid],
        "flusher": [flusher.pid],
        "redis": [service_pid("redis")],
        "influxdb": [service_pid("influxdb")],
    }
    if arrival is not None:
        groups["arrival"] = [arrival.pid]
        READERS.append("evaluators:0")
    cpu_per_request: dict[str, list[dict[str, float]]] = {}
    try:
        common.wait_ready(base, tries=100)
        check = httpx.post(f"{base}/ingest", content=body, headers={"X-API-Key": key})
        assert check.status_code == 202, check.text
        with tempfile.TemporaryDirectory() as folder:
            scripts = {
                "direct": wrk_script(body, {"Content-Type": "text/plain"}, Path(folder), "d"),
                "stored": wrk_script(
                    stored_body(device_id), {"Content-Type": "text/plain"}, Path(folder), "w"
                ),
                "batch": wrk_script(
                    body, {"Content-Type": "text/plain", "X-API-Key": key}, Path(folder), "b"
                ),
                "single": wrk_script(
                    single,
                    {"Content-Type": "application/json", "X-API-Key": key},
                    Path(folder),
                    "s",
                ),
            }
            urls = {
                "direct": influx_write,
                "stored": influx_write,
                "batch": f"{base}/ingest",
                "single": f"{base}/ingest",
            }
            wrk(f"{base}/ingest", scripts["single"], 2)  # warm-up
            drain_seconds(0, database, 0)
            visible = visible_after(base, key, database)
            for i in range(rounds):
                for name in chosen if i % 2 == 0 else chosen[::-1]:
                    before = count_points(database) if name in ("batch", "single") else 0
                    cpu_before = cpu_snapshot(groups)
                    wrk_before = children_cpu()
                    sample = wrk(urls[name], scripts[name], seconds)
                    wrk_cpu = children_cpu() - wrk_before
                    results.setdefault(name, []).append(sample)
                    if name == "batch":
                        backlogs.append(int(stream.xlen(queue.STREAM)))
                        drains.append(drain_seconds(sample[3] * BATCH, database, before))
                    elif name == "single":
                        drain_seconds(sample[3], database, before)
                    cpu_after = cpu_snapshot(groups)
                    per_request = {
                        g: (cpu_after[g] - cpu_before[g]) / sample[3] * 1000 for g in groups
                    }
                    per_request["wrk"] = wrk_cpu / sample[3] * 1000
                    cpu_per_request.setdefault(name, []).append(per_request)
    finally:
        processes = [server, flusher] + ([arrival] if arrival is not None else [])
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:  # a machine this busy: do not lose the figures
                process.kill()
                process.wait()
        flusher_log.close()

    def med(name: str, column: int) -> float:
        return statistics.median(s[column] for s in results[name])

    print(
        f"web server (granian) {WORKERS} workers x {THREADS} threads + 1 ingest flusher"
        f"{' + 1 arrival evaluator' if arrival is not None else ''}; "
        f"wrk 2 threads x {CONNECTIONS} connections; {seconds} s per run, medians of {rounds}"
    )
    print(f"{'target':<40} {'req/s':>8} {'points/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    labels = {
        "direct": "InfluxDB /write, 100 points (reference)",
        "stored": "InfluxDB /write, as stored (101 points)",
        "batch": "POST /ingest, 100 points (line prot.)",
        "single": "POST /ingest, 1 JSON reading",
    }
    for name, label in labels.items():
        if name not in results:
            continue
        per = BATCH if name != "single" else 1
        print(
            f"{label:<40} {med(name, 0):>8,.0f} {med(name, 0) * per:>10,.0f}"
            f" {med(name, 1):>8.2f} {med(name, 2):>8.2f}"
        )
    print(
        f"202 to queryable in InfluxDB (idle server, {len(visible)} probes): median "
        f"{statistics.median(visible):.0f} ms, max {max(visible):.0f} ms"
    )
    print("CPU ms per request (all processes of each kind, including the flusher's backlog):")
    for name, label in labels.items():
        if name in cpu_per_request:
            per_group = {
                g: statistics.median(c[g] for c in cpu_per_request[name]) for g in [*groups, "wrk"]
            }
            total = sum(per_group.values())
            parts = "  ".join(f"{g} {v:.3f}" for g, v in per_group.items())
            print(f"  {label:<40} {parts}  total {total:.3f}")
    if "batch" not in results or "direct" not in results:
        return
    ratios = [b[0] / d[0] for b, d in zip(results["batch"], results["direct"], strict=True)]
    print(f"ingest / direct write (batches of 100, accepted): {statistics.median(ratios):.2f}")
    drain = statistics.median(drains)
    end_to_end = [
        b[3] * BATCH / (seconds + d) for b, d in zip(results["batch"], drains, strict=True)
    ]
    print(
        f"stream backlog when the load stopped: {statistics.median(backlogs):,.0f} batches "
        f"(max {max(backlogs):,}); {drain:.2f} s to drain; end-to-end "
        f"{statistics.median(end_to_end):,.0f} points/s written to InfluxDB"
    )
    written = [e / (d[0] * BATCH) for e, d in zip(end_to_end, results["direct"], strict=True)]
    print(
        "ingest / direct write (batches of 100, written to InfluxDB including the drain): "
        f"{statistics.median(written):.2f}"
    )
    if "stored" in results:
        stored = [b[0] / w[0] for b, w in zip(results["batch"], results["stored"], strict=True)]
        print(
            "ingest / direct write of the batch as stored (not the target's reference): "
            f"{statistics.median(stored):.2f}"
        )


if __name__ == "__main__":
    main()
