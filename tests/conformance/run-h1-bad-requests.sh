#!/usr/bin/env bash
# run-h1-bad-requests.sh: the peer raw HTTP/1.1 cases (llhttp, Http11Probe, RFC 9112) against ssegate with
# tools/h1_raw_runner.mjs (status and close per case), then what reached the backend.
#   tests/conformance/run-h1-bad-requests.sh
source "$(dirname "$0")/lib.sh"
need_conformance

CASES=$CONF/http1-bad-requests.jsonl
touch "$WORK/backend.log"
node "$REPO/tests/conformance/count-backend.mjs" "$WORK/backend.log" >"$WORK/backend.port" &
BE_PID=$!
trap 'kill "$BE_PID" 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/backend.port" ] && break; sleep 0.05; done
BE=$(cat "$WORK/backend.port")
GW=$(free_port)
cat >"$WORK/gw.yaml" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: $GW}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: 127.0.0.1, port: $BE}]
YAML
start_gateway "$WORK/gw.yaml" "$GW"
echo "conformance: http1 bad requests against ssegate :$GW ($SSEGATE_BIN), backend :$BE"
node "$CONF/tools/h1_raw_runner.mjs" "$CASES" --target "127.0.0.1:$GW" | tee "$WORK/runner.out"
rc=${PIPESTATUS[0]}
grep -q '^DIFF' "$WORK/runner.out" && rc=1

# Only accepted cases (and the reject_or_normalize ones, in their normalised form) may reach the backend.
allowed=$(grep -c -E '"outcome": "(accept|reject_or_normalize)"' "$CASES")
accept=$(grep -c '"outcome": "accept"' "$CASES")
hits=$(grep -c . "$WORK/backend.log")
echo "backend: $hits request(s) received; $accept accepted case(s), at most $allowed may be forwarded"
sed 's/^/    /' "$WORK/backend.log"
if grep -q clientError "$WORK/backend.log"; then echo "backend: received bytes that are not HTTP"; rc=1; fi
if [ "$hits" -gt "$allowed" ] || [ "$hits" -lt "$accept" ]; then rc=1; fi
exit $rc
