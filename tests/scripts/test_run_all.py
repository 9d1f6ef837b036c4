"""Ctrl-C on ``make run`` (scripts/run_all.sh) stops everything it started, even a Celery beat
that ignores TERM (it once hung and needed SIGKILL, leaving its pid file), and says that the
servers keep running. The programs it starts are stand-ins here (a fake ``VENV``): what is
tested is the script's own start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each stand-in records its pid, then waits; "celery ... beat" ignores TERM and INT, as the
# hung beat did, and writes its --pidfile.
STANDIN = """#!/usr/bin/env bash
echo $$ >> "{pids}"
case "$*" in
  *collectstatic*) exit 0 ;;
  *"-c from django"*|*"-c"*settings*) echo "evaluation delivery"; exit 0 ;;
esac
if [[ "$*" == *" beat "* ]]; then
  while [ $# -gt 0 ]; do [ "$1" = --pidfile ] && echo $$ > "$2"; shift; done
  trap '' TERM INT
  sleep 1000 &
else
  sleep 1000 &
  trap 'kill $!; exit 0' TERM
fi
wait
"""


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    pids = tmp_path / "pids"
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "celery"):
        script = bin_dir / name
        script.write_text(STANDIN.format(pids=pids))
        script.chmod(0o755)
    return tmp_path / "venv", pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_ctrl_c_stops_what_run_all_started_and_kills_a_hung_beat(tmp_path: Path) -> None:
    venv, pids = fake_venv(tmp_path)
    beat_pidfile = tmp_path / "celerybeat.pid"
    env = {
        **os.environ,
        "VENV": str(venv),
        "STOP_GRACE_S": "2",
        "BEAT_PIDFILE": str(beat_pidfile),
        "PORT": "26898",
    }
    run = subprocess.Popen(
        ["bash", "scripts/run_all.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # INT as a terminal leaves it: a suite started in the background (``cmd &``) has INT
        # ignored, and a shell cannot trap a signal that was ignored when it started
        preexec_fn=_interruptible,
    )
    deadline = time.monotonic() + 20
    while not beat_pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the banner
    assert beat_pidfile.exists()
    started = [int(p) for p in pids.read_text().split()]

    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends
    output, _ = run.communicate(timeout=20)

    assert "run: still running after 2s, killed:" in output  # the beat, after the grace
    assert "Postgres, Redis and InfluxDB are still running" in output
    assert not beat_pidfile.exists()
    time.sleep(0.2)
    assert [p for p in started if alive(p)] == []
    assert "http://127.0.0.1:26898/" in output
