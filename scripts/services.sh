#!/usr/bin/env bash
# Local Postgres, Redis and InfluxDB for growalert: loopback only, non-default ports,
# data and logs under .local/. Usage: scripts/services.sh up|down|status [postgres|redis|influxdb]...
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=${GROWALERT_LOCAL_DIR:-$ROOT/.local}
PG_PORT=${GROWALERT_PG_PORT:-15432}
REDIS_PORT=${GROWALERT_REDIS_PORT:-16379}
INFLUX_PORT=${GROWALERT_INFLUX_PORT:-18086}
INFLUX_RPC_PORT=${GROWALERT_INFLUX_RPC_PORT:-18088}
PG_USER=growalert
PG_PASSWORD=${GROWALERT_PG_PASSWORD:-growalert}
ALL_SERVICES=(postgres redis influxdb)

die() { echo "services: $*" >&2; exit 1; }
say() { echo "services: $*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_owner() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 (pid \2)/p' | head -1
}

refuse_taken_port() {  # $1 service, $2 port
    local owner
    owner=$(port_owner "$2")
    die "$1: port $2 on 127.0.0.1 is taken by another process${owner:+: $owner}. Stop it, or choose another port with the matching GROWALERT_*_PORT variable."
}

wait_for_port() {  # $1 service, $2 port, $3 log file
    for _ in $(seq 1 100); do
        port_open "$2" && return 0
        sleep 0.1
    done
    die "$1 did not start listening on 127.0.0.1:$2 within 10 s; see $3"
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(head -1 "$1")" 2>/dev/null; }

# Postgres refuses to run as root: when we are root, run it as the 'postgres' system user.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [[ -n $dir ]]; then echo "$dir"; else dirname "$(command -v initdb || command -v postgres)"; fi
}

# ---------------------------------------------------------------- postgres
pg_running() { pid_alive "$LOCAL/postgres/data/postmaster.pid"; }

postgres_up() {
    local bin data=$LOCAL/postgres/data log=$LOCAL/log/postgres.log
    bin=$(pg_bin)
    [[ -x $bin/initdb ]] || die "postgres: initdb not found; run scripts/bootstrap.sh to install postgresql"
    if pg_running; then say "postgres already running on 127.0.0.1:$PG_PORT"; return; fi
    port_open "$PG_PORT" && refuse_taken_port postgres "$PG_PORT"
    mkdir -p "$LOCAL/postgres" "$LOCAL/run"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$LOCAL/postgres" "$LOCAL/run"
    if [[ ! -f $data/PG_VERSION ]]; then
        local pwfile
        pwfile=$(mktemp)
        echo "$PG_PASSWORD" >"$pwfile"
        [[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
        as_pg "$bin/initdb" -D "$data" -U "$PG_USER" --pwfile="$pwfile" --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOCAL/log/postgres-initdb.log" 2>&1 ||
            { rm -f "$pwfile"; die "postgres: initdb failed; see $LOCAL/log/postgres-initdb.log"; }
        rm -f "$pwfile"
    fi
    touch "$log"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$log"
    as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 30 start -o \
        "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$LOCAL/run -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >/dev/null || die "postgres failed to start; see $log"
    wait_for_port postgres "$PG_PORT" "$log"
    if ! as_pg "$bin/psql" -h "$LOCAL/run" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='growalert'" | grep -q 1; then
        as_pg "$bin/createdb" -h "$LOCAL/run" -p "$PG_PORT" -U "$PG_USER" growalert
    fi
    say "postgres up on 127.0.0.1:$PG_PORT (database growalert, user $PG_USER)"
}

postgres_down() {
    if pg_running; then
        as_pg "$(pg_bin)/pg_ctl" -D "$LOCAL/postgres/data" -m fast -w stop >/dev/null
        say "postgres stopped"
    else
        say "postgres not running"
    fi
}

postgres_status() { pg_running && port_open "$PG_PORT"; }

# ---------------------------------------------------------------- redis
redis_up() {
    local log=$LOCAL/log/redis.log pidfile=$LOCAL/run/redis.pid
    command -v redis-server >/dev/null || die "redis: redis-server not found; run scripts/bootstrap.sh"
    if pid_alive "$pidfile"; then
        # Started by an older version of this script without AOF: switch it on in place.
        if command -v redis-cli >/dev/null &&
            [[ $(redis-cli -p "$REDIS_PORT" config get appendonly | tail -1) == no ]]; then
            redis-cli -p "$REDIS_PORT" config set appendfsync everysec >/dev/null
            redis-cli -p "$REDIS_PORT" config set appendonly yes >/dev/null
            say "redis: AOF switched on"
        fi
        say "redis already running on 127.0.0.1:$REDIS_PORT"
        return
    fi
    port_open "$REDIS_PORT" && refuse_taken_port redis "$REDIS_PORT"
    mkdir -p "$LOCAL/redis" "$LOCAL/run"
    # AOF, fsync'd every second: a reading POST /ingest acknowledged (202) waits in a Redis
    # stream until the flusher writes it to InfluxDB, and survives a Redis restart or kill -9
    # (at most the last second is lost if the machine itself fails). docs/devices.md.
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$LOCAL/redis" --daemonize yes \
        --pidfile "$pidfile" --logfile "$log" --save "" --appendonly yes --appendfsync everysec ||
        die "redis failed to start; see $log"
    wait_for_port redis "$REDIS_PORT" "$log"
    # With AOF, Redis answers LOADING while it replays its log: wait until it serves.
    if command -v redis-cli >/dev/null; then
        for _ in $(seq 1 600); do
            [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
            sleep 0.1
        done
    fi
    say "redis up on 127.0.0.1:$REDIS_PORT"
}

stop_pidfile() {  # $1 service, $2 pidfile
    if pid_alive "$2"; then
        local pid
        pid=$(head -1 "$2")
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        rm -f "$2"
        say "$1 stopped"
    else
        say "$1 not running"
    fi
}

redis_down() { stop_pidfile redis "$LOCAL/run/redis.pid"; }
redis_status() { pid_alive "$LOCAL/run/redis.pid" && port_open "$REDIS_PORT"; }

# ---------------------------------------------------------------- influxdb
influx_config() {
    cat <<EOF
reporting-enabled = false
bind-address = "127.0.0.1:$INFLUX_RPC_PORT"
[meta]
  dir = "$LOCAL/influxdb/meta"
[data]
  dir = "$LOCAL/influxdb/data"
  wal-dir = "$LOCAL/influxdb/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
[continuous_queries]
  enabled = false
EOF
}

influxdb_up() {
    local log=$LOCAL/log/influxdb.log pidfile=$LOCAL/run/influxdb.pid
    command -v influxd >/dev/null || die "influxdb: influxd not found; run scripts/bootstrap.sh"
    if pid_alive "$pidfile"; then say "influxdb already running on 127.0.0.1:$INFLUX_PORT"; return; fi
    port_open "$INFLUX_PORT" && refuse_taken_port influxdb "$INFLUX_PORT"
    port_open "$INFLUX_RPC_PORT" && refuse_taken_port influxdb "$INFLUX_RPC_PORT"
    mkdir -p "$LOCAL/influxdb" "$LOCAL/run"
    influx_config >"$LOCAL/influxdb/influxdb.conf"
    nohup influxd run -config "$LOCAL/influxdb/influxdb.conf" -pidfile "$pidfile" >>"$log" 2>&1 &
    wait_for_port influxdb "$INFLUX_PORT" "$log"
    say "influxdb up on 127.0.0.1:$INFLUX_PORT"
}

influxdb_down() { stop_pidfile influxdb "$LOCAL/run/influxdb.pid"; }
influxdb_status() { pid_alive "$LOCAL/run/influxdb.pid" && port_open "$INFLUX_PORT"; }

# ---------------------------------------------------------------- main
port_of() {
    case $1 in postgres) echo "$PG_PORT" ;; redis) echo "$REDIS_PORT" ;; influxdb) echo "$INFLUX_PORT" ;; esac
}

main() {
    local action=${1:-status}
    shift || true
    local services=("$@")
    [[ ${#services[@]} -gt 0 ]] || services=("${ALL_SERVICES[@]}")
    for s in "${services[@]}"; do
        [[ " ${ALL_SERVICES[*]} " == *" $s "* ]] || die "unknown service '$s' (choose from: ${ALL_SERVICES[*]})"
    done
    mkdir -p "$LOCAL/log"
    local failed=0
    case $action in
        up) for s in "${services[@]}"; do "${s}_up"; done ;;
        down) for s in "${services[@]}"; do "${s}_down"; done ;;
        status)
            for s in "${services[@]}"; do
                if "${s}_status"; then
                    echo "$s: running on 127.0.0.1:$(port_of "$s")"
                else
                    echo "$s: stopped"
                    failed=1
                fi
            done
            ;;
        *) die "usage: $0 up|down|status [${ALL_SERVICES[*]}]" ;;
    esac
    return $failed
}

main "$@"
