#!/usr/bin/env bash
# Installs what growalert needs and is missing: Debian packages (postgresql, redis-server,
# influxdb; chromium and prometheus (for promtool) with --browser; wrk with --bench) and the Python virtualenv. Safe and fast
# to run again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${GROWALERT_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

die() { echo "bootstrap: $*" >&2; exit 1; }

want_browser=0
want_bench=0
for arg in "$@"; do
    case $arg in
        --browser) want_browser=1 ;;
        --bench) want_bench=1 ;;
        *) die "unknown option $arg (use --browser, --bench)" ;;
    esac
done

missing=()
pg_found=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -1 || true)
[[ -n $pg_found ]] || command -v initdb >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v influxd >/dev/null || missing+=(influxdb)
[[ $want_browser -eq 1 ]] && ! command -v chromium >/dev/null && missing+=(chromium)
# promtool checks deploy/prometheus/ in the suite (about 19 MB to download, 24 s here).
[[ $want_browser -eq 1 ]] && ! command -v promtool >/dev/null && missing+=(prometheus)
[[ $want_bench -eq 1 ]] && ! command -v wrk >/dev/null && missing+=(wrk)

if [[ ${#missing[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null ||
        die "missing ${missing[*]} and this is not a Debian/Ubuntu machine: install them yourself, or use docker-compose.yml"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "missing ${missing[*]}: run as root or install sudo"
        sudo=(sudo)
    fi
    echo "bootstrap: installing ${missing[*]} with apt-get"
    "${sudo[@]}" apt-get update -qq || die "apt-get update failed (no network to the Debian mirror?)"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/tmp/growalert-apt.log 2>&1 ||
        die "apt-get could not install ${missing[*]}; see /tmp/growalert-apt.log"
    # The Debian packages may start their own instances on default ports; ours run under .local/.
    for svc in postgresql redis-server influxdb prometheus; do
        command -v service >/dev/null && "${sudo[@]}" service "$svc" stop >/dev/null 2>&1 || true
    done
fi

# Python dependencies: reinstalled only when pyproject.toml changes.
stamp="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [[ ! -f $stamp ]]; then
    [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv with $PYTHON"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT[dev]" || die "pip install failed"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
if [[ $want_browser -eq 1 ]] && ! "$VENV/bin/python" -c "import playwright" 2>/dev/null; then
    "$VENV/bin/pip" install -q "playwright>=1.45" || die "pip install playwright failed"
fi
