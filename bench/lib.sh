# bench/lib.sh: what the bench scripts share (sourced, not run): a temporary directory, the processes they start
# (stopped by PID on exit), free ports, and waiting for a listener.

# bench_init NAME: TMP is a new directory /tmp/NAME.XXXXXX and STARTED an empty list of PIDs; on exit every PID in
# STARTED is stopped (stop_pid) and TMP removed.
bench_init() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX") || exit 1
    STARTED=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p
    for p in "${STARTED[@]}"; do
        stop_pid "$p"
    done
    rm -rf "$TMP"
}

# stop_pid PID: SIGTERM, then SIGKILL if it is still there after 5 s.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# free_port: a free port below the ephemeral range (so thousands of outgoing connections never collide with it).
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    echo "bench: no free port" >&2
    return 1
}

# wait_listen PORT [PID [TRIES]]: until something listens on PORT (TRIES x 50 ms, default 100: 5 s), or PID dies.
wait_listen() {
    local port=$1 pid=${2:-} tries=${3:-100} i
    for ((i = 0; i < tries; i++)); do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}
