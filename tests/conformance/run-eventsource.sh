#!/usr/bin/env bash
# run-eventsource.sh: the peer EventSource cases (WPT-derived) in headless Chromium, streams through ssegate.
#   tests/conformance/run-eventsource.sh [--only ID,ID]
# Needs ../shared/conformance (or SG_CONFORMANCE_DIR), node_modules (npm ci) and Debian chromium.
# Everything goes through ssegate: it listens on GW (127.0.0.1 = page and same-origin streams, 127.0.0.2 =
# cross-origin streams) and routes / to the harness origin, which es-preload.mjs moves from GW to ORIGIN.
source "$(dirname "$0")/lib.sh"
need_conformance

ORIGIN=$(free_port)
GW=$(free_port)
cat >"$WORK/gw.yaml" <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}, {type: IPAddress, value: 127.0.0.2}]
  listeners: [{name: http, protocol: HTTP, port: $GW}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: es}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /es}}, {path: {type: PathPrefix, value: /page}}]
    backendRefs: [{name: 127.0.0.1, port: $ORIGIN}]
YAML
start_gateway "$WORK/gw.yaml" "$GW"
echo "conformance: eventsource cases, origin :$ORIGIN, gateway :$GW ($SSEGATE_BIN)"
SG_ES_LISTEN_FROM=$GW SG_ES_LISTEN_TO=$ORIGIN PLAYWRIGHT_CORE="$REPO/node_modules/playwright-core" \
    node --import "$REPO/tests/conformance/es-preload.mjs" "$CONF/tools/es_harness.mjs" "$CONF/eventsource-cases.jsonl" \
    --proto h1 --port "$GW" --stream-base "http://127.0.0.1:$GW" --cross-base "http://127.0.0.2:$GW" "$@"
rc=$?
exit $rc
