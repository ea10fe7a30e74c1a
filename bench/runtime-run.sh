#!/usr/bin/env bash
# `dockyard-runtime run` vs `runc run` on the same busybox bundle (`true`), alternating.
# Target: ratio <= 0.5.  dockyard-runtime's resident server (started by the first call, the
# warm-up) runs on a private socket and is stopped at the end.
#   ROUNDS (default 6), RUNS per round (default 5)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-6}
RUNS=${RUNS:-5}
DY_RUNTIME=${DY_RUNTIME:-dockyard-runtime}
bench_init
_need runc "apt-get install runc" || exit 1
_need "$DY_RUNTIME" "install dockyard: ./install.sh" || exit 1

export DOCKYARD_RUNTIME_SERVER=$BENCH_TMP/server/sock
export DOCKYARD_RUNTIME_SERVER_IDLE=30  # gone soon even if this script is interrupted
bundle=$BENCH_TMP/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
ln -s busybox "$bundle/rootfs/bin/sh"
(cd "$bundle" && "$DY_RUNTIME" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY
state=$BENCH_TMP/state
mkdir -p "$state/dy" "$state/runc"
hf_rounds "$BENCH_TMP/rt" "$ROUNDS" "$RUNS" \
    dockyard "$DY_RUNTIME --root $state/dy run --bundle $bundle bench-dy" \
    runc "runc --root $state/runc run --bundle $bundle bench-runc"
kill "$(cat "$BENCH_TMP/server/sock.pid" 2>/dev/null)" 2>/dev/null || true
HF_TARGET=0.50 hf_report "runtime-run: <runtime> run on a busybox bundle running /bin/true" \
    dockyard runc "$BENCH_TMP"/rt.*.json
