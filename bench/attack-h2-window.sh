#!/usr/bin/env bash
# bench/attack-h2-window.sh: the zero-window HTTP/2 attack against ssegate, nginx and haproxy as h2c front proxies
# of a busy SSE origin; prints the proxy's RSS before and at most during the attack (docs/benchmarks.md,
# "Zero-window HTTP/2 clients").
# Usage: bench/attack-h2-window.sh BUILD_DIR      Knobs: ZW_TARGETS="ssegate nginx haproxy", ZW_CONNS="4 16",
#   ZW_STREAMS (per connection, default 256), ZW_SECONDS (attack length, default 8), ZW_INTERVAL_US (origin tick,
#   default 1000), ZW_SIZE (event bytes, default 1000), SG_SSEGATE_ARGS (extra ssegate flags).
# Each stream of the origin gets ZW_SIZE bytes every ZW_INTERVAL_US: 1 MB/s per stream by default. The client reads
# nothing and never opens a window, so whatever the proxy takes from the origin it has to hold.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
ORIGIN=$B/bench/origin
SSEGATE=$B/ssegate
TARGETS=${ZW_TARGETS:-ssegate nginx haproxy}
CONNS_LIST=${ZW_CONNS:-4 16}
STREAMS=${ZW_STREAMS:-256}
SECONDS_=${ZW_SECONDS:-8}
INTERVAL=${ZW_INTERVAL_US:-1000}
SIZE=${ZW_SIZE:-1000}
WORKERS=2
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

. bench/lib.sh
bench_init ssegate-zw

# rss_kib PIDS...: summed VmRSS of the processes (nginx: master + workers).
rss_kib() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

run_one() {     # run_one TARGET CONNS
    local t=$1 conns=$2 oport pport dir="$TMP/$1-$2" pid opid
    mkdir -p "$dir"
    oport=$(free_port)
    pport=$(free_port)
    "$ORIGIN" --port "$oport" --interval-us "$INTERVAL" --size "$SIZE" 2>>"$dir/origin.log" &
    opid=$!
    STARTED+=("$opid")
    wait_listen "$oport" "$opid" || { echo "$t: origin did not start"; return; }
    case $t in
    ssegate)
        cat >"$dir/gw.yaml" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: $pport}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: 127.0.0.1, port: $oport}]
YAML
        # shellcheck disable=SC2086
        "$SSEGATE" -c "$dir/gw.yaml" --workers $WORKERS --access-log off ${SG_SSEGATE_ARGS:-} 2>>"$dir/stderr.log" &
        pid=$!
        ;;
    nginx)
        mkdir -p "$dir/logs"
        sed -e "s|@PORT@|$pport|g" -e "s|@ORIGIN_PORT@|$oport|g" -e "s|@DIR@|$dir|g" \
            -e "s|@LISTEN_OPTS@|http2|" -e "s|@SERVER_EXTRA@|http2_max_concurrent_streams 256;|" \
            bench/nginx.conf.in >"$dir/nginx.conf"
        nginx -p "$dir" -c "$dir/nginx.conf" \
            -g "daemon off; master_process on; pid $dir/nginx.pid; error_log $dir/error.log warn;" 2>>"$dir/stderr.log" &
        pid=$!
        ;;
    haproxy)
        sed -e "s|@PORT@|$pport|g" -e "s|@ORIGIN_PORT@|$oport|g" -e "s|@BIND_OPTS@|proto h2|" \
            -e "s|@GLOBAL_EXTRA@|tune.h2.max-concurrent-streams 256|" bench/haproxy.cfg.in >"$dir/haproxy.cfg"
        haproxy -db -f "$dir/haproxy.cfg" 2>>"$dir/stderr.log" &
        pid=$!
        ;;
    esac
    STARTED+=("$pid")
    if ! wait_listen "$pport" "$pid"; then
        echo "$t: did not start: $(tail -n 3 "$dir/stderr.log")"
        stop_pid "$pid"; stop_pid "$opid"
        return
    fi
    sleep 0.5
    local pids=("$pid") kids
    kids=$(pgrep -P "$pid" 2>/dev/null)
    [ -n "$kids" ] && pids+=($kids)
    local base max=0 now res
    base=$(rss_kib "${pids[@]}")
    node bench/h2-zero-window.mjs "$pport" "$conns" "$STREAMS" "$SECONDS_" >"$dir/client.log" 2>&1 &
    local cpid=$!
    STARTED+=("$cpid")
    while kill -0 "$cpid" 2>/dev/null; do
        now=$(rss_kib "${pids[@]}")
        [ "$now" -gt "$max" ] && max=$now
        sleep 0.2
    done
    wait "$cpid" 2>/dev/null
    res=$(grep '^RESULT' "$dir/client.log" | sed 's/^RESULT //')
    printf '%-8s conns=%-3s streams/conn=%s rss_before_kib=%s rss_max_kib=%s growth_mib=%s %s\n' "$t" "$conns" \
        "$STREAMS" "$base" "$max" "$(awk -v a="$max" -v b="$base" 'BEGIN{printf "%.1f", (a-b)/1024}')" "${res:-client failed: $(tail -n 2 "$dir/client.log")}"
    stop_pid "$pid"
    stop_pid "$opid"
}

for t in $TARGETS; do
    if [ "$t" != ssegate ] && ! command -v "$t" >/dev/null; then
        echo "$t: not installed (SG_BOOTSTRAP_BENCH=1 bash scripts/bootstrap.sh)"
        continue
    fi
    for c in $CONNS_LIST; do run_one "$t" "$c"; done
done
