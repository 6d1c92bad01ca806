#!/usr/bin/env bash
# check-layers.sh: includes point down the layers of src/, never up (docs/CONVENTIONS.md, "Layers").
# Each folder of src/ is a layer, listed here from the bottom up; a file may include headers of its own
# layer and of the layers below it, always by their path under src/ ("core/loop.h"). The files directly in
# src/ (main.c, serve.c) are the top and may include anything. Prints each violation; exits 1 if any.
set -uo pipefail
cd "$(dirname "$0")/../src"
# kube/ is a config source beside the file loader: it sits above the data path so that nothing on it (http,
# proxy, admin) can include it, and it may include only the layers a config source needs (ONLY below).
LAYERS=(core codec net config http proxy fanout admin kube)
declare -A RANK
for i in "${!LAYERS[@]}"; do RANK[${LAYERS[$i]}]=$i; done
declare -A ONLY=([kube]="core codec net config kube")
bad=0
for f in */*.c */*.h; do
    dir=${f%%/*}
    if [ -z "${RANK[$dir]+x}" ]; then
        echo "src/$f: folder '$dir' is not a layer (add it to LAYERS in scripts/check-layers.sh)"; bad=1; continue
    fi
    while IFS=: read -r line inc; do
        inc=${inc#*\"}; inc=${inc%\"*}
        idir=${inc%%/*}
        if [ "$idir" = "$inc" ]; then
            echo "src/$f:$line: #include \"$inc\" names no layer (write \"<layer>/$inc\")"; bad=1
        elif [ -z "${RANK[$idir]+x}" ]; then
            echo "src/$f:$line: #include \"$inc\": '$idir' is not a layer below '$dir'"; bad=1
        elif [ "${RANK[$idir]}" -gt "${RANK[$dir]}" ]; then
            echo "src/$f:$line: #include \"$inc\" reaches up from layer '$dir' to '$idir'"; bad=1
        elif [ -n "${ONLY[$dir]+x}" ] && [[ " ${ONLY[$dir]} " != *" $idir "* ]]; then
            echo "src/$f:$line: #include \"$inc\": layer '$dir' may include only: ${ONLY[$dir]}"; bad=1
        fi
    done < <(grep -n '^#include "' "$f" | sed 's/:#include /:/')
done
[ $bad -eq 0 ] || echo "layers: includes must point down: ${LAYERS[*]} (then src/*.c on top)"
exit $bad
