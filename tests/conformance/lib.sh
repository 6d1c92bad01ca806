# lib.sh: shared bits of the conformance runners: locate the peer cases, pick ports, run ssegate, clean up.
# Sourced by run-*.sh; not a test by itself.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONF=${SG_CONFORMANCE_DIR:-$REPO/../shared/conformance}
SSEGATE_BIN=${SSEGATE_BIN:-$REPO/build/ssegate}
[ -x "$SSEGATE_BIN" ] || SSEGATE_BIN=$REPO/ssegate
WORK=$(mktemp -d /tmp/ssegate-conf-XXXXXX)
GW_PID=""

cleanup() {
    if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then
        kill -TERM "$GW_PID" 2>/dev/null
        wait "$GW_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

need_conformance() {
    if [ ! -d "$CONF" ]; then
        echo "conformance: $CONF not found (set SG_CONFORMANCE_DIR); nothing to run"
        exit 0
    fi
    if [ ! -x "$SSEGATE_BIN" ]; then
        echo "conformance: no ssegate binary at $SSEGATE_BIN (run make, or set SSEGATE_BIN)" >&2
        exit 2
    fi
}

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_gateway CONFIG PORT [HOST]: runs ssegate in the background, waits until it accepts on HOST:PORT.
start_gateway() {
    local cfg=$1 port=$2 host=${3:-127.0.0.1}
    "$SSEGATE_BIN" -c "$cfg" --access-log off >"$WORK/gw.out" 2>"$WORK/gw.err" &
    GW_PID=$!
    for _ in $(seq 1 200); do
        if ! kill -0 "$GW_PID" 2>/dev/null; then
            echo "conformance: ssegate exited:" >&2
            cat "$WORK/gw.err" >&2
            exit 2
        fi
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "conformance: ssegate did not listen on $host:$port" >&2
    cat "$WORK/gw.err" >&2
    exit 2
}
