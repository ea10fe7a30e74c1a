"""``ADD <url>``: the daemon downloads the file, as Debian's dockerd (legacy builder) does,
from an HTTP server on 127.0.0.1 that this module starts: the same file system, config and
history on both engines; then what only dockyardd does (``--checksum``) and the errors."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import time

import pytest
from test_build import _remove_new_images, build, same_build, write  # noqa: F401

FILES: dict[str, bytes] = {}


def _archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("inside.txt")
        info.size = 6
        tf.addfile(info, io.BytesIO(b"inner\n"))
    return gzip.compress(buf.getvalue(), mtime=0)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(301)
            self.send_header("Location", "/files/notes.txt")
            self.end_headers()
            return
        data = FILES.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server():
    FILES.clear()
    FILES.update(
        {"/files/pkg.tar.gz": _archive(), "/files/notes.txt": b"some notes\n", "/": b"index\n"}
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_add_url_same_as_dockerd(dockerd, daemon, ctx, server):
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM busybox\n"
                f"ADD {server}/files/pkg.tar.gz /dl/\n"
                f"ADD {server}/files/notes.txt /named.txt\n"
                f"ADD {server}/redirect /dl/\n"
                f"ADD --chown=3:4 {server}/files/notes.txt /owned/\n"
            )
        },
    )
    same_build(dockerd, daemon, ctx, "dy-build-addurl")
    # Not unpacked, mode 0600, the mtime from Last-Modified, named from the requested URL.
    out = daemon.cli(
        "run", "--rm", "dy-build-addurl", "stat", "-c", "%n %a %u:%g %Y",
        "/dl/pkg.tar.gz", "/named.txt", "/dl/redirect", "/owned/notes.txt",
    )  # fmt: skip
    assert out.stdout.decode().splitlines() == [
        "/dl/pkg.tar.gz 600 0:0 1445412480",
        "/named.txt 600 0:0 1445412480",
        "/dl/redirect 600 0:0 1445412480",
        "/owned/notes.txt 600 3:4 1445412480",
    ]
    assert not [n for n in os.listdir(os.path.join(daemon.root, "data", "tmp")) if "add-url" in n]


def test_checksum_cache_and_errors(daemon, ctx, server):
    notes = FILES["/files/notes.txt"]
    good = "sha256:" + hashlib.sha256(notes).hexdigest()
    url = f"{server}/files/notes.txt"
    write(ctx, {"Dockerfile": f"FROM busybox\nADD --checksum={good} {url} /n.txt\nRUN true\n"})
    first = build(daemon, ctx, "-t", "dy-build-addsum")
    assert first.returncode == 0, first.stderr + first.stdout
    assert daemon.cli("run", "--rm", "dy-build-addsum", "cat", "/n.txt").stdout == notes
    # Unchanged content: cached (the key is the content's digest).
    again = build(daemon, ctx, "-t", "dy-build-addsum")
    assert again.stdout.count(b"Using cache") == 2, again.stdout
    # Changed content: a mismatch naming both digests, then, without the checksum, a
    # re-run of the ADD and of every step after it.
    FILES["/files/notes.txt"] = b"changed notes\n"
    try:
        changed = "sha256:" + hashlib.sha256(FILES["/files/notes.txt"]).hexdigest()
        bad = build(daemon, ctx, "-t", "dy-build-addsum")
        assert bad.returncode != 0
        assert f"checksum mismatch: expected {good}, got {changed}".encode() in bad.stderr
        write(ctx, {"Dockerfile": f"FROM busybox\nADD {url} /n.txt\nRUN true\n"})
        rerun = build(daemon, ctx, "-t", "dy-build-addsum")
        assert rerun.returncode == 0, rerun.stderr
        assert b"Using cache" not in rerun.stdout
        out = daemon.cli("run", "--rm", "dy-build-addsum", "cat", "/n.txt").stdout
        assert out == b"changed notes\n"
    finally:
        FILES["/files/notes.txt"] = notes
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/file.txt"
    for dockerfile, message in (
        (f"FROM busybox\nADD {dead} /\n", f"ADD {dead}: cannot download it"),
        (f"FROM busybox\nADD {server}/nope /\n", f"failed to GET {server}/nope with status 404"),
        (f"FROM busybox\nADD {server}/ /d/\n", f"cannot determine filename from url: {server}/"),
        (
            f"FROM busybox\nADD --checksum=sha256:00 {url} /\n",
            "invalid checksum 'sha256:00'",
        ),
    ):
        write(ctx, {"Dockerfile": dockerfile})
        start = time.monotonic()
        result = build(daemon, ctx, "-t", "dy-build-addbad")
        assert result.returncode != 0
        assert message.encode() in result.stderr, result.stderr
        assert time.monotonic() - start < 30
    daemon.cli("rmi", "dy-build-addsum")
