#!/usr/bin/env bash
# Install dockyard on a Debian machine (as root): system packages, a venv with the pinned
# Python dependencies, and the `dockyard` / `dockyardd` commands in /usr/local/bin.
#   ./install.sh          runtime only
#   ./install.sh --test   also what the test suite and benchmarks need
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${DOCKYARD_VENV:-/opt/dockyard/venv}"
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

apt_pkgs=(busybox-static ca-certificates tini iptables libseccomp2 libjemalloc2 gcc libc6-dev)  # libseccomp2: seccomp filters; libjemalloc2: the daemon's allocator (daemon/launch.py); gcc: dockyard-runtime's client
[ $with_tests = 1 ] && apt_pkgs+=(docker.io docker-compose docker-registry skopeo buildah apache2-utils hyperfine jq wrk iproute2 procps curl bc e2fsprogs)  # tests: ip, pgrep, registry peers, htpasswd, mkfs.ext4 (the disk-full test); bench: curl, bc
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
if [ $with_tests = 1 ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$here[test]"
else
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$here"
fi
"$venv/bin/python" -m compileall -q "$here/src" >/dev/null

# The CLI's start-up time is benchmarked against the Go docker binary: pip's console-script
# wrapper imports `re` and the interpreter's site machinery (~8 ms), so the `dockyard`
# command is a lean launcher that starts the real interpreter isolated (-I -S).
cat > "$venv/bin/dockyard" <<LAUNCHER
#!$venv/bin/python -IS
import sys
sys.path.append("$here/src")
from dockyard.cli.main import main
main()
LAUNCHER
chmod 755 "$venv/bin/dockyard"

# dockyard-runtime is benchmarked against the Go runc: a compiled client hands each call to
# a resident runtime server (runtime/cli/server.py) and falls back to this Python command.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cat > "$venv/bin/dockyard-runtime-py" <<LAUNCHER
#!$venv/bin/python -IS
import sys
sys.path += ["$here/src", "$site"]
from dockyard.runtime.cli.main import main
sys.exit(main())
LAUNCHER
chmod 755 "$venv/bin/dockyard-runtime-py"
cflags=(-O2 -Wall -Wextra -Werror -DPYTHON_COMMAND="\"$venv/bin/dockyard-runtime-py\"")
client="$here/src/dockyard/runtime/cli/client.c"
# static when libc.a is there: no dynamic loader, 0.2 ms less per call
gcc "${cflags[@]}" -static -o "$venv/bin/dockyard-runtime.new" "$client" 2>/dev/null ||
    gcc "${cflags[@]}" -o "$venv/bin/dockyard-runtime.new" "$client"
mv -f "$venv/bin/dockyard-runtime.new" "$venv/bin/dockyard-runtime"
ln -sf "$venv/bin/dockyard-runtime" /usr/local/bin/dockyard-runtime
ln -sf "$venv/bin/dockyard" /usr/local/bin/dockyard
ln -sf "$venv/bin/dockyardd" /usr/local/bin/dockyardd
echo "dockyard installed: $(dockyard --version)"
