#!/usr/bin/env bash
# bench/run.sh: runs the SSE benchmarks direct / through ssegate / nginx / haproxy and prints them side by side.
# Usage: bench/run.sh BUILD_DIR     (make bench runs `bench/run.sh build`)
# Figures, not pass/fail. The table is printed at the end and written to BUILD_DIR/bench-results.txt.
# Knobs (environment): SG_BENCH_TARGETS="direct ssegate nginx haproxy",
#   SG_BENCH_SCENARIOS="thr lat idle h2thr h2tlsthr h2idle h2tlsidle hs fanout" (also: upthr upidle, the thr and idle
#   scenarios with TLS from the proxy to the origin, verified against the test certificate; h2upthr h2upidle, the
#   thr scenario and H2UP_STREAMS idle streams with HTTP/2 (h2c) from the proxy to bench/h2origin), SG_BENCH_REPEAT
#   (rounds, default 3),
#   THR_STREAMS THR_INTERVAL_US THR_WARMUP THR_DURATION, LAT_STREAMS LAT_RATE LAT_WARMUP LAT_DURATION,
#   IDLE_STREAMS IDLE_SETTLE, SG_BENCH_WORKERS (proxy workers/threads, default 2),
#   H2_CONNS H2_STREAMS (h2thr, h2tlsthr, hs), H2IDLE_CONNS H2IDLE_STREAMS, HS_RATE HS_WARMUP,
#   SG_BENCH_CERT=rsa|ec (the TLS certificate's key: RSA 2048, the default, or ECDSA P-256),
#   SG_BENCH_REV (what the table calls the ssegate build; default: this checkout's commit),
#   SG_SSEGATE_ARGS (more ssegate options); target ssegate-alt: a second ssegate arm in the same rounds, with
#   SG_SSEGATE_ALT_ARGS in place of SG_SSEGATE_ARGS and the binary SG_SSEGATE_ALT_BIN (default: BUILD_DIR's), for
#   an A/B of two builds or two settings interleaved (not for fanout),
#   SG_BENCH_PIN=1 (the proxy's own efficiency, apart from its share of shared cores: every proxy runs with one
#   worker/thread on CPU SG_BENCH_PIN_PROXY_CPU (default 0), the origin and the load generator on CPU
#   SG_BENCH_PIN_PEER_CPU (default 1); "direct" puts both on the latter. Not for fanout. Default: unpinned).
# The fanout scenario (bench/fanload.c, bench/fanorigin.c): one stream, FAN_SUBS subscribers (default 10,000), its
#   own targets SG_BENCH_FAN_TARGETS (default "direct ssegate ssegate-unshared nginx pushpin nchan"; ssegate is the
#   route shared by an SSEPolicy, ssegate-unshared the same route without it), FAN_LAT_EVENTS at FAN_LAT_RATE/s
#   (fan-out time), then FAN_THR_EVENTS at FAN_THR_RATE/s (throughput, CPU), FAN_UNSHARED_SUBS (default 9,000: a
#   single-process proxy that opens an upstream per subscriber needs two descriptors each, and the limit is 20,000).
#   Re-run the comparison alone: SG_BENCH_SCENARIOS=fanout SG_BENCH_REPEAT=1 bash bench/run.sh build
# WebSocket scenarios (not in the default list): wsthr (WS_CONNS WebSockets, each echoing WS_WINDOW messages of
#   WS_SIZE bytes in a closed loop: messages/s) and wslat (WS_RATE messages/s in total over WS_CONNS WebSockets:
#   round-trip latency), with bench/wsecho as the origin and bench/wsload as the client; THR_/LAT_ WARMUP and
#   DURATION apply.
# Scenario grpc: gRPC server streaming over h2c (bench/grpcload.c at both ends: --serve is the origin); knobs
#   GRPC_CONNS GRPC_STREAMS (calls in all) GRPC_SIZE (message bytes) GRPC_WARMUP GRPC_DURATION. nginx proxies it with
#   grpc_pass, haproxy with proto h2 on both sides, ssegate with a GRPCRoute; "direct" is the client on the origin.
# The HTTP/2 scenarios use THR_INTERVAL_US/THR_WARMUP/THR_DURATION (h2thr, h2tlsthr) and
# LAT_RATE/LAT_WARMUP/LAT_DURATION (hs); "direct" has no figure there (the origin speaks HTTP/1.1 only).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
ORIGIN=$B/bench/origin
H2ORIGIN=$B/bench/h2origin
LOADGEN=$B/bench/loadgen
FANORIGIN=$B/bench/fanorigin
FANLOAD=$B/bench/fanload
WSECHO=$B/bench/wsecho
WSLOAD=$B/bench/wsload
SSEGATE=$B/ssegate
OUT=$B/bench-results.txt

TARGETS=${SG_BENCH_TARGETS:-direct ssegate nginx haproxy}
SCENARIOS=${SG_BENCH_SCENARIOS:-thr lat idle h2thr h2tlsthr h2idle h2tlsidle hs fanout}
WORKERS=${SG_BENCH_WORKERS:-2}
PIN=${SG_BENCH_PIN:-0}
PIN_PROXY=()        # taskset prefixes when pinned (SG_BENCH_PIN=1); empty otherwise
PIN_PEERS=()
THR_STREAMS=${THR_STREAMS:-1000}
THR_INTERVAL_US=${THR_INTERVAL_US:-1000}
THR_WARMUP=${THR_WARMUP:-3}
THR_DURATION=${THR_DURATION:-10}
LAT_STREAMS=${LAT_STREAMS:-1000}
LAT_RATE=${LAT_RATE:-20000}
LAT_WARMUP=${LAT_WARMUP:-3}
LAT_DURATION=${LAT_DURATION:-10}
IDLE_STREAMS=${IDLE_STREAMS:-9000}
IDLE_SETTLE=${IDLE_SETTLE:-2}
H2_CONNS=${H2_CONNS:-10}
H2_STREAMS=${H2_STREAMS:-1000}
H2IDLE_CONNS=${H2IDLE_CONNS:-90}
H2IDLE_STREAMS=${H2IDLE_STREAMS:-9000}
H2UP_STREAMS=${H2UP_STREAMS:-19000}
HS_RATE=${HS_RATE:-200}
HS_WARMUP=${HS_WARMUP:-2}
CERT_KEY=${SG_BENCH_CERT:-rsa}
FAN_TARGETS=${SG_BENCH_FAN_TARGETS:-${SG_BENCH_TARGETS:-direct ssegate ssegate-unshared nginx pushpin nchan}}
FAN_SUBS=${FAN_SUBS:-10000}
FAN_UNSHARED_SUBS=${FAN_UNSHARED_SUBS:-9000}
FAN_LAT_EVENTS=${FAN_LAT_EVENTS:-20}
FAN_LAT_RATE=${FAN_LAT_RATE:-2}
FAN_THR_EVENTS=${FAN_THR_EVENTS:-100}
FAN_THR_RATE=${FAN_THR_RATE:-10}
WS_CONNS=${WS_CONNS:-1000}
WS_SIZE=${WS_SIZE:-128}
WS_WINDOW=${WS_WINDOW:-1}
WS_RATE=${WS_RATE:-20000}
GRPC_CONNS=${GRPC_CONNS:-4}
GRPC_STREAMS=${GRPC_STREAMS:-100}
GRPC_SIZE=${GRPC_SIZE:-100}
GRPC_WARMUP=${GRPC_WARMUP:-3}
GRPC_DURATION=${GRPC_DURATION:-10}
GRPCLOAD=$B/bench/grpcload

for f in "$ORIGIN" "$LOADGEN" "$FANORIGIN" "$FANLOAD" "$WSECHO" "$WSLOAD" "$GRPCLOAD"; do
    if [ ! -x "$f" ]; then
        echo "bench: $f is missing; run make first" >&2
        exit 1
    fi
done

if [ "$PIN" = 1 ]; then
    if ! command -v taskset >/dev/null; then
        echo "bench: SG_BENCH_PIN=1 needs taskset (util-linux)" >&2
        exit 1
    fi
    if [[ " ${SG_BENCH_SCENARIOS:-fanout} " == *" fanout "* ]]; then
        echo "bench: SG_BENCH_PIN=1 does not apply to the fanout scenario; leave it out of SG_BENCH_SCENARIOS" >&2
        exit 1
    fi
    WORKERS=1
    PIN_PROXY=(taskset -c "${SG_BENCH_PIN_PROXY_CPU:-0}")
    PIN_PEERS=(taskset -c "${SG_BENCH_PIN_PEER_CPU:-1}")
elif [ "$PIN" != 0 ]; then
    echo "bench: SG_BENCH_PIN must be 0 or 1, not '$PIN'" >&2
    exit 1
fi

# 9,000 streams through a proxy need 18,000 descriptors in it; the hard limit here is 20,000.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 18100 ]; then
    echo "bench: warning: open-file limit is $(ulimit -n); the idle scenario needs about 18,100 in the proxy" >&2
fi

. bench/lib.sh
bench_init ssegate-bench   # TMP; STARTED: PIDs this script started, stopped by PID on exit
CERT=""      # self-signed certificate for the TLS scenarios, made below in $TMP when one of them runs
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

declare -A R        # R[target,scenario,key] = value
declare -A NOTE     # NOTE[target,scenario] = why there is no figure

ORIGIN_PID=""
PROXY_PID=""
PROXY_PIDS=""       # comma-separated PIDs whose RSS/CPU are summed (nginx: master + workers)
PROXY_PORT=""

start_origin() {    # start_origin PORT ARGS... (ORIGIN_BIN: which origin; bench/origin by default)
    local port=$1
    shift
    "${PIN_PEERS[@]}" "${ORIGIN_BIN:-$ORIGIN}" --port "$port" "$@" 2>>"$TMP/origin.log" &
    ORIGIN_PID=$!
    STARTED+=("$ORIGIN_PID")
    wait_listen "$port" "$ORIGIN_PID"
}

# make_cert: a self-signed certificate for localhost/127.0.0.1 (the loadgen does not verify it), with an
# RSA 2048 key (SG_BENCH_CERT=rsa, the default) or an ECDSA P-256 key (ec).
make_cert() {
    local key=(-newkey rsa:2048)
    [ "$CERT_KEY" = ec ] && key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
    openssl req -x509 "${key[@]}" -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>"$TMP/openssl.log" || return 1
    cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/haproxy.pem"
    CERT=$TMP/cert.pem
}

# start_proxy TARGET ORIGIN_PORT [MODE] [UPTLS]: sets PROXY_PID, PROXY_PIDS, PROXY_PORT; returns 1 if it could not
# start. MODE: h1 (default; the HTTP/1.1 scenarios), h2c (HTTP/2 with prior knowledge), tls (TLS, ALPN h2).
# UPTLS=1: the origin speaks TLS; the proxy verifies its certificate (the test CA, name localhost). UPTLS=h2c: the
# origin speaks HTTP/2 with prior knowledge (bench/h2origin), and the proxy is told so.
start_proxy() {
    local target=$1 oport=$2 mode=${3:-h1} uptls=${4:-0} dir="$TMP/$1"
    local listener secret="" listen_opts="" server_extra="" bind_opts="" global_extra="" server_opts="" btls=""
    local beref="{name: 127.0.0.1, port: $oport}"
    mkdir -p "$dir"
    if { [ "$mode" = tls ] || [ "$uptls" = 1 ]; } && [ -z "$CERT" ]; then
        echo "no certificate (openssl failed: $(tail -n 1 "$TMP/openssl.log" 2>/dev/null))" >"$dir/why"
        return 1
    fi
    PROXY_PORT=$(free_port) || return 1
    case $target in
    direct)
        PROXY_PORT=$oport
        PROXY_PID=""
        PROXY_PIDS=""
        return 0
        ;;
    ssegate | ssegate-alt)
        local bin=$SSEGATE args=${SG_SSEGATE_ARGS:-}
        if [ "$target" = ssegate-alt ]; then
            bin=${SG_SSEGATE_ALT_BIN:-$SSEGATE} args=${SG_SSEGATE_ALT_ARGS:-}
        fi
        if [ ! -x "$bin" ]; then
            echo "bench: $bin not built" >"$dir/why"
            return 1
        fi
        # An HTTP listener takes HTTP/1.1 and h2c (preface detection); HTTPS does TLS with ALPN h2,http/1.1.
        # HTTP/2 settings are ssegate's defaults (--h2-max-streams 256; its windows only bound request bodies).
        listener="{name: http, protocol: HTTP, port: $PROXY_PORT}"
        if [ "$mode" = tls ]; then
            listener="{name: https, protocol: HTTPS, port: $PROXY_PORT, tls: {mode: Terminate, certificateRefs: [{name: bench-cert}]}}"
            secret="---
apiVersion: v1
kind: Secret
metadata:
  name: bench-cert
  annotations: {ssegate.io/tls-crt-file: $TMP/cert.pem, ssegate.io/tls-key-file: $TMP/key.pem}
type: kubernetes.io/tls"
        fi
        if [ "$uptls" = h2c ]; then
            # GEP-1911: the Service port's appProtocol says the origin speaks h2c.
            beref="{name: origin, port: 8080}"
            btls="---
apiVersion: v1
kind: Service
metadata: {name: origin}
spec:
  ports: [{name: web, port: 8080, appProtocol: kubernetes.io/h2c}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: origin-1
  labels: {kubernetes.io/service-name: origin}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: web, port: $oport}]"
        fi
        if [ "$uptls" = 1 ]; then
            btls="---
apiVersion: v1
kind: ConfigMap
metadata: {name: origin-ca}
data:
  ca.crt: |
$(sed 's/^/    /' "$TMP/cert.pem")
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: origin-tls}
spec:
  targetRefs: [{group: \"\", kind: Service, name: 127.0.0.1}]
  validation:
    hostname: localhost
    caCertificateRefs: [{group: \"\", kind: ConfigMap, name: origin-ca}]"
        fi
        cat >"$dir/gateway.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [$listener]
$secret
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [$beref]
---
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: p}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}
  default: {timeouts: {routeTimeout: 0s}}
$btls
EOF
        # grpc: the same route as a GRPCRoute (its backends speak h2c without being told).
        [ "$mode" = grpc ] && sed -i 's/kind: HTTPRoute/kind: GRPCRoute/' "$dir/gateway.yaml"
        "${PIN_PROXY[@]}" "$bin" -c "$dir/gateway.yaml" --workers "$WORKERS" --access-log off $args 2>>"$dir/stderr.log" &
        PROXY_PID=$!
        ;;
    nginx)
        if ! command -v nginx >/dev/null; then
            echo "nginx not installed" >"$dir/why"
            return 1
        fi
        if [ "$uptls" = 1 ]; then
            echo "TLS to the origin is not set up for nginx in this script" >"$dir/why"
            return 1
        fi
        if [ "$uptls" = h2c ]; then
            echo "nginx speaks HTTP/2 to backends only for gRPC (grpc_pass), not for proxy_pass" >"$dir/why"
            return 1
        fi
        mkdir -p "$dir/logs"
        local pass="proxy_pass http://origin;"
        case $mode in
        h2c) listen_opts="http2" server_extra="http2_max_concurrent_streams 256;" ;;
        grpc) listen_opts="http2" server_extra="http2_max_concurrent_streams 256;"
            pass="grpc_pass grpc://origin; grpc_read_timeout 1h; grpc_send_timeout 1h;" ;;
        tls) listen_opts="ssl http2"
            server_extra="http2_max_concurrent_streams 256; ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;" ;;
        esac
        sed -e "s|@PORT@|$PROXY_PORT|g" -e "s|@ORIGIN_PORT@|$oport|g" -e "s|@DIR@|$dir|g" \
            -e "s|@LISTEN_OPTS@|$listen_opts|" -e "s|@SERVER_EXTRA@|$server_extra|" -e "s|proxy_pass http://origin;|$pass|" \
            -e "s|worker_processes 2;|worker_processes $WORKERS;|" bench/nginx.conf.in >"$dir/nginx.conf"
        "${PIN_PROXY[@]}" nginx -p "$dir" -c "$dir/nginx.conf" \
            -g "daemon off; master_process on; pid $dir/nginx.pid; error_log $dir/error.log warn;" \
            2>>"$dir/stderr.log" &
        PROXY_PID=$!
        ;;
    haproxy)
        if ! command -v haproxy >/dev/null; then
            echo "haproxy not installed" >"$dir/why"
            return 1
        fi
        case $mode in
        h2c) bind_opts="proto h2" global_extra="tune.h2.max-concurrent-streams 256" ;;
        grpc) bind_opts="proto h2" global_extra="tune.h2.max-concurrent-streams 256" server_opts="proto h2" ;;
        tls) bind_opts="ssl crt $TMP/haproxy.pem alpn h2,http/1.1" global_extra="tune.h2.max-concurrent-streams 256" ;;
        esac
        # The same verification as ssegate's BackendTLSPolicy: the test CA, SNI and name localhost.
        [ "$uptls" = 1 ] && server_opts="ssl verify required ca-file $TMP/cert.pem sni str(localhost) verifyhost localhost"
        [ "$uptls" = h2c ] && server_opts="proto h2"
        sed -e "s|@PORT@|$PROXY_PORT|g" -e "s|@ORIGIN_PORT@|$oport|g" \
            -e "s|@BIND_OPTS@|$bind_opts|" -e "s|@GLOBAL_EXTRA@|$global_extra|" -e "s|@SERVER_OPTS@|$server_opts|" \
            -e "s|nbthread 2|nbthread $WORKERS|" bench/haproxy.cfg.in >"$dir/haproxy.cfg"
        "${PIN_PROXY[@]}" haproxy -db -f "$dir/haproxy.cfg" 2>>"$dir/stderr.log" &
        PROXY_PID=$!
        ;;
    esac
    STARTED+=("$PROXY_PID")
    if ! wait_listen "$PROXY_PORT" "$PROXY_PID"; then
        { echo "$target did not start; its stderr:"; tail -n 5 "$dir/stderr.log"; } >"$dir/why"
        return 1
    fi
    sleep 0.3 # let nginx fork its workers
    PROXY_PIDS=$PROXY_PID
    local kids
    kids=$(pgrep -P "$PROXY_PID" 2>/dev/null | tr '\n' ',' | sed 's/,$//')
    [ -n "$kids" ] && PROXY_PIDS="$PROXY_PIDS,$kids"
    return 0
}

stop_all() {
    [ -n "$PROXY_PID" ] && stop_pid "$PROXY_PID"
    [ -n "$ORIGIN_PID" ] && stop_pid "$ORIGIN_PID"
    PROXY_PID=""
    ORIGIN_PID=""
}

# record TARGET SCENARIO RESULT_LINE: stores key=value pairs of a loadgen RESULT line.
record() {
    local t=$1 s=$2 line=$3 kv
    for kv in $line; do
        case $kv in
        *=*) R[$t,$s,${kv%%=*}]=${kv#*=} ;;
        esac
    done
}

# run_grpc_case TARGET: gRPC server streaming through TARGET (grpcload at both ends).
run_grpc_case() {
    local t=$1 oport log="$TMP/$1-grpc.log"
    oport=$(free_port) || return
    "${PIN_PEERS[@]}" "$GRPCLOAD" --serve "$oport" --size "$GRPC_SIZE" 2>>"$TMP/origin.log" &
    ORIGIN_PID=$!
    STARTED+=("$ORIGIN_PID")
    if ! wait_listen "$oport" "$ORIGIN_PID"; then
        NOTE[$t,grpc]="origin failed"
        stop_all
        return
    fi
    if ! start_proxy "$t" "$oport" grpc; then
        NOTE[$t,grpc]="not measured"
        [ -f "$TMP/$t/why" ] && sed 's/^/bench:   /' "$TMP/$t/why" >&2
        stop_all
        return
    fi
    echo "bench: $t / grpc ..." >&2
    timeout $((GRPC_WARMUP + GRPC_DURATION + 30)) "${PIN_PEERS[@]}" "$GRPCLOAD" --port "$PROXY_PORT" --label "$t-grpc" \
        --conns "$GRPC_CONNS" --streams $((GRPC_STREAMS / GRPC_CONNS)) --warmup "$GRPC_WARMUP" --duration "$GRPC_DURATION" \
        --proxy-pids "${PROXY_PIDS:-$ORIGIN_PID}" --path /bench.Stream/Pull --size "$GRPC_SIZE" >"$log" 2>"$log.err"
    local rc=$? line
    line=$(grep '^RESULT ' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        NOTE[$t,grpc]="grpcload failed (rc $rc)"
        sed 's/^/bench:   /' "$log.err" | tail -n 5 >&2
    else
        record "$t" grpc "$line"
        echo "bench:   $line" >&2
    fi
    if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
        NOTE[$t,grpc]="$t exited during the run"
    fi
    stop_all
}

run_case() {        # run_case TARGET SCENARIO
    local t=$1 s=$2 oport log="$TMP/$1-$2.log" origin_args=() lg_args=() limit mode=h1 uptls=0
    local lg_bin=$LOADGEN lg_path=/sse
    ORIGIN_BIN=$ORIGIN
    [ "$s" = grpc ] && { run_grpc_case "$t"; return; }
    oport=$(free_port) || return
    case $s in
    h2upthr)
        uptls=h2c
        ORIGIN_BIN=$H2ORIGIN
        origin_args=(--interval-us "$THR_INTERVAL_US")
        lg_args=(--streams "$THR_STREAMS" --warmup "$THR_WARMUP" --duration "$THR_DURATION")
        limit=$((THR_WARMUP + THR_DURATION + 40))
        ;;
    h2upidle)
        uptls=h2c
        ORIGIN_BIN=$H2ORIGIN
        origin_args=(--idle)
        lg_args=(--streams "$H2UP_STREAMS" --idle --settle "$IDLE_SETTLE" --duration 0.5 --connect-timeout 40)
        limit=90
        ;;
    thr | upthr)
        origin_args=(--interval-us "$THR_INTERVAL_US")
        [ "$s" = upthr ] && uptls=1 && origin_args+=(--tls "$TMP/cert.pem" "$TMP/key.pem")
        lg_args=(--streams "$THR_STREAMS" --warmup "$THR_WARMUP" --duration "$THR_DURATION")
        limit=$((THR_WARMUP + THR_DURATION + 40))
        ;;
    lat)
        origin_args=(--rate "$LAT_RATE")
        lg_args=(--streams "$LAT_STREAMS" --warmup "$LAT_WARMUP" --duration "$LAT_DURATION")
        limit=$((LAT_WARMUP + LAT_DURATION + 40))
        ;;
    idle | upidle)
        origin_args=(--idle)
        [ "$s" = upidle ] && uptls=1 && origin_args+=(--tls "$TMP/cert.pem" "$TMP/key.pem")
        lg_args=(--streams "$IDLE_STREAMS" --idle --settle "$IDLE_SETTLE" --duration 0.5 --connect-timeout 40)
        limit=70
        ;;
    h2thr | h2tlsthr)
        mode=h2c
        [ "$s" = h2tlsthr ] && mode=tls
        origin_args=(--interval-us "$THR_INTERVAL_US")
        lg_args=(--proto "$([ $mode = tls ] && echo h2tls || echo h2c)" --conns "$H2_CONNS" --streams "$H2_STREAMS"
            --warmup "$THR_WARMUP" --duration "$THR_DURATION")
        limit=$((THR_WARMUP + THR_DURATION + 40))
        ;;
    h2idle | h2tlsidle)
        mode=h2c
        [ "$s" = h2tlsidle ] && mode=tls
        origin_args=(--idle)
        lg_args=(--proto "$([ $mode = tls ] && echo h2tls || echo h2c)" --conns "$H2IDLE_CONNS"
            --streams "$H2IDLE_STREAMS" --idle --settle "$IDLE_SETTLE" --duration 0.5 --connect-timeout 40)
        limit=70
        ;;
    wsthr | wslat)
        ORIGIN_BIN=$WSECHO lg_bin=$WSLOAD lg_path=/ws
        if [ "$s" = wsthr ]; then
            lg_args=(--conns "$WS_CONNS" --size "$WS_SIZE" --window "$WS_WINDOW" --warmup "$THR_WARMUP" --duration "$THR_DURATION")
        else
            lg_args=(--conns "$WS_CONNS" --size "$WS_SIZE" --rate "$WS_RATE" --warmup "$LAT_WARMUP" --duration "$LAT_DURATION")
        fi
        limit=$((THR_WARMUP + THR_DURATION + LAT_WARMUP + LAT_DURATION + 40))
        ;;
    hs)
        # One run: a window without handshakes (base_*), then HS_RATE handshakes/s, HS_WARMUP s, the window.
        mode=tls
        origin_args=(--rate "$LAT_RATE")
        lg_args=(--proto h2tls --conns "$H2_CONNS" --streams "$H2_STREAMS" --warmup "$LAT_WARMUP"
            --duration "$LAT_DURATION" --handshake-rate "$HS_RATE" --handshake-warmup "$HS_WARMUP")
        limit=$((LAT_WARMUP + 2 * LAT_DURATION + HS_WARMUP + 40))
        ;;
    esac
    if [ "$uptls" != 0 ] && [ "$t" = direct ]; then
        NOTE[$t,$s]="-"     # the load generator speaks plaintext
        return
    fi
    if [ "$s" = idle ] && [ "$t" = direct ]; then
        NOTE[$t,$s]="n/a"
        return
    fi
    if [ "$mode" != h1 ] && [ "$t" = direct ]; then
        NOTE[$t,$s]="-"     # the origin speaks HTTP/1.1 only
        return
    fi
    if ! start_origin "$oport" "${origin_args[@]}"; then
        NOTE[$t,$s]="origin failed"
        stop_all
        return
    fi
    if ! start_proxy "$t" "$oport" "$mode" "$uptls"; then
        NOTE[$t,$s]="not measured"
        [ -f "$TMP/$t/why" ] && sed 's/^/bench:   /' "$TMP/$t/why" >&2
        stop_all
        return
    fi
    local pids_arg=()
    [ -n "$PROXY_PIDS" ] && pids_arg=(--proxy-pids "$PROXY_PIDS")
    echo "bench: $t / $s ..." >&2
    timeout "$limit" "${PIN_PEERS[@]}" "$lg_bin" --port "$PROXY_PORT" --path "$lg_path" --label "$t-$s" --origin-pid "$ORIGIN_PID" \
        "${pids_arg[@]}" "${lg_args[@]}" >"$log" 2>"$log.err"
    local rc=$? line
    line=$(grep '^RESULT ' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        NOTE[$t,$s]="loadgen failed (rc $rc)"
        sed 's/^/bench:   /' "$log.err" | tail -n 5 >&2
    else
        record "$t" "$s" "$line"
        echo "bench:   $line" >&2
    fi
    if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
        NOTE[$t,$s]="$t exited during the run"
    fi
    stop_all
}

# --- fanout: one stream to FAN_SUBS subscribers (bench/fanorigin.c publishes, bench/fanload.c subscribes) ---

# fan_ssegate DIR PORT ORIGIN_PORT SHARED: writes the config (the route shared by an SSEPolicy when SHARED=1)
# and starts ssegate; sets PROXY_PID. Returns 1 (with DIR/why) if this build refuses the config.
fan_ssegate() {
    local dir=$1 port=$2 oport=$3 shared=$4 policy=""
    if [ ! -x "$SSEGATE" ]; then
        echo "$SSEGATE not built" >"$dir/why"
        return 1
    fi
    [ "$shared" = 1 ] && policy="---
apiVersion: ssegate.io/v1alpha1
kind: SSEPolicy
metadata: {name: share}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}
  default: {sharing: {enabled: true}}"
    cat >"$dir/gateway.yaml" <<EOF
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
$policy
EOF
    if ! "$SSEGATE" --check -c "$dir/gateway.yaml" >"$dir/check.log" 2>&1; then
        { echo "this ssegate refuses the config:"; tail -n 2 "$dir/check.log"; } >"$dir/why"
        return 1
    fi
    "$SSEGATE" -c "$dir/gateway.yaml" --workers "$WORKERS" --access-log off ${SG_SSEGATE_ARGS:-} 2>>"$dir/stderr.log" &
    PROXY_PID=$!
}

# fan_pushpin DIR PORT ORIGIN_PORT PUBPORT: Pushpin (its runner: condure, zurl, pushpin-proxy, pushpin-handler)
# from the Debian package's pushpin.conf, with every port, socket and log under DIR. Sets PROXY_PID (the runner).
fan_pushpin() {
    local dir=$1 port=$2 oport=$3 pubport=$4 p1 p2 p3
    if ! command -v pushpin >/dev/null || [ ! -f /etc/pushpin/pushpin.conf ]; then
        echo "pushpin not installed (SG_BOOTSTRAP_BENCH=1 bash scripts/bootstrap.sh)" >"$dir/why"
        return 1
    fi
    p1=$(free_port) && p2=$(free_port) && p3=$(free_port) || return 1
    mkdir -p "$dir/run" "$dir/log"
    echo "* 127.0.0.1:$oport" >"$dir/routes"
    # zurl (Pushpin's outgoing HTTP) is started by the runner with sockets in DIR, not the system's
    # /var/run/zurl. message_rate/message_hwm: the shipped 2,500 messages/s would meter a 10,000-subscriber
    # fan-out over 4 s; raised so Pushpin delivers as fast as it can. Log level 1: warnings only.
    sed -e "s|^include=.*|include=/usr/lib/pushpin/internal.conf|" -e "s|^rundir=.*|rundir=$dir/run|" \
        -e "s|^ipc_prefix=.*|ipc_prefix=sgbench-|" \
        -e "s|^services=.*|services=zurl,condure,pushpin-proxy,pushpin-handler|" \
        -e "s|^http_port=.*|http_port=127.0.0.1:$port|" -e "s|^logdir=.*|logdir=$dir/log|" \
        -e "s|^log_level=.*|log_level=1|" -e "s|^routesfile=.*|routesfile=$dir/routes|" \
        -e "s|^push_in_spec=.*|push_in_spec=tcp://127.0.0.1:$p1|" \
        -e "s|^push_in_sub_specs=.*|push_in_sub_specs=tcp://127.0.0.1:$p2|" \
        -e "s|^push_in_http_port=.*|push_in_http_port=$pubport|" \
        -e "s|^command_spec=.*|command_spec=tcp://127.0.0.1:$p3|" \
        -e "s|^message_rate=.*|message_rate=1000000|" -e "s|^message_hwm=.*|message_hwm=1000000|" \
        -e 's|^\[proxy\]|[proxy]\nzurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in\nzurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream\nzurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out|' \
        /etc/pushpin/pushpin.conf >"$dir/pushpin.conf"
    pushpin --config "$dir/pushpin.conf" --merge-output >>"$dir/stderr.log" 2>&1 &
    PROXY_PID=$!
}

# fan_nchan DIR PORT: nginx with nchan (bench/nchan.conf.in). Sets PROXY_PID (the master).
fan_nchan() {
    local dir=$1 port=$2
    if ! command -v nginx >/dev/null || [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        echo "nginx with nchan not installed (SG_BOOTSTRAP_BENCH=1 bash scripts/bootstrap.sh)" >"$dir/why"
        return 1
    fi
    mkdir -p "$dir/logs"
    sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" -e "s|worker_processes 2;|worker_processes $WORKERS;|" \
        bench/nchan.conf.in >"$dir/nginx.conf"
    nginx -p "$dir" -c "$dir/nginx.conf" -g "daemon off; master_process on; pid $dir/nginx.pid; error_log $dir/error.log warn;" \
        2>>"$dir/stderr.log" &
    PROXY_PID=$!
}

# fan_proxy_pids PID: PID and its children and grandchildren (nginx workers; Pushpin's runner and its services).
fan_proxy_pids() {
    local all=$1 kids k
    kids=$(pgrep -P "$1" 2>/dev/null)
    for k in $kids; do
        all="$all,$k"
        for g in $(pgrep -P "$k" 2>/dev/null); do all="$all,$g"; done
    done
    echo "$all"
}

run_fanout() {      # run_fanout TARGET
    local t=$1 s=fanout dir="$TMP/fan-$1" oport port pubport="" subs=$FAN_SUBS log="$TMP/$1-fanout.log"
    local origin_args=() lg_args=() batch=256 fpath=/sse
    rm -rf "$dir"
    mkdir -p "$dir"
    oport=$(free_port) && port=$(free_port) || { NOTE[$t,$s]="no free port"; return; }
    local total=$((FAN_LAT_EVENTS + FAN_THR_EVENTS))
    origin_args=(--events "$FAN_LAT_EVENTS" --rate "$FAN_LAT_RATE" --then-events "$FAN_THR_EVENTS"
        --then-rate "$FAN_THR_RATE" --stats "$dir/origin.stats")
    case $t in
    direct | ssegate | ssegate-unshared | nginx) origin_args+=(--port "$oport") ;;
    pushpin)
        pubport=$(free_port) || return
        origin_args+=(--port "$oport" --grip fan --publish pushpin --publish-port "$pubport" --publish-path /publish/)
        batch=32    # Pushpin's subscribe path (condure, zurl, the origin) answers 502 to bigger bursts here
        ;;
    nchan) origin_args+=(--publish nchan --publish-port "$port" --publish-path /pub) ;;
    *)
        NOTE[$t,$s]="n/a"   # haproxy: one process would need 2 descriptors per subscriber
        return
        ;;
    esac
    [ "$t" = ssegate-unshared ] && [ "$subs" -gt "$FAN_UNSHARED_SUBS" ] && subs=$FAN_UNSHARED_SUBS
    [ "$t" = direct ] && port=$oport
    "$FANORIGIN" "${origin_args[@]}" 2>>"$dir/origin.log" &
    ORIGIN_PID=$!
    STARTED+=("$ORIGIN_PID")
    if [ "$t" != nchan ] && ! wait_listen "$oport" "$ORIGIN_PID"; then
        NOTE[$t,$s]="origin failed"
        stop_all
        return
    fi
    PROXY_PID=""
    local ok=0
    case $t in
    direct) ok=1 ;;
    ssegate) fan_ssegate "$dir" "$port" "$oport" 1 && ok=1 ;;
    ssegate-unshared) fan_ssegate "$dir" "$port" "$oport" 0 && ok=1 ;;
    nginx) start_proxy nginx "$oport" && port=$PROXY_PORT && ok=1 ;;
    pushpin) fan_pushpin "$dir" "$port" "$oport" "$pubport" && ok=1 ;;
    nchan) fan_nchan "$dir" "$port" && ok=1 ;;
    esac
    [ -n "$PROXY_PID" ] && [ "$t" != nginx ] && STARTED+=("$PROXY_PID")
    if [ "$ok" = 1 ] && [ "$t" != direct ] && [ "$t" != nginx ] && ! wait_listen "$port" "$PROXY_PID"; then
        { echo "$t did not start; its output:"; tail -n 5 "$dir/stderr.log"; } >"$dir/why"
        ok=0
    fi
    [ "$t" = pushpin ] && [ "$ok" = 1 ] && ! wait_listen "$pubport" "$PROXY_PID" && ok=0
    if [ "$ok" != 1 ]; then
        NOTE[$t,$s]="not measured"
        [ -f "$dir/why" ] && sed 's/^/bench:   /' "$dir/why" >&2
        [ -f "$TMP/nginx/why" ] && [ "$t" = nginx ] && sed 's/^/bench:   /' "$TMP/nginx/why" >&2
        stop_all
        return
    fi
    sleep 0.5   # let Pushpin's and nginx's processes settle
    local pids
    if [ "$t" = direct ]; then pids=$ORIGIN_PID; else pids=$(fan_proxy_pids "$PROXY_PID"); fi
    echo "bench: $t / fanout ($subs subscribers) ..." >&2
    timeout $((total * 2 + 200)) "$FANLOAD" --port "$port" --path "$fpath" --subs "$subs" --events "$total" \
        --phase-at "$FAN_LAT_EVENTS" --start-pid "$ORIGIN_PID" --proxy-pids "$pids" --connect-batch "$batch" \
        --connect-timeout 120 --settle 2 --drain 10 --label "$t-fanout" >"$log" 2>"$log.err"
    local rc=$? line
    line=$(grep '^RESULT ' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        NOTE[$t,$s]="fanload failed (rc $rc)"
        sed 's/^/bench:   /' "$log.err" | tail -n 5 >&2
    else
        record "$t" "$s" "$line"
        # Backend load, counted at the origin: connections it accepted, and the most streams open at once.
        if [ -f "$dir/origin.stats" ]; then
            record "$t" "$s" "$(sed 's/\([a-z_]*\)=/origin_\1=/g' "$dir/origin.stats")"
        fi
        echo "bench:   $line" >&2
        [ -f "$dir/origin.stats" ] && echo "bench:   origin: $(cat "$dir/origin.stats")" >&2
    fi
    if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
        NOTE[$t,$s]="$t exited during the run"
    fi
    stop_all
    # Pushpin's runner stops its services on SIGTERM; any it left (it was killed) are stopped by their PIDs.
    local p
    for p in ${pids//,/ }; do [ "$p" != "$ORIGIN_PID" ] && stop_pid "$p"; done
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
REPEAT=${SG_BENCH_REPEAT:-3}
est=0       # seconds, roughly: per target and round, the scenario's windows plus ~5 s of start-up and stop
for s in $SCENARIOS; do
    case $s in
    thr | upthr | h2thr | h2tlsthr | h2upthr | wsthr) e=$(((THR_WARMUP + THR_DURATION + 5) * REPEAT)) ;;
    lat | wslat) e=$(((LAT_WARMUP + LAT_DURATION + 5) * REPEAT)) ;;
    hs) e=$(((LAT_WARMUP + 2 * LAT_DURATION + HS_WARMUP + 5) * REPEAT)) ;;
    fanout) e=$(((FAN_LAT_EVENTS / FAN_LAT_RATE + FAN_THR_EVENTS / FAN_THR_RATE + 12) * REPEAT * $(echo $FAN_TARGETS | wc -w))) ;;
    grpc) e=$(((GRPC_WARMUP + GRPC_DURATION + 5) * REPEAT)) ;;
    *) e=15 ;;
    esac
    n=$(echo $TARGETS | wc -w)
    [ "$s" = fanout ] && n=1
    [[ $s == h* && " $TARGETS " == *" direct "* ]] && n=$((n - 1))  # no direct figure over HTTP/2
    est=$((est + e * n))
done
echo "bench: targets: $TARGETS$(has_fan=" $SCENARIOS "; [[ $has_fan == *" fanout "* ]] && echo " (fanout: $FAN_TARGETS)"); scenarios: $SCENARIOS (about $((est / 60 + 1)) min)" >&2
case " $SCENARIOS " in
*" h2tlsthr "* | *" h2tlsidle "* | *" hs "* | *" upthr "* | *" upidle "*)
    make_cert || echo "bench: openssl could not make the test certificate; TLS scenarios are not measured" >&2
    ;;
esac
# The timed scenarios run REPEAT rounds, the targets interleaved within each round so that drift in the
# machine's load hits every target alike, and their order rotated from one round to the next so that no target
# always runs first (or always right after another); the table shows the median of the rounds (and every rate).
declare -A RUNS     # RUNS[target,scenario,key] = space-separated values, one per round
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
for s in $SCENARIOS; do
    reps=1
    case $s in thr | upthr | lat | h2thr | h2tlsthr | hs | h2upthr | fanout | wsthr | wslat | grpc) reps=$REPEAT ;; esac
    targets=$TARGETS
    [ "$s" = fanout ] && targets=$FAN_TARGETS
    read -r -a tlist <<<"$targets"
    for r in $(seq 1 "$reps"); do
        for ti in "${!tlist[@]}"; do
            t=${tlist[$(((ti + r - 1) % ${#tlist[@]}))]}
            for k in "${!R[@]}"; do [[ $k == "$t,$s,"* ]] && unset "R[$k]"; done
            if [ "$s" = fanout ]; then run_fanout "$t"; else run_case "$t" "$s"; fi
            for k in "${!R[@]}"; do
                [[ $k == "$t,$s,"* ]] && RUNS[$k]="${RUNS[$k]:-} ${R[$k]}"
            done
        done
    done
done
for k in "${!RUNS[@]}"; do
    vals=${RUNS[$k]}
    if [[ $vals =~ ^[[:space:]]*-?[0-9.]+([[:space:]]+-?[0-9.]+)*[[:space:]]*$ ]]; then
        R[$k]=$(echo "$vals" | median)
    else
        R[$k]=${vals##* }
    fi
done

# --- table ---
cell() {            # cell TARGET SCENARIO KEY [suffix]
    local t=$1 s=$2 k=$3 v
    v=${R[$t,$s,$k]:-}
    if [ -n "${NOTE[$t,$s]:-}" ] && [ -z "$v" ]; then
        echo "${NOTE[$t,$s]}"
    elif [ -z "$v" ] || [ "$v" = -1 ]; then
        echo "-"
    else
        echo "$v${4:-}"
    fi
}
row() {             # row LABEL SCENARIO KEY [suffix]
    local label=$1 s=$2 k=$3 suffix=${4:-} t
    printf '  %-34s' "$label"
    for t in $TARGETS; do
        printf ' %-16s' "$(cell "$t" "$s" "$k" "$suffix")"
    done
    printf '\n'
}
ratio() {           # ratio A B -> A/B with 2 decimals, or "-"
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}
rounds() {          # rounds LABEL SCENARIO KEY: every round's value, a/b/c
    local t
    printf '  %-34s' "$1"
    for t in $TARGETS; do printf ' %-16s' "$(echo ${RUNS[$t,$2,$3]:-} | tr ' ' '/')"; done
    printf '\n'
}
thr_rows() {        # thr_rows SCENARIO: the rows of a throughput scenario
    row "events/s delivered" "$1" rate
    rounds "events/s, each round" "$1" rate
    row "streams connected" "$1" connected
    row "id gaps" "$1" gaps
    row "errors" "$1" errors
    row "latency p50 (us)" "$1" p50_us
    row "latency p99 (us)" "$1" p99_us
    row "proxy CPU (% of one core)" "$1" proxy_cpu_pct
    row "origin CPU (% of one core)" "$1" origin_cpu_pct
}
load_rows() {       # load_rows SCENARIO: the load generator's CPU and the whole machine's (anything else shows there)
    row "client CPU (% of one core)" "$1" client_cpu_pct
    row "machine CPU, all (% of one core)" "$1" machine_cpu_pct
}
idle_rows() {       # idle_rows SCENARIO
    row "streams held" "$1" connected
    row "RSS before (KiB)" "$1" rss_base_kib
    row "RSS with streams (KiB)" "$1" rss_kib
    row "KiB per stream" "$1" kib_per_stream
}
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
fan_cell() {        # fan_cell TARGET KEY [ms]: the fanout figure, microseconds shown as ms with one decimal
    local v
    v=$(cell "$1" fanout "$2")
    if [ "${3:-}" = ms ] && [[ $v =~ ^[0-9.]+$ ]]; then
        awk -v x="$v" 'BEGIN { printf "%.1f", x / 1000 }'
    else
        echo "$v"
    fi
}
fan_row() {         # fan_row LABEL KEY [ms] [KEY2]: one row over FAN_TARGETS; with KEY2, "a / b"
    local t v
    printf '  %-34s' "$1"
    for t in $FAN_TARGETS; do
        v=$(fan_cell "$t" "$2" "${3:-}")
        [ -n "${4:-}" ] && [ -z "${NOTE[$t,fanout]:-}" ] && v="$v / $(fan_cell "$t" "$4")"
        printf ' %-16s' "$v"
    done
    printf '\n'
}
fan_rounds() {      # fan_rounds LABEL KEY: every round's value in ms, a/b/c
    local t
    printf '  %-34s' "$1"
    for t in $FAN_TARGETS; do
        printf ' %-16s' "$(for v in ${RUNS[$t,fanout,$2]:-}; do awk -v x="$v" 'BEGIN { printf "%.1f ", x / 1000 }'; done | sed 's/ $//' | tr ' ' '/')"
    done
    printf '\n'
}
best_peer() {       # best_peer SCENARIO KEY: "name value" of the highest figure among nginx and haproxy
    local t best="" v bv=""
    for t in nginx haproxy; do
        [[ " $TARGETS " == *" $t "* ]] || continue
        v=${R[$t,$1,$2]:-}
        [ -n "$v" ] || continue
        if [ -z "$bv" ] || awk -v a="$v" -v b="$bv" 'BEGIN { exit !(a > b) }'; then
            best=$t bv=$v
        fi
    done
    [ -n "$best" ] && echo "$best $bv"
}

{
    echo "ssegate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(uname -r)), proxies with $WORKERS workers/threads"
    [ "$PIN" = 1 ] && echo "Pinned (SG_BENCH_PIN=1): each proxy on CPU ${SG_BENCH_PIN_PROXY_CPU:-0} alone, the origin and the load generator on CPU ${SG_BENCH_PIN_PEER_CPU:-1}"
    # SG_BENCH_REV names the ssegate build when it is not this checkout's (e.g. a `git archive` export).
    echo "ssegate ${SG_BENCH_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo '+local changes')}; load average at start: $LOAD_AT_START"
    [ "$PIN" = 1 ] || echo "Origin, load generator and proxy share these cores: the figures compare proxies on the same machine."
    if [ "$(echo $SCENARIOS)" != fanout ]; then
        printf '  %-34s' ""
        for t in $TARGETS; do printf ' %-16s' "$t"; done
        printf '\n'
    fi
    if [[ " $SCENARIOS " == *" thr "* ]]; then
        echo "Throughput: $THR_STREAMS streams, one ~100-byte event per stream every ${THR_INTERVAL_US} us, ${THR_DURATION} s (median of $REPEAT rounds)"
        thr_rows thr
    fi
    if [[ " $SCENARIOS " == *" lat "* ]]; then
        echo "Latency: $LAT_STREAMS streams, $LAT_RATE events/s in total, ${LAT_DURATION} s (median of $REPEAT rounds)"
        row "latency p50 (us)" lat p50_us
        row "latency p99 (us)" lat p99_us
        rounds "p99 (us), each round" lat p99_us
        row "latency p99.9 (us)" lat p999_us
        row "latency max (us)" lat max_us
        row "events/s delivered" lat rate
        row "id gaps" lat gaps
        row "errors" lat errors
        row "proxy CPU (% of one core)" lat proxy_cpu_pct
    fi
    if [[ " $SCENARIOS " == *" idle "* ]]; then
        echo "Idle memory: $IDLE_STREAMS idle SSE streams held open; proxy RSS (all processes) minus its RSS before"
        idle_rows idle
    fi
    if has upthr; then
        echo "Throughput with TLS to the origin (verified; $CERT_KEY certificate): the thr scenario, the origin behind TLS (median of $REPEAT rounds)"
        thr_rows upthr
    fi
    if has upidle; then
        echo "Idle memory with TLS to the origin: $IDLE_STREAMS idle SSE streams, each with its own TLS connection to the origin"
        idle_rows upidle
    fi
    if has h2upthr; then
        echo "Throughput with HTTP/2 to the origin (h2c, bench/h2origin): the thr scenario, one upstream session per worker (median of $REPEAT rounds)"
        thr_rows h2upthr
    fi
    if has h2upidle; then
        echo "Idle streams with HTTP/2 to the origin (h2c): $H2UP_STREAMS idle SSE streams asked for at the 20,000-fd limit; proxy RSS minus its RSS before"
        idle_rows h2upidle
    fi
    if has h2thr; then
        echo "HTTP/2 throughput (h2c): $H2_CONNS connections x $((H2_STREAMS / H2_CONNS)) streams, one ~100-byte event per stream every ${THR_INTERVAL_US} us, ${THR_DURATION} s (median of $REPEAT rounds)"
        thr_rows h2thr
        load_rows h2thr
    fi
    if has h2tlsthr; then
        echo "HTTP/2 over TLS throughput: the same over TLS (ALPN h2, $CERT_KEY certificate) (median of $REPEAT rounds)"
        thr_rows h2tlsthr
        load_rows h2tlsthr
    fi
    if has h2idle; then
        echo "HTTP/2 idle memory (h2c): $H2IDLE_STREAMS idle SSE streams over $H2IDLE_CONNS connections; proxy RSS minus its RSS before"
        idle_rows h2idle
    fi
    if has h2tlsidle; then
        echo "HTTP/2 over TLS idle memory: the same over TLS (ALPN h2, $CERT_KEY certificate)"
        idle_rows h2tlsidle
    fi
    if has hs; then
        echo "TLS handshakes: $H2_CONNS x $((H2_STREAMS / H2_CONNS)) TLS h2 streams, $LAT_RATE events/s in total; ${LAT_DURATION} s without, then ${LAT_DURATION} s with $HS_RATE full handshakes/s ($CERT_KEY certificate; median of $REPEAT rounds)"
        row "p99 without handshakes (us)" hs base_p99_us
        row "p99 with handshakes (us)" hs p99_us
        row "p99 with / without" hs p99_ratio x
        rounds "p99 with / without, each round" hs p99_ratio
        row "p50 without handshakes (us)" hs base_p50_us
        row "p50 with handshakes (us)" hs p50_us
        row "p99.9 with handshakes (us)" hs p999_us
        row "max with handshakes (us)" hs max_us
        row "handshakes/s achieved" hs hs_rate
        row "handshakes failed" hs hs_failed
        row "handshake time avg (ms)" hs hs_avg_ms
        row "handshake time max (ms)" hs hs_max_ms
        row "events/s with handshakes" hs rate
        row "id gaps" hs gaps
        row "errors" hs errors
        row "proxy CPU without (% of a core)" hs base_proxy_cpu_pct
        row "proxy CPU with (% of a core)" hs proxy_cpu_pct
        row "client CPU without (% of a core)" hs base_client_cpu_pct
        row "client CPU with (% of a core)" hs client_cpu_pct
        row "machine CPU without (% of a core)" hs base_machine_cpu_pct
        row "machine CPU with (% of a core)" hs machine_cpu_pct
    fi
    if has fanout; then
        echo "Fan-out: one SSE stream, $FAN_SUBS subscribers over HTTP/1.1 (ssegate-unshared: $FAN_UNSHARED_SUBS), $FAN_LAT_EVENTS events at $FAN_LAT_RATE/s, then $FAN_THR_EVENTS at $FAN_THR_RATE/s (median of $REPEAT rounds)"
        echo "  fan-out time = the last subscriber's receipt - the origin's write (pushpin, nchan: - the publish)"
        printf '  %-34s' ""
        for t in $FAN_TARGETS; do printf ' %-16s' "$t"; done
        printf '\n'
        fan_row "subscribers connected" connected
        fan_row "subscribers that failed" failed
        fan_row "subscribers with every event" complete_subs
        fan_row "id gaps / duplicates" gaps "" dups
        fan_row "streams closed under way" closed
        fan_row "fan-out p50 (ms)" fan_p50_us ms
        fan_row "fan-out p99 (ms)" fan_p99_us ms
        fan_rounds "fan-out p99 (ms), each round" fan_p99_us
        fan_row "fan-out max (ms)" fan_max_us ms
        fan_row "events every subscriber got" fan_events
        fan_row "at $FAN_THR_RATE/s: deliveries/s" rate
        fan_row "at $FAN_THR_RATE/s: fan-out p50 (ms)" thr_fan_p50_us ms
        fan_row "at $FAN_THR_RATE/s: fan-out p99 (ms)" thr_fan_p99_us ms
        fan_row "at $FAN_THR_RATE/s: fan-out max (ms)" thr_fan_max_us ms
        fan_row "at $FAN_THR_RATE/s: CPU (% of one core)" proxy_cpu_pct
        fan_row "CPU s per million deliveries" cpu_s_per_mev
        fan_row "RSS before (KiB)" rss_base_kib
        fan_row "RSS with subscribers (KiB)" rss_kib
        fan_row "bytes per subscriber" bytes_per_sub
        fan_row "backend connections accepted" origin_accepted
        fan_row "backend streams open at most" origin_max_live
        echo "  direct: the origin writes to every subscriber itself (its CPU and RSS); pushpin: condure, zurl, proxy, handler"
        echo "  summed; nchan and nginx: master and workers summed. Backend connections: none for nchan (publish only);"
        echo "  pushpin's are its GRIP subscribe requests (each answered at once, kept alive by zurl)."
    fi
    if has wsthr; then
        echo "WebSocket echo, closed loop: $WS_CONNS WebSockets, each with $WS_WINDOW message(s) of $WS_SIZE bytes in flight, ${THR_DURATION} s (median of $REPEAT rounds)"
        row "messages/s echoed" wsthr rate
        rounds "messages/s, each round" wsthr rate
        row "WebSockets connected" wsthr connected
        row "errors" wsthr errors
        row "round trip p50 (us)" wsthr p50_us
        row "round trip p99 (us)" wsthr p99_us
        row "proxy CPU (% of one core)" wsthr proxy_cpu_pct
        row "origin CPU (% of one core)" wsthr origin_cpu_pct
        row "client CPU (% of one core)" wsthr client_cpu_pct
        row "machine CPU, all (% of one core)" wsthr machine_cpu_pct
        row "proxy CPU us per message" wsthr proxy_us_per_msg
    fi
    if has wslat; then
        echo "WebSocket latency: $WS_CONNS WebSockets, $WS_RATE messages/s of $WS_SIZE bytes in total, ${LAT_DURATION} s (median of $REPEAT rounds)"
        row "round trip p50 (us)" wslat p50_us
        row "round trip p99 (us)" wslat p99_us
        rounds "p99 (us), each round" wslat p99_us
        row "round trip p99.9 (us)" wslat p999_us
        row "round trip max (us)" wslat max_us
        row "messages/s echoed" wslat rate
        row "errors" wslat errors
        row "proxy CPU (% of one core)" wslat proxy_cpu_pct
        row "proxy CPU us per message" wslat proxy_us_per_msg
    fi
    if [[ " $TARGETS " == *" ssegate "* && " $TARGETS " == *" haproxy "* ]] && { has wsthr || has wslat; }; then
        echo "Against issue 13's WebSocket targets (ssegate vs haproxy, same run, medians):"
        has wsthr && echo "  messages/s ssegate/haproxy: $(ratio "${R[ssegate,wsthr,rate]:-}" "${R[haproxy,wsthr,rate]:-}")x (target >= 1.0x)"
        has wslat && echo "  round trip p99 ssegate/haproxy: $(ratio "${R[ssegate,wslat,p99_us]:-}" "${R[haproxy,wslat,p99_us]:-}")x (target <= 1.0x)"
    fi
    if has grpc; then
        echo "gRPC server streaming (h2c both sides): $GRPC_CONNS connections x $((GRPC_STREAMS / GRPC_CONNS)) calls, endless streams of $GRPC_SIZE-byte messages as fast as flow control allows, ${GRPC_DURATION} s (median of $REPEAT rounds; direct: the client on the origin)"
        row "messages/s delivered" grpc msgs_per_s
        rounds "messages/s, each round" grpc msgs_per_s
        row "proxy CPU (% of one core)" grpc proxy_cpu_pct
        row "proxy CPU us per 1000 messages" grpc cpu_us_per_kmsg
        row "calls reset" grpc streams_reset
        if [[ " $TARGETS " == *" ssegate "* ]]; then
            read -r bp bv <<<"$(best_peer grpc msgs_per_s)"
            echo "  gRPC messages/s ssegate/best peer: $(ratio "${R[ssegate,grpc,msgs_per_s]:-}" "${bv:-}")x (best peer ${bp:--} ${bv:--}; target >= 1.0x)"
        fi
    fi
    if [[ " $TARGETS " == *" ssegate "* && " $TARGETS " == *" haproxy "* ]] && { has thr || has lat || has idle; }; then
        echo "Against the issue's targets (ssegate vs haproxy, same run, medians):"
        echo "  throughput ssegate/haproxy: $(ratio "${R[ssegate,thr,rate]:-}" "${R[haproxy,thr,rate]:-}")x (target >= 1.1x)"
        echo "  latency p99 ssegate/haproxy: $(ratio "${R[ssegate,lat,p99_us]:-}" "${R[haproxy,lat,p99_us]:-}")x (target <= 1.0x)"
        echo "  idle KiB per stream: ssegate $(cell ssegate idle kib_per_stream), haproxy $(cell haproxy idle kib_per_stream), nginx $(cell nginx idle kib_per_stream) (target <= 2 KiB)"
    fi
    if [[ " $TARGETS " == *" ssegate "* ]] && { has h2thr || has h2tlsthr || has h2idle || has h2tlsidle || has hs; }; then
        echo "Against issue 3's HTTP/2 targets (same run, medians):"
        for sc in h2thr h2tlsthr; do
            has $sc || continue
            read -r bp bv <<<"$(best_peer $sc rate)"
            echo "  $([ $sc = h2thr ] && echo "h2c" || echo "TLS h2") throughput ssegate/best peer: $(ratio "${R[ssegate,$sc,rate]:-}" "${bv:-}")x (ssegate $(cell ssegate $sc rate), best peer ${bp:--} ${bv:--}; target >= 1.0x$([ $sc = h2tlsthr ] && echo ", set for h2c"))"
        done
        for sc in h2idle h2tlsidle; do
            has $sc || continue
            echo "  idle KiB per $([ $sc = h2idle ] && echo "h2c" || echo "TLS h2") stream: ssegate $(cell ssegate $sc kib_per_stream), haproxy $(cell haproxy $sc kib_per_stream), nginx $(cell nginx $sc kib_per_stream) (target <= 2 KiB)"
        done
        if has hs; then
            echo "  p99 with/without $HS_RATE handshakes/s: ssegate $(cell ssegate hs p99_ratio x), haproxy $(cell haproxy hs p99_ratio x), nginx $(cell nginx hs p99_ratio x) (target <= 2x)"
        fi
    fi
} | tee "$OUT"
echo "bench: written to $OUT" >&2
