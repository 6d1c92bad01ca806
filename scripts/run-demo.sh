#!/usr/bin/env bash
# scripts/run-demo.sh: `make run`: starts the demo SSE backend and ssegate (examples/gateway.yaml); Ctrl-C stops both.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${SG_BUILD_DIR:-build}
BACKEND=$B/examples/demo_backend
GATEWAY=./ssegate
[ -x "$GATEWAY" ] || GATEWAY=$B/ssegate
CONFIG=examples/gateway.yaml
BACKEND_PORT=9090
GATEWAY_PORT=8080
ADMIN=127.0.0.1:9901

for f in "$BACKEND" "$GATEWAY"; do
    if [ ! -x "$f" ]; then
        echo "run-demo: $f is missing: run \`make\` first" >&2
        exit 1
    fi
done

# listening PORT: true when something accepts connections on 127.0.0.1:PORT.
listening() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

busy=()
for p in "$BACKEND_PORT" "$GATEWAY_PORT" "${ADMIN##*:}"; do
    listening "$p" && busy+=("$p")
done
if [ ${#busy[@]} -gt 0 ]; then
    echo "run-demo: port(s) ${busy[*]} on 127.0.0.1 are already in use (another demo still running?)." >&2
    echo "run-demo: the demo needs 9090 (backend), 8080 (gateway) and 9901 (admin); free them and retry." >&2
    exit 1
fi

BACKEND_PID=""
GATEWAY_PID=""
stop_both() {
    local pid
    for pid in $GATEWAY_PID $BACKEND_PID; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $GATEWAY_PID $BACKEND_PID; do
        wait "$pid" 2>/dev/null
    done
    GATEWAY_PID=""
    BACKEND_PID=""
}
on_signal() {
    echo
    echo "run-demo: stopping ssegate and the demo backend"
    stop_both
    exit 0
}
trap on_signal INT TERM
trap stop_both EXIT

"$BACKEND" --port "$BACKEND_PORT" --www examples &
BACKEND_PID=$!
"$GATEWAY" -c "$CONFIG" --admin "$ADMIN" &
GATEWAY_PID=$!

# Wait (10 s at most) until both listen; stop at once if either exits.
for _ in $(seq 1 200); do
    if ! kill -0 "$BACKEND_PID" 2>/dev/null; then
        echo "run-demo: the demo backend exited (see its message above)" >&2
        exit 1
    fi
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
        echo "run-demo: ssegate exited (see its message above)" >&2
        exit 1
    fi
    if listening "$BACKEND_PORT" && listening "$GATEWAY_PORT"; then
        break
    fi
    sleep 0.05
done
if ! listening "$BACKEND_PORT" || ! listening "$GATEWAY_PORT"; then
    echo "run-demo: ssegate or the backend did not start listening within 10 s" >&2
    exit 1
fi

echo "ssegate is running: open http://127.0.0.1:$GATEWAY_PORT/ (events at /events; admin at http://$ADMIN/healthz). Ctrl-C stops both."

# Run until Ctrl-C, or until one of the two exits on its own (then stop the other).
while kill -0 "$BACKEND_PID" 2>/dev/null && kill -0 "$GATEWAY_PID" 2>/dev/null; do
    wait -n "$BACKEND_PID" "$GATEWAY_PID" 2>/dev/null || true
done
if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    echo "run-demo: ssegate exited; stopping the backend" >&2
else
    echo "run-demo: the demo backend exited; stopping ssegate" >&2
fi
exit 1
