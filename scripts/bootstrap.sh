#!/usr/bin/env bash
# Installs what building, running and testing ssegate need, and nothing when all is there.
# Idempotent and quiet: prints only when it installs something.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=(gcc make pkg-config libnghttp2-dev libssl-dev libfyaml-dev libcmocka-dev libpcre2-dev
           curl nghttp2-client clang openssl ca-certificates)
# Node may come from another packaging of nodejs that bundles npm (and conflicts with Debian's npm):
# ask for the Debian packages only when the commands are missing.
command -v node >/dev/null 2>&1 || need_debs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_debs+=(npm)
if [ "${SG_BOOTSTRAP_BROWSER:-1}" = 1 ]; then need_debs+=(chromium); fi
if [ "${SG_BOOTSTRAP_BENCH:-0}" = 1 ]; then need_debs+=(nginx-light haproxy pushpin libnginx-mod-nchan); fi
# The Kubernetes tests drive kubectl. The machine image may ship its own /usr/bin/kubectl; Debian's
# kubernetes-client provides the same path, so it is asked for only when the command is missing.
command -v kubectl >/dev/null 2>&1 || need_debs+=(kubernetes-client)

missing=()
for p in "${need_debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test packages: npm ci only when node_modules is absent or older than the lock file.
if [ -f package-lock.json ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "bootstrap: npm ci"
        npm ci --no-audit --no-fund --loglevel=error >/dev/null
    fi
fi
