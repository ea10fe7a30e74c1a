"""``dockyard pull/push/login/logout/search`` and run's implicit pull, side by side with the
official docker CLI 28 against the same engine and registries started here.

Registries: Debian's ``docker-registry`` (distribution 2.8) on loopback ports, one open and
one with htpasswd auth, started by ``regpeers.start_registry`` and stopped in finalizers.
``docker-registry`` has no ``/v1/search``, so search runs against a small v1 search endpoint
served by the test (the registry side of search is the daemon's business; this checks what
the CLIs make of the daemon's answer).

Each comparison runs both CLIs with the same arguments, each with its own ``DOCKER_CONFIG``
(so what ``login`` writes can be compared byte for byte), after putting the engine back in
the same state (``prep``).  ENGINES lists the engines the module runs against: the reference
dockerd (is the CLI right?) and dockyardd (is the daemon right?); the last test runs the
docker CLI against both engines and compares what each daemon made it print.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import urllib.parse
import uuid

import pytest
from engines import DOCKER_CLI, norm_name
from regpeers import digest as sha256_of
from regpeers import layer_tar, start_registry

ENGINES = ["dockerd", "dockyardd"]
DY_CLI = [sys.executable, "-m", "dockyard.cli.main"]
NET = ("--network", "none")


class SearchIndex:
    """A v1 search endpoint (``/v1/_ping``, ``/v1/search``) serving fixed results, in order."""

    RESULTS = [
        {"name": "x/y", "description": "line1\nline2", "star_count": 0, "is_official": False},
        {
            "name": "someone/busybox-extra",
            "description": "A very long description that goes well beyond the forty-five characters",
            "star_count": 12,
            "is_official": False,
            "is_automated": True,
        },
        {
            "name": "library/busybox",
            "description": "Busybox <base> & more.",
            "star_count": 3000,
            "is_official": True,
        },
    ]

    def __init__(self) -> None:
        results = self.RESULTS

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlparse(self.path)
                if url.path == "/v1/_ping":
                    body = b"true"
                elif url.path == "/v1/search":
                    query = urllib.parse.parse_qs(url.query)
                    limit = int(query.get("n", ["25"])[0])
                    found = results[:limit]
                    body = json.dumps(
                        {"num_results": len(found), "query": query["q"][0], "results": found}
                    ).encode()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=ENGINES)
def reg_engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture(scope="module")
def registry():
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def auth_registry():
    reg = start_registry(htpasswd=("user", "pass"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def search_index():
    index = SearchIndex()
    try:
        yield index
    finally:
        index.stop()


@pytest.fixture
def configs(tmp_path):
    """Two config dirs (dockyard's, docker's), started from the same seed by ``seed()``."""
    dirs = (str(tmp_path / "dy-config"), str(tmp_path / "ref-config"))

    def seed(text: str | None) -> None:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
            if text is not None:
                os.makedirs(d)
                with open(os.path.join(d, "config.json"), "w") as f:
                    f.write(text)
                os.chmod(os.path.join(d, "config.json"), 0o600)

    seed(None)
    return dirs, seed


class Pair:
    """Runs one command with both CLIs on ``engine`` and compares what they did."""

    def __init__(self, engine, configs, extra_env: dict[str, str] | None = None) -> None:
        self.engine = engine
        self.dirs = configs
        self.extra_env = extra_env or {}

    def run(self, program, config, *args, input=None, env=None):
        full = dict(self.engine.env)
        full["DOCKER_CONFIG"] = config
        full.update(self.extra_env)
        full.update(env or {})
        return subprocess.run(
            program + list(args), env=full, input=input, capture_output=True, timeout=180
        )

    def same(self, *args, input=None, prep=None, sort_lines=False, env_for=None):
        """Both CLIs give the same exit code, stdout and stderr (config paths and program
        names aside).  ``prep()`` runs before each; ``sort_lines`` for output whose order
        depends on concurrent downloads."""
        results = []
        for program, config in ((DY_CLI, self.dirs[0]), ([DOCKER_CLI], self.dirs[1])):
            if prep:
                prep()
            env = env_for(config) if env_for else None
            results.append(self.run(program, config, *args, input=input, env=env))
        mine, theirs = results

        def norm(data: bytes, config: str) -> bytes:
            return norm_name(data.replace(config.encode(), b"<config>"))

        got = [mine.returncode, norm(mine.stdout, self.dirs[0]), norm(mine.stderr, self.dirs[0])]
        want = [
            theirs.returncode,
            norm(theirs.stdout, self.dirs[1]),
            norm(theirs.stderr, self.dirs[1]),
        ]
        if sort_lines:
            # Concurrent downloads: the daemon's order, and whether a short-lived status
            # (Waiting, Verifying Checksum, Download complete) is sent at all, vary from pull
            # to pull (dockerd's progress writer drops statuses overtaken by the next one).
            def lines(x: bytes) -> list[bytes]:
                transient = (b": Waiting", b": Verifying Checksum", b": Download complete")
                return sorted(line for line in x.splitlines() if not line.endswith(transient))

            got[1:] = [lines(x) for x in got[1:]]
            want[1:] = [lines(x) for x in want[1:]]
        assert got == want, args
        return theirs


@pytest.fixture
def pair(reg_engine, configs):
    return Pair(reg_engine, configs[0])


def _rmi(engine, *refs):
    def prep() -> None:
        engine.cli("rmi", *refs)

    return prep


def make_layered_image(engine, workdir: str, tag: str, sizes: list[int]) -> None:
    """A ``docker save`` tarball with one random file per layer, loaded into ``engine``."""
    import hashlib

    root = os.path.join(workdir, f"img-{uuid.uuid4().hex[:8]}")
    os.makedirs(root)
    try:
        layers, diff_ids = [], []
        for i, size in enumerate(sizes):
            os.makedirs(os.path.join(root, f"l{i}"))
            name = f"l{i}/layer.tar"
            tar = layer_tar({f"f{i}": os.urandom(size)})
            with open(os.path.join(root, name), "wb") as f:
                f.write(tar)
            diff_ids.append(sha256_of(tar))
            layers.append(name)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [{"created_by": f"layer {i}"} for i in range(len(sizes))],
            }
        ).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        with open(os.path.join(root, config_name), "wb") as f:
            f.write(config)
        with open(os.path.join(root, "manifest.json"), "w") as f:
            json.dump([{"Config": config_name, "RepoTags": [tag], "Layers": layers}], f)
        archive = root + ".tar"
        with tarfile.open(archive, "w") as tar:
            for entry in sorted(os.listdir(root)):
                tar.add(os.path.join(root, entry), entry)
        engine.cli("load", "-i", archive, check=True)
        os.unlink(archive)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pushed(reg_engine, registry):
    """busybox pushed as <registry>/bb:v1 (and :v2), by the docker CLI."""
    repo = f"{registry.host}/bb"
    for tag in ("v1", "v2"):
        reg_engine.cli("tag", "busybox", f"{repo}:{tag}", check=True)
        reg_engine.cli("push", f"{repo}:{tag}", check=True)
    digest = json.loads(reg_engine.cli("image", "inspect", f"{repo}:v1", check=True).stdout)[0][
        "RepoDigests"
    ][0].split("@")[1]
    yield repo, digest
    reg_engine.cli("rmi", f"{repo}:v1", f"{repo}:v2", f"{repo}@{digest}")


# -- pull -------------------------------------------------------------------------------------


def test_pull_output_and_errors(pair, reg_engine, pushed, registry):
    repo, digest = pushed
    prep = _rmi(reg_engine, f"{repo}:v1", f"{repo}:v2", f"{repo}@{digest}")
    res = pair.same("pull", f"{repo}:v1", prep=prep)
    assert res.stdout.startswith(b"v1: Pulling from bb\n")
    assert res.stdout.endswith(
        f"Status: Downloaded newer image for {repo}:v1\n{repo}:v1\n".encode()
    )
    up = pair.same("pull", f"{repo}:v1")
    assert b"Status: Image is up to date" in up.stdout
    assert pair.same("pull", "-q", f"{repo}:v1", prep=prep).stdout == f"{repo}:v1\n".encode()
    pair.same("pull", f"{repo}@{digest}", prep=prep)
    pair.same("pull", f"{repo}:v1@{digest}")
    pair.same("pull", "-a", repo, prep=prep)
    assert pair.same("pull", repo).returncode == 1  # "Using default tag", then no latest
    for bad in (
        ("a:b:c",),
        ("UPPER/x",),
        ("-a", f"{repo}:v1"),
        ("--platform", "bogus", f"{repo}:v1"),
    ):
        assert pair.same("pull", *bad).returncode == 1
    assert pair.same("pull", "127.0.0.1:1/nothing:here").returncode == 1


def test_pull_of_many_layers_plain_and_on_a_terminal(pair, reg_engine, registry, workdir, tmp_path):
    ref = f"{registry.host}/layers:v1"
    make_layered_image(reg_engine, workdir, ref, [300_000, 600_000, 900_000])
    try:
        reg_engine.cli("push", ref, check=True)
        res = pair.same("pull", ref, prep=_rmi(reg_engine, ref), sort_lines=True)
        assert res.stdout.count(b": Pull complete\n") == 3
        # off a terminal: plain lines, no bars, no cursor movement
        assert b"\x1b" not in res.stdout and b"[=" not in res.stdout and b"\r" not in res.stdout
        reg_engine.cli("rmi", ref, check=True)
        code, out = _on_terminal(reg_engine, tmp_path, "pull", ref)
        assert code == 0
        # each layer's line is redrawn in place, not printed line after line
        assert out.count(b"\x1b[2K\r") >= 6 and out.count(b" Pull complete \r") == 3
        assert re.search(rb"Downloading \[=*> *\] +[0-9.]+[kM]B/[0-9.]+[kM]B", out), out[-2000:]
        assert out.endswith(f"{ref}\r\n".encode())
        # run's and create's implicit pull draws the same bars (on stderr, the terminal too)
        reg_engine.cli("rmi", ref, check=True)
        code, out = _on_terminal(reg_engine, tmp_path, "create", ref)
        assert code == 0, out[-2000:]
        reg_engine.cli("rm", out.split()[-1].decode(), check=True)
        assert b"Unable to find image" in out
        assert out.count(b" Pull complete \r") == 3 and b"\x1b[2K\r" in out
        assert re.search(rb"Downloading \[=*> *\]", out), out[-2000:]
    finally:
        reg_engine.cli("rmi", ref)


def _on_terminal(engine, tmp_path, *args: str, typed: bytes = b"") -> tuple[int, bytes]:
    """Run the dockyard CLI on a pty (120 columns), ``typed`` waiting in its input; its exit
    code and what it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    env = dict(engine.env, DOCKER_CONFIG=str(tmp_path / "tty-config"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, on the pty
        try:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
            os.execve(DY_CLI[0], DY_CLI + list(args), env)
        finally:
            os._exit(127)
    out = b""
    if typed:
        os.write(fd, typed)
    try:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out


# -- push -------------------------------------------------------------------------------------


def test_push_output_and_errors(pair, reg_engine, registry, pushed):
    repo = f"{registry.host}/pushme"
    reg_engine.cli("tag", "busybox", f"{repo}:v1", check=True)
    reg_engine.cli("tag", "busybox", f"{repo}:v2", check=True)
    try:
        reg_engine.cli("push", "-a", repo, check=True)  # both sides then see "already exists"
        res = pair.same("push", f"{repo}:v1")
        assert res.stdout.startswith(f"The push refers to repository [{repo}]\n".encode())
        assert b": Layer already exists\n" in res.stdout and b"v1: digest: sha256:" in res.stdout
        pair.same("push", "-a", repo)
        assert pair.same("push", "-q", f"{repo}:v1").stdout == f"{repo}:v1\n".encode()
        assert pair.same("push", repo).returncode == 1  # latest: "tag does not exist"
        assert pair.same("push", f"{registry.host}/none:v1").returncode == 1
        assert pair.same("push", "-a", f"{repo}:v1").returncode == 1
        assert pair.same("push", f"{pushed[0]}@{pushed[1]}").returncode == 1
        # --platform came with API 1.46: the dockyard CLI speaks 1.41 and refuses it, as the
        # docker CLI does at 1.41 (at 1.50, dockyardd's version, it sends the push)
        pinned = {"DOCKER_API_VERSION": "1.41"}
        result = pair.same("push", "--platform", "linux/amd64", repo, env_for=lambda _: pinned)
        assert result.returncode == 1
    finally:
        reg_engine.cli("rmi", f"{repo}:v1", f"{repo}:v2")


# -- login, logout, credentials ---------------------------------------------------------------


def _config(directory: str) -> bytes | None:
    try:
        with open(os.path.join(directory, "config.json"), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def test_login_push_pull_logout_with_htpasswd(pair, configs, reg_engine, auth_registry):
    dirs, seed = configs
    host = auth_registry.host
    ref = f"{host}/private:v1"
    reg_engine.cli("tag", "busybox", ref, check=True)
    try:
        assert pair.same("push", ref).returncode == 1  # no basic auth credentials
        assert pair.same("login", "-u", "user", "-p", "wrong", host).returncode == 1
        assert _config(dirs[0]) is None and _config(dirs[1]) is None  # nothing written
        seed('{"auths": {}, "psFormat": "table {{.ID}}"}')
        assert (
            pair.same("login", "-u", "user", "--password-stdin", host, input=b"wrong\n").returncode
            == 1
        )
        assert _config(dirs[0]) == _config(dirs[1]) == b'{"auths": {}, "psFormat": "table {{.ID}}"}'
        res = pair.same("login", "-u", "user", "--password-stdin", host, input=b"pass\n")
        assert res.stdout == b"Login Succeeded\n" and b"stored unencrypted" in res.stderr
        assert _config(dirs[0]) == _config(dirs[1])
        assert stat.S_IMODE(os.stat(os.path.join(dirs[0], "config.json")).st_mode) == 0o600
        pair.same("login", host)  # "Authenticating with existing credentials..."
        pair.run([DOCKER_CLI], dirs[1], "push", ref)  # both sides then see "already exists"
        pair.same("push", ref)
        pair.same("pull", ref, prep=_rmi(reg_engine, ref))
        pair.same("logout", host)
        assert _config(dirs[0]) == _config(dirs[1])
        assert b"auth" not in _config(dirs[0]).split(b'"auths"')[1].split(b"}")[0]
        assert pair.same("push", ref).returncode == 1
    finally:
        reg_engine.cli("rmi", ref)


def test_login_prompts_on_a_terminal(reg_engine, auth_registry, tmp_path):
    code, out = _on_terminal(
        reg_engine, tmp_path, "login", auth_registry.host, typed=b"user\npass\n"
    )
    assert code == 0, out
    # the typed lines echo before the prompts (they were waiting); the password is read
    # with echo off
    assert b"Username: Password: \r\n" in out
    assert out.endswith(b"Login Succeeded\r\n")
    with open(tmp_path / "tty-config" / "config.json") as f:
        assert json.load(f) == {"auths": {auth_registry.host: {"auth": "dXNlcjpwYXNz"}}}


def test_login_bad_usage(pair):
    assert pair.same("login", "--password-stdin", "x:1", input=b"p").returncode == 1
    assert pair.same("login", "-u", "u", "-p", "x", "--password-stdin", "x:1").returncode == 1
    assert pair.same("login", "x:1").returncode == 1  # stdin is not a terminal
    pair.same("logout", "nowhere.example:5000")


@pytest.fixture
def helper(tmp_path):
    """A ``docker-credential-dyt`` program on a PATH of the test's own; each CLI keeps its
    secrets beside its config dir (``env_for``)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker-credential-dyt"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "store = os.environ['DYT_STORE']\n"
        "action, data = sys.argv[1], sys.stdin.read()\n"
        "with open(store + '.log', 'a') as f:\n"
        "    f.write(action + ' ' + data.strip() + '\\n')\n"
        "creds = json.load(open(store)) if os.path.exists(store) else {}\n"
        "if action == 'get':\n"
        "    if data not in creds:\n"
        "        print('credentials not found in native keychain'); sys.exit(1)\n"
        "    print(json.dumps({'ServerURL': data, 'Username': creds[data][0], 'Secret': creds[data][1]}))\n"
        "elif action == 'store':\n"
        "    c = json.loads(data); creds[c['ServerURL']] = [c['Username'], c['Secret']]\n"
        "    json.dump(creds, open(store, 'w'))\n"
        "elif action == 'erase':\n"
        "    creds.pop(data, None); json.dump(creds, open(store, 'w'))\n"
    )
    script.chmod(0o755)
    path = f"{bindir}:{os.environ['PATH']}"

    def env_for(config: str) -> dict[str, str]:
        return {"PATH": path, "DYT_STORE": config + ".store"}

    return env_for


def _log(config: str) -> list[str]:
    with open(config + ".store.log") as f:
        return f.read().splitlines()


def test_credentials_through_a_helper(pair, configs, reg_engine, auth_registry, helper):
    dirs, seed = configs
    host = auth_registry.host
    ref = f"{host}/helped:v1"
    reg_engine.cli("tag", "busybox", ref, check=True)
    try:
        seed('{"credsStore": "dyt"}')
        res = pair.same(
            "login", "-u", "user", "--password-stdin", host, input=b"pass\n", env_for=helper
        )
        assert b"unencrypted" not in res.stderr
        assert _config(dirs[0]) == _config(dirs[1])
        assert json.loads(_config(dirs[0]))["auths"] == {host: {}}
        assert _log(dirs[0]) == _log(dirs[1])
        pair.run([DOCKER_CLI], dirs[1], "push", ref, env=helper(dirs[1]))
        pair.same("push", ref, env_for=helper)
        pair.same("logout", host, env_for=helper)
        assert _log(dirs[0])[-4:] == _log(dirs[1])[-4:]
        assert _log(dirs[0])[-4:] == [
            f"erase {host}",
            f"erase {host}",
            f"erase http://{host}",
            f"erase https://{host}",
        ]
        seed(json.dumps({"credsStore": "absent", "credHelpers": {host: "dyt"}}))
        for d in dirs:
            with open(d + ".store", "w") as f:
                json.dump({host: ["user", "pass"]}, f)
        pair.same("pull", ref, prep=_rmi(reg_engine, ref), env_for=helper)
    finally:
        reg_engine.cli("rmi", ref)


# -- search -----------------------------------------------------------------------------------


def test_search_table_and_options(pair, search_index):
    term = f"{search_index.host}/busybox"
    res = pair.same("search", term)
    assert res.stdout.splitlines()[0].split() == [b"NAME", b"DESCRIPTION", b"STARS", b"OFFICIAL"]
    pair.same("search", "--no-trunc", term)
    pair.same("search", "--limit", "2", term)
    pair.same("search", "--filter", "is-official=true", term)
    pair.same("search", "--filter", "stars=10", "--format", "{{.Name}}: {{.StarCount}}", term)
    pair.same("search", "--format", "{{json .}}", term)
    assert pair.same("search", "--limit", "200", term).returncode == 1
    assert pair.same("search", "--filter", "foo=1", term).returncode == 1
    assert pair.same("search", "127.0.0.1:1/busybox").returncode == 1


# -- run and create pull what is missing ------------------------------------------------------


def test_run_and_create_pull_a_missing_image(pair, reg_engine, pushed):
    repo, digest = pushed
    prep = _rmi(reg_engine, f"{repo}:v1", f"{repo}@{digest}")
    res = pair.same("run", "--rm", *NET, f"{repo}:v1", "echo", "hi", prep=prep)
    assert res.stdout == b"hi\n"
    assert res.stderr.startswith(
        f"Unable to find image '{repo}:v1' locally\nv1: Pulling from bb\n".encode()
    )
    assert pair.same("run", "--rm", "-q", *NET, f"{repo}:v1", "echo", "hi", prep=prep).stderr == b""
    pair.same("run", "--rm", "--pull", "always", *NET, f"{repo}:v1", "true")
    assert pair.same("run", "--rm", *NET, f"{repo}:nope", "true").returncode == 125
    assert (
        pair.same("run", "--rm", "--pull", "never", *NET, f"{repo}:nope", "true").returncode == 125
    )
    assert pair.same("run", "--rm", "--pull", "bogus", *NET, f"{repo}:v1").returncode == 125
    assert pair.same("run", "--rm", *NET, "a:b:c").returncode == 125
    assert pair.same("create", *NET, "a:b:c").returncode == 1
    zero = "sha256:" + "0" * 64
    assert pair.same("run", "--rm", *NET, zero).returncode == 125  # an id is never pulled
    made = []
    try:
        for program, config in ((DY_CLI, pair.dirs[0]), ([DOCKER_CLI], pair.dirs[1])):
            prep()
            res = pair.run(program, config, "create", *NET, f"{repo}@{digest}")
            assert res.returncode == 0, res.stderr
            made.append(res.stdout.decode().strip())
            assert res.stderr.startswith(
                f"Unable to find image '{repo}@{digest}' locally\n".encode()
            )
    finally:
        if made:
            reg_engine.cli("rm", "-f", *made)


def test_images_digests_column(pair, reg_engine, pushed):
    repo, _ = pushed
    reg_engine.cli("pull", f"{repo}:v1", check=True)
    res = pair.same("images", "--digests", repo)
    assert res.stdout.splitlines()[0].split()[:3] == [b"REPOSITORY", b"TAG", b"DIGEST"]
    assert b"sha256:" in res.stdout


# -- a 401 from the engine: log in on the terminal, then retry --------------------------------


class FakeEngine:
    """An engine on a unix socket that refuses pulls, pushes and searches without
    credentials (401) and otherwise answers one progress line (or one search result); it
    records the ``X-Registry-Auth`` it got.
    Only the CLI's side of the exchange is under test here."""

    def __init__(self, path: str) -> None:
        import socketserver

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Api-Version", "1.41")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                header = self.headers.get("X-Registry-Auth", "")
                seen.append(header)
                if header in ("", "e30="):
                    self._answer(401, b'{"message":"unauthorized: authentication required"}')
                    return False
                return True

            def do_GET(self) -> None:
                if "/images/search" not in self.path:
                    self._answer(200, b"OK")
                elif self._authorized():
                    self._answer(200, json.dumps([{"name": "r", "description": "found"}]).encode())

            do_HEAD = do_GET

            def do_POST(self) -> None:
                if self._authorized():
                    self._answer(200, b'{"status":"Status: Downloaded newer image for r:1"}\n')

            def log_message(self, *args) -> None:
                pass

            def address_string(self) -> str:
                return "unix"

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.host = f"unix://{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_pull_asks_for_credentials_after_a_401(tmp_path):
    import base64
    from types import SimpleNamespace

    engine = FakeEngine(str(tmp_path / "fake.sock"))
    try:
        fake = SimpleNamespace(env=dict(os.environ, DOCKER_HOST=engine.host))
        code, out = _on_terminal(fake, tmp_path, "pull", "reg.example:5000/r:1", typed=b"u\npw\n")
        assert code == 0, out
        assert b"\r\nLogin prior to pull:\r\n" in out and b"Username: Password: " in out
        assert out.endswith(b"Status: Downloaded newer image for r:1\r\nreg.example:5000/r:1\r\n")
        assert engine.seen[0] == "e30="
        assert json.loads(base64.urlsafe_b64decode(engine.seen[1])) == {
            "username": "u",
            "password": "pw",
            "serveraddress": "reg.example:5000",
        }
        # off a terminal the daemon's answer is the error, as it was
        res = subprocess.run(
            DY_CLI + ["pull", "reg.example:5000/r:1"],
            env=dict(fake.env, DOCKER_CONFIG=str(tmp_path / "c")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        assert (res.returncode, res.stderr) == (
            1,
            b"Error response from daemon: unauthorized: authentication required\n",
        )
    finally:
        engine.stop()


@pytest.mark.parametrize(
    ("args", "action", "tail"),
    [
        (("push", "reg.example:5000/r:1"), "push", b"Downloaded newer image for r:1\r\n"),
        (("search", "reg.example:5000/r"), "search", b"found"),
    ],
)
def test_push_and_search_ask_for_credentials_after_a_401(tmp_path, args, action, tail):
    import base64
    from types import SimpleNamespace

    engine = FakeEngine(str(tmp_path / "fake.sock"))
    try:
        fake = SimpleNamespace(env=dict(os.environ, DOCKER_HOST=engine.host))
        code, out = _on_terminal(fake, tmp_path, *args, typed=b"u\npw\n")
        assert code == 0, out
        assert f"\r\nLogin prior to {action}:\r\n".encode() in out, out
        assert tail in out, out
        assert engine.seen[0] == "e30="
        assert json.loads(base64.urlsafe_b64decode(engine.seen[1]))["username"] == "u"
    finally:
        engine.stop()


# -- the official docker CLI: dockyardd answers as dockerd does -------------------------------


def test_docker_cli_output_on_dockyardd_is_dockerd_s(
    daemon, dockerd, registry, auth_registry, search_index, workdir, tmp_path
):
    """Each command run by the docker CLI against dockerd and against dockyardd, both engines
    in the same state and the registry the same: the same exit code, stdout and stderr (lines
    sorted where downloads run concurrently)."""
    ref = f"{registry.host}/across:v1"
    make_layered_image(dockerd, workdir, ref, [200_000, 400_000])
    dockerd.cli("push", ref, check=True)
    daemon.cli("pull", ref, check=True)  # the same image, only under this tag, on both
    made = [ref]

    def rmi(engine) -> None:
        engine.cli("rmi", ref)

    def both(*args: str, input: bytes | None = None, prep=None, sort_lines=False) -> bytes:
        outs = []
        for engine in (dockerd, daemon):
            if prep:
                prep(engine)
            config = str(tmp_path / f"config-{len(outs)}")
            env = dict(engine.env, DOCKER_CONFIG=config)
            res = subprocess.run(
                [DOCKER_CLI, *args], env=env, input=input, capture_output=True, timeout=180
            )
            out = [res.returncode]
            for data in (res.stdout, res.stderr):
                data = data.replace(config.encode(), b"<config>")
                if sort_lines:
                    data = b"\n".join(
                        sorted(
                            line
                            for line in data.splitlines()
                            if not line.endswith((b": Waiting", b": Verifying Checksum"))
                        )
                    )
                out.append(data)
            outs.append(out)
        assert outs[1] == outs[0], args
        return outs[0][1]

    try:
        pulled = both("pull", ref, prep=rmi, sort_lines=True)
        assert pulled.count(b": Pull complete") == 2 and ref.encode() in pulled.splitlines()
        assert b"Image is up to date" in both("pull", ref)
        assert both("pull", "-q", ref, prep=rmi) == f"{ref}\n".encode()
        assert b"Layer already exists" in both("push", ref, sort_lines=True)
        both("push", f"{registry.host}/across:nope")  # "tag does not exist: ..."
        both("push", f"{registry.host}/across")  # latest is not there either
        both("push", f"{registry.host}/nothing-here:v1")  # "An image does not exist locally"
        assert b"v1: digest: sha256:" in both(
            "push", "-a", f"{registry.host}/across", sort_lines=True
        )
        both("pull", f"{registry.host}/across:nope")
        both("pull", "a:b:c")
        both("pull", "127.0.0.1:1/nothing:here")
        # run's implicit pull of an image both engines hold under another name
        runnable = f"{registry.host}/across-bb:v1"
        dockerd.cli("tag", "busybox", runnable, check=True)
        dockerd.cli("push", runnable, check=True)
        daemon.cli("pull", runnable, check=True)
        daemon.cli("tag", runnable, "across-keep:v1", check=True)  # as dockerd's busybox

        def rmi_runnable(engine) -> None:
            engine.cli("rmi", runnable)

        ran = both("run", "--rm", *NET, runnable, "echo", "hi", prep=rmi_runnable)
        assert ran == b"hi\n"
        # a repository known only by digest: "no tags to push for ..."
        dig = f"{registry.host}/across-dig"
        dockerd.cli("tag", "busybox", f"{dig}:v1", check=True)
        out = dockerd.cli("push", f"{dig}:v1", check=True).stdout.decode()
        digest = out.split("digest: ")[1].split()[0]
        dockerd.cli("rmi", f"{dig}:v1", check=True)
        made.append(f"{dig}@{digest}")
        both("pull", f"{dig}@{digest}")
        both("push", "-a", dig)
        assert b"no tags to push for " in daemon.cli("push", "-a", dig).stderr
        both("search", f"{search_index.host}/busybox")
        both("search", "--limit", "1", "--no-trunc", f"{search_index.host}/busybox")
        both("logout", registry.host)
        both("login", "-u", "u", "--password-stdin", registry.host, input=b"p\n")
        private = f"{auth_registry.host}/private:nope"
        both("pull", private)  # no basic auth credentials
        both("login", "-u", "user", "--password-stdin", auth_registry.host, input=b"wrong\n")
        both("login", "-u", "user", "--password-stdin", auth_registry.host, input=b"pass\n")
        both("pull", private)  # logged in: manifest unknown
        both("logout", auth_registry.host)
    finally:
        for engine in (dockerd, daemon):
            engine.cli("rmi", *made, f"{registry.host}/across-bb:v1")
        daemon.cli("rmi", "across-keep:v1")
