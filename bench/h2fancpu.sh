#!/usr/bin/env bash
# bench/h2fancpu.sh: user-space instructions per HTTP/2 subscriber per event on a shared SSE stream, counted by
# callgrind (repeatable on a shared machine, unlike CPU time). ssegate (--workers 1) runs under callgrind; after
# every subscriber has its head the counters are zeroed, bench/fanorigin.c sends EVENTS events, and once every
# subscriber has them all the counters are dumped. Result: Ir / (EVENTS x subscribers). Kernel time (system calls)
# is not counted by callgrind.
# SG_H2FANCPU_MODE=cpu: ssegate runs natively instead, and the result is its CPU time (user + system, from
# /proc/PID/stat) over the same window, per subscriber and event: kernel included, but noisy on a shared machine.
# H1=1: HTTP/1.1 subscribers (CONNS x STREAMS connections) instead of HTTP/2.
# Usage: bench/h2fancpu.sh SSEGATE_BINARY [CONNS STREAMS EVENTS SIZE RATE]   (needs `make` for build/bench/fanorigin)
set -u
BIN=$1 CONNS=${2:-10} STREAMS=${3:-100} EVENTS=${4:-20} SIZE=${5:-100} RATE=${6:-20}
MODE=${SG_H2FANCPU_MODE:-callgrind}
HERE=$(cd "$(dirname "$0")" && pwd)
ORIGIN=${SG_FANORIGIN:-$HERE/../build/bench/fanorigin}
. "$HERE/lib.sh"
bench_init h2fancpu
# SG_H2FANCPU_KEEP=1: the directory (callgrind's files) stays.
[ -n "${SG_H2FANCPU_KEEP:-}" ] && trap 'for p in "${STARTED[@]}"; do stop_pid "$p"; done; echo "h2fancpu: kept $TMP" >&2' EXIT
oport=$(free_port) && port=$(free_port) || exit 1
cat >"$TMP/gw.yaml" <<EOC
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: $port}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: 127.0.0.1, port: $oport}]
---
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: p}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}
  default: {timeouts: {routeTimeout: 0s}}
---
apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: share}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}
  default: {heartbeatInterval: 0s, sharing: {enabled: true}}
EOC
"$ORIGIN" --port "$oport" --events "$EVENTS" --rate "$RATE" --size "$SIZE" 2>"$TMP/origin.log" &
opid=$!; STARTED+=("$opid")
if [ "$MODE" = cpu ]; then
    "$BIN" -c "$TMP/gw.yaml" --workers 1 --access-log off 2>"$TMP/vg.log" &
else
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.%p" "$BIN" -c "$TMP/gw.yaml" --workers 1 --access-log off \
        2>"$TMP/vg.log" &
fi
vpid=$!; STARTED+=("$vpid")
wait_listen "$port" "$vpid" 600 || { echo "h2fancpu: ssegate did not listen within 30 s" >&2; cat "$TMP/vg.log" >&2; exit 1; }
mkfifo "$TMP/out"
node "$HERE/h2fan-client.mjs" "$port" /sse "$CONNS" "$STREAMS" "$EVENTS" 300 >"$TMP/out" 2>"$TMP/client.err" &
cpid=$!; STARTED+=("$cpid")
exec 3<"$TMP/out"
read -r -t 300 line <&3 || { echo "h2fancpu: no ready line" >&2; cat "$TMP/client.err" >&2; exit 1; }
[ "$line" = ready ] || { echo "h2fancpu: $line" >&2; exit 1; }
sleep 2
# cg_dump N: asks callgrind for dump N and waits until it is written. A process blocked in epoll_wait only takes
# the request when it wakes, so the listener is poked (a bad request line: 400, closed) until the file is complete.
cg_dump() {
    callgrind_control -d "$vpid" >/dev/null 2>&1 &
    for _ in $(seq 1 100); do
        grep -q '^totals:' "$TMP/cg.$vpid.$1" 2>/dev/null && return 0
        (exec 5<>"/dev/tcp/127.0.0.1/$port" && printf 'x\r\n\r\n' >&5 && timeout 1 cat <&5 >/dev/null) 2>/dev/null
        sleep 0.2
    done
    echo "h2fancpu: callgrind dump $1 not written" >&2
    exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$vpid/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$vpid/stat"; }
if [ "$MODE" = cpu ]; then
    t0=$(cpu_ticks) s0=$(sys_ticks)
    perf stat -e task-clock,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait -p "$vpid" -o "$TMP/perf.txt" &
    ppid=$!; STARTED+=("$ppid")
    if [ -n "${SG_H2FANCPU_RECORD:-}" ]; then   # a cpu-clock profile of the window, to this file
        perf record -q -e cpu-clock -F 4999 -p "$vpid" -o "$SG_H2FANCPU_RECORD" 2>/dev/null &
        rpid=$!; STARTED+=("$rpid")
    fi
    sleep 0.5
else
    cg_dump 1
fi
kill -USR1 "$opid"
read -r -t 300 line <&3 || { echo "h2fancpu: no done line" >&2; exit 1; }
case $line in done*) ;; *) echo "h2fancpu: $line" >&2; exit 1 ;; esac
subs=$((CONNS * STREAMS))
if [ "$MODE" = cpu ]; then
    t1=$(cpu_ticks) s1=$(sys_ticks)
    kill -INT "$ppid"
    wait "$ppid" 2>/dev/null
    if [ -n "${rpid:-}" ]; then kill -INT "$rpid"; wait "$rpid" 2>/dev/null; fi
    hz=$(getconf CLK_TCK)
    tc=$(awk '/task-clock/ {gsub(",", "", $1); print $1}' "$TMP/perf.txt")
    wv=$(awk '/sys_enter_writev/ {gsub(",", "", $1); print $1}' "$TMP/perf.txt")
    ew=$(awk '/sys_enter_epoll_wait/ {gsub(",", "", $1); print $1}' "$TMP/perf.txt")
    echo "RESULT subscribers=$subs events=$EVENTS cpu_ms=$(((t1 - t0) * 1000 / hz)) sys_ms=$(((s1 - s0) * 1000 / hz)) task_clock_ms=$tc" \
        "ns_per_subscriber_event=$(awk -v t="$tc" -v n="$((EVENTS * subs))" 'BEGIN {printf "%.0f", t * 1e6 / n}')" \
        "writev=$wv epoll_wait=$ew"
    exit 0
fi
cg_dump 2
ir=$(grep -h "^summary:" "$TMP"/cg.*.2 2>/dev/null | awk "{s += \$2} END {print s}")
[ -n "$ir" ] && [ "$ir" != 0 ] || { echo "h2fancpu: no callgrind dump" >&2; ls "$TMP" >&2; exit 1; }
echo "RESULT subscribers=$subs events=$EVENTS bytes_received=${line#done } Ir=$ir Ir_per_subscriber_event=$((ir / (EVENTS * subs)))"
# the top functions, for the record
for f in "$TMP"/cg.*.2; do python3 "$HERE/cgself.py" "$f" 40; done >"${SG_H2FANCPU_ANNOTATE:-/dev/null}"
