#!/usr/bin/env bash
# Runs the web server, the ingest flusher, two Celery workers and Celery beat in the foreground;
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

pids=()
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "run: stopping web, workers and beat"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop_all INT TERM EXIT

"$BIN/python" manage.py collectstatic --no-input -v0
# The queue names as the settings have them (.env may rename them; see growalert/celery.py).
read -r EVALUATION_QUEUE DELIVERY_QUEUE < <(DJANGO_SETTINGS_MODULE=growalert.settings \
    "$BIN/python" -c 'from django.conf import settings as s
print(s.CELERY_EVALUATION_QUEUE, s.CELERY_DELIVERY_QUEUE)')
"$BIN/gunicorn" growalert.wsgi --bind "$HOST:$PORT" --workers 2 --threads 4 \
    --access-logfile - --error-logfile - &
pids+=($!)
# Moves the readings accepted by POST /ingest from Redis to InfluxDB (devices/ingest/queue.py).
"$BIN/python" manage.py ingest_flusher &
pids+=($!)
# The demo's devices post to this server like real devices (growalert/demo/devices.py).
export DEMO_INGEST_URL=${DEMO_INGEST_URL:-http://$HOST:$PORT/ingest}
"$BIN/celery" -A growalert worker --loglevel INFO --queues "$EVALUATION_QUEUE" \
    --pool prefork --concurrency "$EVALUATION_PROCESSES" --hostname "evaluation@%h" &
pids+=($!)
"$BIN/celery" -A growalert worker --loglevel INFO --queues "$DELIVERY_QUEUE" \
    --pool threads --concurrency "$DELIVERY_THREADS" --hostname "delivery@%h" &
pids+=($!)
"$BIN/celery" -A growalert beat --loglevel INFO --pidfile .local/run/celerybeat.pid &
pids+=($!)
# A local mail sink so the demo's email notifications show up in this console.
if ! (exec 3<>/dev/tcp/127.0.0.1/1025) 2>/dev/null; then
    "$BIN/python" -m aiosmtpd -n -l 127.0.0.1:1025 -c aiosmtpd.handlers.Debugging stdout &
    pids+=($!)
fi

cat <<MSG

  growalert is running at http://$HOST:$PORT/
    dashboard:    http://$HOST:$PORT/app/     (login: admin / growalert-demo)
    admin:        http://$HOST:$PORT/admin/   (same login)
    API docs:     http://$HOST:$PORT/api/docs
    health:       http://$HOST:$PORT/readyz
    demo emails:  printed below by the local mail sink on 127.0.0.1:1025
  Press Ctrl-C to stop the web server, the workers and beat.

MSG

# Stop everything as soon as any one of them exits.
wait -n "${pids[@]}"
echo "run: a process exited; stopping the others"
