#!/usr/bin/env bash
# Run every benchmark in turn; each starts and stops both engines itself.
# Exits non-zero if any benchmark failed to run (a ratio above target is
# reported, not treated as a failure).
set -uo pipefail
here=$(dirname "$0")
rc=0
for b in cli-startup images-list idle-rss run-latency concurrent-run container-memory runtime-run \
    volume-io network log-throughput build pull registry layer-disk daemon-stop; do
    bash "$here/$b.sh" || { echo "bench: $b failed" >&2; rc=1; }
    echo
done
exit "$rc"
