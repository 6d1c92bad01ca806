#!/usr/bin/env bash
# bench/wsab.sh: interleaved A/B of the WebSocket fixed-rate latency (wslat) between two ssegate builds, with
# HAProxy as the third arm. Short runs with fresh processes, the order rotated each round, so that a shared
# machine's load falls on all three alike; read the rounds, not only the medians (docs/benchmarks.md, "The
# WebSocket tail").
# Usage: bench/wsab.sh OLD_BUILD NEW_BUILD [ROUNDS]   (e.g. bench/wsab.sh /tmp/build-old build 12)
# Knobs: WS_CONNS (1000) WS_RATE (20000) WS_SIZE (128) AB_WARMUP (2) AB_DURATION (5) SG_BENCH_WORKERS (2),
#   AB_PORT_BASE (29480: origin, +1 ssegate, +2 haproxy), AB_TARGETS ("A B H"; H = haproxy, left out when absent).
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

run() {     # run ROUND ARM: one window; appends "rROUND ARM RESULT ..." to $TMP/results
    local r=$1 v=$2 d=$A port=$((PB + 1)) p e
    [ "$v" = B ] && d=$B
    "$d/bench/wsecho" --port "$PB" 2>>"$TMP/origin.log" &
    e=$!
    STARTED=("$e")
    if [ "$v" = H ]; then
        haproxy -db -f "$TMP/haproxy.cfg" 2>>"$TMP/haproxy.log" &
        port=$((PB + 2))
    else
        "$d/ssegate" -c "$TMP/gw.yaml" --workers "$WORKERS" --access-log off 2>>"$TMP/ssegate.log" &
    fi
    p=$!
    STARTED+=("$p")
    wait_listen "$PB" "$e" && wait_listen "$port" "$p" || echo "wsab: round $r $v: not listening" >&2
    timeout $((WARMUP + DURATION + 20)) "$d/bench/wsload" --port "$port" --conns "$CONNS" --size "$SIZE" --rate "$RATE" \
        --warmup "$WARMUP" --duration "$DURATION" --label "$v" --origin-pid "$e" --proxy-pids "$p" 2>/dev/null |
        grep '^RESULT' | sed "s/^/r$r $v /" | tee -a "$TMP/results"
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
d = {}
for line in open(sys.argv[1]):
    m = re.match(r"r(\d+) (\S) RESULT ", line)
    if m:
        kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
        d.setdefault(m.group(2), {})[int(m.group(1))] = kv
for key in ("p50_us", "p99_us", "rate"):
    print(key)
    for v in "ABH":
        x = {r: float(kv[key]) for r, kv in d.get(v, {}).items()}
        if x:
            print(f"  {v}: median {st.median(x.values()):.0f}  rounds " + " ".join(f"{x[r]:.0f}" for r in sorted(x)))
    for num, den in (("B", "A"), ("A", "H"), ("B", "H")):
        X, Y = d.get(num, {}), d.get(den, {})
        c = sorted(set(X) & set(Y))
        if c:
            q = [float(X[r][key]) / float(Y[r][key]) for r in c]
            print(f"  {num}/{den} per round: " + " ".join(f"{v:.2f}" for v in q) +
                  f"  median {st.median(q):.2f}, below 1 in {sum(v < 1 for v in q)}/{len(q)}")
EOF
