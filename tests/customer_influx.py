"""The customers' InfluxDB in tests: a second influxd, apart from the deployment's own
(``settings.INFLUXDB_URL``), which a customer source may never reach.

It listens on loopback on a port below the Linux ephemeral range (the deployment's InfluxDB
port + 10, or the next free one 100 further), keeps its data under ``.local/influx-customer``,
holds the database ``growalert_test`` (``SourceFactory``'s default) and is started on first
use: ``url()`` (the factories' default source URL) or the ``customer_influx_url`` fixture.
The suite stops it at the end of the session; any other process that started it (a bench)
stops it when it exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".local" / "influx-customer"
LOG = ROOT / ".local" / "log" / "influx-customer.log"
EPHEMERAL_START = 32768
DATABASE = "growalert_test"  # the factories' default source database, always there

_process: subprocess.Popen[bytes] | None = None
_ports: tuple[int, int] | None = None
_started_by: int | None = None  # the pid that started it: only that process stops it at exit


def _taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _free_ports() -> tuple[int, int]:
    base = int(os.environ.get("GROWALERT_INFLUX_PORT", "18086")) + 10
    for http_port in range(base, EPHEMERAL_START - 2, 100):
        if not _taken(http_port) and not _taken(http_port + 2):
            return http_port, http_port + 2
    raise RuntimeError(f"no free port pair for the customer influxd from {base}")


def url() -> str:
    """The customer influxd's URL, started on first call."""
    if _process is None or _process.poll() is not None:
        start()
    assert _ports is not None
    return f"http://127.0.0.1:{_ports[0]}"


def start() -> None:
    """Starts (or restarts, on the same port and data) the customer influxd."""
    global _process, _ports, _started_by
    influxd = shutil.which("influxd")
    if influxd is None:
        raise RuntimeError("influxd is not installed: scripts/bootstrap.sh installs it")
    if _ports is None or _taken(_ports[0]) or _taken(_ports[1]):
        _ports = _free_ports()
    http_port, rpc_port = _ports
    # One data directory per port: a stray influxd left on the first port keeps its lock.
    data = DATA / str(http_port)
    data.mkdir(parents=True, exist_ok=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    config = data / "influxdb.conf"
    config.write_text(
        f'reporting-enabled = false\nbind-address = "127.0.0.1:{rpc_port}"\n'
        f'[meta]\n  dir = "{data}/meta"\n'
        f'[data]\n  dir = "{data}/data"\n  wal-dir = "{data}/wal"\n  query-log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{http_port}"\n  log-enabled = false\n'
    )
    with LOG.open("ab") as log:
        _process = subprocess.Popen(
            [influxd, "run", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    _started_by = os.getpid()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/ping", timeout=0.5).status_code == 204:
                httpx.post(
                    f"http://127.0.0.1:{http_port}/query", data={"q": f"CREATE DATABASE {DATABASE}"}
                ).raise_for_status()
                return
        except httpx.TransportError:
            time.sleep(0.05)
    stop()
    raise RuntimeError(f"the customer influxd did not start: see {LOG}")


def stop() -> None:
    global _process
    if _process is None:
        return
    _process.terminate()
    try:
        _process.wait(10)
    except subprocess.TimeoutExpired:
        _process.kill()
        _process.wait(10)
    _process = None


def _stop_at_exit() -> None:
    """A bench that forgot :func:`stop` leaves no influxd behind (a forked child that exits
    is not the process that started it, and stops nothing)."""
    if _started_by == os.getpid():
        stop()


atexit.register(_stop_at_exit)
