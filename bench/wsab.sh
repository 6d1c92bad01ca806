#!/usr/bin/env bash
# bench/wsab.sh: interleaved A/B of the WebSocket fixed-rate latency (wslat) between two ssegate builds, with
# HAProxy as the third arm. Short runs with fresh processes, the order rotated each round, so that a shared
# machine's load falls on all three alike; read the rounds, not only the medians (docs/benchmarks.md, "The
# WebSocket tail").
# Usage: bench/wsab.sh OLD_BUILD NEW_BUILD [ROUNDS]   (e.g. bench/wsab.sh /tmp/build-old build 12)
# Knobs: WS_CONNS (1000) WS_RATE (20000) WS_SIZE (128) AB_WARMUP (2) AB_DURATION (5) SG_BENCH_WORKERS (2),
#   AB_PORT_BASE (29480: origin, +1 ssegate, +2 haproxy), AB_TARGETS ("A B H"; H = haproxy, left out when absent),
#   AB_PIN=1 (as bench/run.sh's SG_BENCH_PIN=1: the proxy with one worker/thread alone on CPU 0, origin and load
#   generator on CPU 1), WSLOAD_ARGS (more wsload options, e.g. "--trace-slow 1000 --trace-file F"; F gets the
#   round and arm in place of @ARM@), AB_WSLOAD (one wsload binary for every arm, e.g. build/bench/wsload when
#   WSLOAD_ARGS uses an option the old build's wsload lacks; default: each build's own, HAProxy with A's),
#   AB_ARGS_A, AB_ARGS_B (more ssegate options for that arm, e.g. the same build twice with and without a flag),
#   AB_SCHED=1 (needs perf: each run also records the scheduler on CPUs 0 and 1 and a wsload --trace, and
#   bench/wstail.py gives the "clean" percentiles, over the messages during which no other process ran on those
#   CPUs: on a shared machine, the proxy's own tail; the traces stay in AB_KEEP if set; with AB_WAKE=1 the
#   record also has the wakeups, and bench/wswake.py prints each thread's wait for a CPU once woken, by what ran
#   on that CPU (lines "rN ARM WAKE ..." and "rN ARM   target_busy_with=...")). Pinned or not: unpinned,
#   the proxy, origin and client share CPUs 0 and 1, which is all of them on the 2-CPU machine this was made on;
#   on a larger one, pin them (AB_PIN=1) or the clean filter misses what ran elsewhere).
# Each build directory needs ssegate, bench/wsecho and bench/wsload (make). Prints one line per run and a summary.
set -uo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/wsab.sh OLD_BUILD NEW_BUILD [ROUNDS]}
B=${2:?usage: bench/wsab.sh OLD_BUILD NEW_BUILD [ROUNDS]}
ROUNDS=${3:-12}
CONNS=${WS_CONNS:-1000}
RATE=${WS_RATE:-20000}
SIZE=${WS_SIZE:-128}
WARMUP=${AB_WARMUP:-2}
DURATION=${AB_DURATION:-5}
WORKERS=${SG_BENCH_WORKERS:-2}
PB=${AB_PORT_BASE:-29480}
TARGETS=${AB_TARGETS:-A B H}
PIN_PROXY=() PIN_PEERS=()
if [ "${AB_PIN:-0}" = 1 ]; then
    WORKERS=1
    PIN_PROXY=(taskset -c 0)
    PIN_PEERS=(taskset -c 1)
fi
SCHED=${AB_SCHED:-0}
if [ "$SCHED" = 1 ]; then
    if ! command -v perf >/dev/null || { [ "${AB_PIN:-0}" != 1 ] && [ "$(nproc)" != 2 ]; }; then
        echo "wsab: AB_SCHED=1 needs perf, and AB_PIN=1 on a machine with more than 2 CPUs" >&2
        exit 2
    fi
    AB_WSLOAD=${AB_WSLOAD:-$B/bench/wsload}     # --trace: the new build's wsload
fi
command -v haproxy >/dev/null || TARGETS=${TARGETS//H/}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init wsab

cat >"$TMP/gw.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: $((PB + 1))}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: 127.0.0.1, port: $PB}]
---
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: p}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}
  default: {timeouts: {routeTimeout: 0s}}
EOF
sed -e "s|@PORT@|$((PB + 2))|" -e "s|@ORIGIN_PORT@|$PB|" -e "s|@BIND_OPTS@||" -e "s|@GLOBAL_EXTRA@||" \
    -e "s|@SERVER_OPTS@||" -e "s|nbthread 2|nbthread $WORKERS|" bench/haproxy.cfg.in >"$TMP/haproxy.cfg"

steal() {   # steal ticks of CPUs 0 and 1 so far (/proc/stat)
    awk '$1 == "cpu0" || $1 == "cpu1" { s += $9 } END { print s + 0 }' /proc/stat
}

run() {     # run ROUND ARM: one window; appends "rROUND ARM RESULT ..." to $TMP/results
    local r=$1 v=$2 d=$A port=$((PB + 1)) p e
    [ "$v" = B ] && d=$B
    "${PIN_PEERS[@]}" "$d/bench/wsecho" --port "$PB" 2>>"$TMP/origin.log" &
    e=$!
    STARTED=("$e")
    if [ "$v" = H ]; then
        "${PIN_PROXY[@]}" haproxy -db -f "$TMP/haproxy.cfg" 2>>"$TMP/haproxy.log" &
        port=$((PB + 2))
    else
        local sargs=()
        [ "$v" = A ] && read -r -a sargs <<<"${AB_ARGS_A:-}"
        [ "$v" = B ] && read -r -a sargs <<<"${AB_ARGS_B:-}"
        "${PIN_PROXY[@]}" "$d/ssegate" -c "$TMP/gw.yaml" --workers "$WORKERS" --access-log off "${sargs[@]}" \
            2>>"$TMP/ssegate.log" &
    fi
    p=$!
    STARTED+=("$p")
    wait_listen "$PB" "$e" && wait_listen "$port" "$p" || echo "wsab: round $r $v: not listening" >&2
    local extra=()
    [ -n "${WSLOAD_ARGS:-}" ] && read -r -a extra <<<"${WSLOAD_ARGS//@ARM@/r$r-$v}"
    local tr=$TMP/trace-r$r-$v pd=$TMP/sched-r$r-$v.data l pp=""
    [ "$SCHED" = 1 ] && extra+=(--trace "$tr")
    timeout $((WARMUP + DURATION + 20)) "${PIN_PEERS[@]}" "${AB_WSLOAD:-$d/bench/wsload}" "${extra[@]}" --port "$port" --conns "$CONNS" --size "$SIZE" --rate "$RATE" \
        --warmup "$WARMUP" --duration "$DURATION" --label "$v" --origin-pid "$e" --proxy-pids "$p" >"$TMP/out" 2>/dev/null &
    l=$!
    STARTED+=("$l")
    if [ "$SCHED" = 1 ]; then
        # the whole run but the connects (the trace's window is inside); own = every thread of the three
        sleep 0.5
        local q own_pids=("$p" "$e" "$l")
        for q in "$p" "$e" "$l"; do own_pids+=($(pgrep -P "$q")); done    # timeout's child: wsload
        own=$(for q in "${own_pids[@]}"; do ls /proc/"$q"/task 2>/dev/null; done | grep -E '^[0-9]+$' | paste -sd,)
        local evs=sched:sched_switch
        [ "${AB_WAKE:-0}" = 1 ] && evs+=,sched:sched_wakeup
        perf record -q -k CLOCK_MONOTONIC -e "$evs" -C 0,1 -o "$pd" -- sleep $((WARMUP + DURATION + 1)) \
            >/dev/null 2>&1 &
        pp=$!
        STARTED+=("$pp")
    fi
    local st0 st1
    st0=$(steal)
    wait "$l"
    [ -n "$pp" ] && wait "$pp"
    st1=$(steal)
    grep '^RESULT' "$TMP/out" | sed "s/^/r$r $v /" | tee -a "$TMP/results"
    if [ "$SCHED" = 1 ] && [ -s "$tr" ] && [ -s "$pd" ]; then
        # steal: time the host took CPUs 0 and 1 from this VM during the run, in ticks (USER_HZ); the scheduler
        # trace cannot see it (the task that was running seems to run on)
        python3 bench/wstail.py "$tr" --sched "$pd" --own "$own" --top 0 | grep '^CLEAN' |
            sed "s/^/r$r $v /; s/\$/ steal_ticks=$((st1 - st0))/" | tee -a "$TMP/results"
        if [ "${AB_WAKE:-0}" = 1 ]; then
            python3 bench/wswake.py "$pd" --own "$own" | sed "s/^/r$r $v /" | tee -a "$TMP/results"
        fi
        if [ -n "${AB_KEEP:-}" ]; then
            mkdir -p "$AB_KEEP" && mv "$tr" "$pd" "$AB_KEEP"/ && echo "$own" >"$AB_KEEP/own-r$r-$v"
        fi
        rm -f "$tr" "$pd"
    fi
    stop_pid "$p"
    stop_pid "$e"
    STARTED=()
}

read -r -a arms <<<"$TARGETS"
n=${#arms[@]}
for r in $(seq 1 "$ROUNDS"); do
    for k in $(seq 0 $((n - 1))); do
        run "$r" "${arms[$(((k + r - 1) % n))]}"
    done
done

python3 - "$TMP/results" <<'EOF'
import re, statistics as st, sys
runs = {"RESULT": {}, "CLEAN": {}}
for line in open(sys.argv[1]):
    m = re.match(r"r(\d+) (\S) (RESULT|CLEAN) ", line)
    if m:
        kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
        runs[m.group(3)].setdefault(m.group(2), {})[int(m.group(1))] = kv
for kind, keys in (("RESULT", ("p50_us", "p99_us", "rate")), ("CLEAN", ("p99_us", "p999_us"))):
    d = runs[kind]
    if not d:
        continue
    for key in keys:
        print(("clean " if kind == "CLEAN" else "") + key)
        for v in "ABH":
            x = {r: float(kv[key]) for r, kv in d.get(v, {}).items()}
            if x:
                print(f"  {v}: median {st.median(x.values()):.0f}  rounds " + " ".join(f"{x[r]:.0f}" for r in sorted(x)))
        for num, den in (("B", "A"), ("A", "H"), ("B", "H")):
            X, Y = d.get(num, {}), d.get(den, {})
            common = sorted(set(X) & set(Y))
            if common:
                q = [float(X[r][key]) / float(Y[r][key]) for r in common]
                print(f"  {num}/{den} per round: " + " ".join(f"{v:.2f}" for v in q) +
                      f"  median {st.median(q):.2f}, below 1 in {sum(v < 1 for v in q)}/{len(q)}")
EOF
