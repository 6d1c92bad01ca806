#!/usr/bin/env bash
# bench/fdlimit.sh: each proxy at its file-descriptor limit: CPU, error-log lines/s, health endpoint, recovery.
# Usage: bench/fdlimit.sh BUILD_DIR [TARGETS]   (TARGETS: "ssegate nginx haproxy", the default)
# Each proxy runs under `prlimit --nofile=$FDS:$FDS` (default 200) with one worker/thread, its health endpoint
# on a second port of the same process; bench/fdlimit-client.mjs holds $CONNS (default 400) idle connections
# to it, spread over 127.0.0.2-201, and samples for $WINDOW seconds (default 5). Figures only.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
TARGETS=${2:-ssegate nginx haproxy}
FDS=${FDS:-200}
CONNS=${CONNS:-400}
WINDOW=${WINDOW:-5}
. bench/lib.sh
bench_init ssegate-fdlimit

OPORT=$(free_port)
"$B/bench/origin" --port "$OPORT" --idle 2>"$TMP/origin.log" &
STARTED+=($!)
wait_listen "$OPORT"

for t in $TARGETS; do
    PORT=$(free_port)
    HPORT=$(free_port)
    LOG=$TMP/$t.log
    : >"$LOG"
    case $t in
    ssegate)
        cat >"$TMP/gw.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: $PORT}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: 127.0.0.1, port: $OPORT}]}]
EOF
        prlimit --nofile="$FDS:$FDS" "$B/ssegate" -c "$TMP/gw.yaml" --workers 1 --access-log off \
            --header-timeout 60s --admin "127.0.0.1:$HPORT" 2>"$LOG" &
        PID=$!
        PIDS=$PID
        ;;
    nginx)
        mkdir -p "$TMP/ng"
        cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
user root;
events { use epoll; worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/ng; proxy_temp_path $TMP/ng; fastcgi_temp_path $TMP/ng;
    uwsgi_temp_path $TMP/ng; scgi_temp_path $TMP/ng;
    client_header_timeout 60s;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location / { proxy_pass http://127.0.0.1:$OPORT; proxy_http_version 1.1; proxy_buffering off; }
    }
    server { listen 127.0.0.1:$HPORT; location /healthz { return 200 "ok\n"; } }
}
EOF
        prlimit --nofile="$FDS:$FDS" nginx -c "$TMP/nginx.conf" -g "daemon off; pid $TMP/nginx.pid; error_log $LOG;" \
            2>>"$LOG" &
        PID=$!
        sleep 0.5
        PIDS=$(echo "$PID" $(pgrep -P "$PID") | tr ' ' ,)
        ;;
    haproxy)
        cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    # HAProxy refuses to start unless maxconn fits the fd limit (about 2 fds per connection + its own)
    maxconn 90
    log stderr format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout http-request 60s
frontend fe
    bind 127.0.0.1:$PORT
    default_backend origin
frontend health
    bind 127.0.0.1:$HPORT
    monitor-uri /healthz
backend origin
    server o1 127.0.0.1:$OPORT
EOF
        prlimit --nofile="$FDS:$FDS" haproxy -db -f "$TMP/haproxy.cfg" 2>"$LOG" >>"$LOG" &
        PID=$!
        PIDS=$PID
        ;;
    esac
    STARTED+=("$PID")
    if ! wait_listen "$PORT"; then
        echo "$t: did not start"; cat "$LOG"; continue
    fi
    sleep 0.3
    echo "== $t (nofile $FDS, $CONNS connections, ${WINDOW}s window)"
    node bench/fdlimit-client.mjs --port "$PORT" --health-port "$HPORT" --pids "$PIDS" --log "$LOG" \
        --conns "$CONNS" --window "$WINDOW"
    echo "   log: $(wc -l <"$LOG") lines in total; the last distinct ones:"
    tail -c 100000 "$LOG" | cut -c1-160 | sed -E 's/^[0-9T:.-]+Z? ?//' | sort | uniq -c | sort -rn | head -3 | sed 's/^/   /'
    stop_pid "$PID"
done
