#!/usr/bin/env bash
# Runs the web server, the ingest flusher, the arrival evaluators, two Celery workers and Celery beat in the foreground;
# Ctrl-C stops them all.
# The evaluation worker (prefork, one process per core) consumes only the evaluation queue; the
# delivery worker (one process, DELIVERY_THREADS threads: sends wait on the network, not the CPU)
# only the delivery queue, so a hanging webhook never delays an evaluation.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${VENV:-$ROOT/.venv}/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
EVALUATION_PROCESSES=${EVALUATION_PROCESSES:-$(nproc 2>/dev/null || echo 2)}
DELIVERY_THREADS=${DELIVERY_THREADS:-32}
mkdir -p .local/log .local/run

STOP_GRACE_S=${STOP_GRACE_S:-15}
BEAT_PIDFILE=${BEAT_PIDFILE:-.local/run/celerybeat.pid}
# Links in alerts point at this server unless GROWALERT_SITE_URL says otherwise.
export GROWALERT_SITE_URL=${GROWALERT_SITE_URL:-http://$HOST:$PORT}

pids=()
alive() {
    local pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
    done
}
# Ctrl-C: TERM to each process started here, up to STOP_GRACE_S seconds for them to finish
# (Celery finishes its current tasks), then KILL for any left (a beat stuck in a sleep once
# needed it) and for their own children; beat's pid file goes with it. The servers of
# scripts/services.sh (Postgres, Redis, InfluxDB) keep running: `scripts/services.sh down`.
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "run: stopping web, flusher, evaluators, workers and beat (up to ${STOP_GRACE_S}s)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local waited=0 left
    left=$(alive)
    while [ -n "$left" ] && [ "$waited" -lt "$((STOP_GRACE_S * 10))" ]; do
        sleep 0.1
        waited=$((waited + 1))
        left=$(alive)
    done
    if [ -n "$left" ]; then
        echo "run: still running after ${STOP_GRACE_S}s, killed:" $left
        for pid in $left; do
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        done
    fi
    wait "${pids[@]}" 2>/dev/null || true
    rm -f "$BEAT_PIDFILE"
    echo "run: stopped. Postgres, Redis and InfluxDB are still running (scripts/services.sh down stops them)."
}
trap stop_all INT TERM EXIT

"$BIN/python" manage.py collectstatic --no-input -v0
# The queue names as the settings have them (.env may rename them; see growalert/celery.py).
read -r EVALUATION_QUEUE DELIVERY_QUEUE ARRIVAL_SHARDS < <(DJANGO_SETTINGS_MODULE=growalert.settings \
    "$BIN/python" -c 'from django.conf import settings as s
print(s.CELERY_EVALUATION_QUEUE, s.CELERY_DELIVERY_QUEUE,
      s.ARRIVAL_SHARDS if s.ARRIVAL_EVALUATION else 0)')
# The web server (growalert/serve.py: granian, WEB_WORKERS processes x WEB_THREADS threads).
"$BIN/python" -m growalert.serve --host "$HOST" --port "$PORT" --access-log &
pids+=($!)
# Moves the readings accepted by POST /ingest from Redis to InfluxDB (devices/ingest/queue.py).
"$BIN/python" manage.py ingest_flusher &
pids+=($!)
# Decides hosted monitors as their readings arrive (devices/arrival, docs/arrival.md): one
# process per shard (ARRIVAL_SHARDS, 0 when ARRIVAL_EVALUATION is off); the poller keeps the rest.
for ((shard = 0; shard < ${ARRIVAL_SHARDS:-1}; shard++)); do
    "$BIN/python" manage.py evaluate_on_arrival --shard "$shard" &
    pids+=($!)
done
# The demo's devices post to this server like real devices (growalert/demo/devices.py).
export DEMO_INGEST_URL=${DEMO_INGEST_URL:-http://$HOST:$PORT/ingest}
"$BIN/celery" -A growalert worker --loglevel INFO --queues "$EVALUATION_QUEUE" \
    --pool prefork --concurrency "$EVALUATION_PROCESSES" --hostname "evaluation@%h" &
pids+=($!)
"$BIN/celery" -A growalert worker --loglevel INFO --queues "$DELIVERY_QUEUE" \
    --pool threads --concurrency "$DELIVERY_THREADS" --hostname "delivery@%h" &
pids+=($!)
"$BIN/celery" -A growalert beat --loglevel INFO --pidfile "$BEAT_PIDFILE" &
pids+=($!)
# A local mail sink for the demo's emails: one line each in this console, the whole messages
# in .local/log/demo-mail.log (growalert/demo/mailsink.py).
if ! (exec 3<>/dev/tcp/127.0.0.1/1025) 2>/dev/null; then
    "$BIN/python" -m aiosmtpd -n -l 127.0.0.1:1025 -c growalert.demo.mailsink.Summary &
    pids+=($!)
fi

cat <<MSG

  growalert is running at http://$HOST:$PORT/
    dashboard:    http://$HOST:$PORT/app/     (login: admin / growalert-demo)
    admin:        http://$HOST:$PORT/admin/   (same login)
    API docs:     http://$HOST:$PORT/api/docs
    health:       http://$HOST:$PORT/readyz
    demo emails:  one line each below; whole messages in .local/log/demo-mail.log
  Press Ctrl-C to stop the web server, the workers and beat (Postgres, Redis and
  InfluxDB keep running: scripts/services.sh down stops them).

MSG

# Stop everything as soon as any one of them exits.
wait -n "${pids[@]}"
echo "run: a process exited; stopping the others"
