"""``ADD <url>`` downloads against a local HTTP server on 127.0.0.1: naming, mode, mtime,
redirects, the size cap, checksums, time-outs and unreachable URLs."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import os
import socket
import threading
import time

import pytest

from dockyard.build import fetch
from dockyard.errors import InvalidParameter

BODY = b"downloaded content\n" * 100
MTIME = "Wed, 21 Oct 2015 07:28:00 GMT"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/files/final.bin")
            self.end_headers()
            return
        if self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"12")
            self.wfile.flush()
            time.sleep(3)
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Last-Modified", MTIME)
        if self.path.startswith("/dir/"):
            self.send_header("Content-Disposition", 'attachment; filename="from-header.txt"')
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _get(url, tmp_path, **kw):
    return asyncio.run(fetch.download(url, str(tmp_path), **kw))


def test_named_from_the_url_with_mode_and_mtime(server, tmp_path):
    got = _get(server + "/files/pkg.tar.gz?x=1", tmp_path)
    assert got.name == "pkg.tar.gz"
    assert got.digest == "sha256:" + hashlib.sha256(BODY).hexdigest()
    st = os.stat(got.path)
    assert st.st_mode & 0o7777 == 0o600
    assert st.st_mtime == 1445412480
    with open(got.path, "rb") as f:
        assert f.read() == BODY


def test_redirect_keeps_the_requested_name_and_disposition_names_a_bare_path(server, tmp_path):
    (tmp_path / "a").mkdir()
    assert _get(server + "/redirect", tmp_path / "a").name == "redirect"
    (tmp_path / "b").mkdir()
    assert _get(server + "/dir/", tmp_path / "b").name == "from-header.txt"
    (tmp_path / "c").mkdir()
    assert _get(server + "/", tmp_path / "c").name == ""


def test_checksum(server, tmp_path):
    good = "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert _get(server + "/f", tmp_path, checksum=good).digest == good
    (tmp_path / "b").mkdir()
    bad = "sha256:" + "0" * 64
    with pytest.raises(InvalidParameter) as exc:
        _get(server + "/f", tmp_path / "b", checksum=bad)
    assert f"checksum mismatch: expected {bad}, got {good}" in str(exc.value)
    with pytest.raises(InvalidParameter, match="invalid checksum 'md5:x'"):
        fetch.check_checksum("md5:x")


def test_size_cap_status_and_scheme(server, tmp_path):
    with pytest.raises(InvalidParameter, match="larger than 100 bytes"):
        _get(server + "/f", tmp_path, max_bytes=100)
    (tmp_path / "b").mkdir()
    with pytest.raises(InvalidParameter, match=r"failed to GET .*/missing with status 404"):
        _get(server + "/missing", tmp_path / "b")
    with pytest.raises(InvalidParameter, match="only http and https"):
        _get("ftp://127.0.0.1/x", tmp_path)


def test_unreachable_and_stalled_within_the_timeout(server, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file"
    start = time.monotonic()
    with pytest.raises(InvalidParameter, match=f"ADD {url}: cannot download it"):
        _get(url, tmp_path, connect_timeout=2)
    assert time.monotonic() - start < 2
    (tmp_path / "b").mkdir()
    start = time.monotonic()
    with pytest.raises(InvalidParameter, match=r"ADD .*/stall: no answer within 2s"):
        _get(server + "/stall", tmp_path / "b", connect_timeout=2, read_timeout=1)
    assert time.monotonic() - start < 2.5


def test_proxy_from_the_environment_and_no_netrc(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "localhost,.internal")
    assert fetch._proxy("http://files.example/x") == "http://127.0.0.1:9"
    assert fetch._proxy("https://files.example/x") is None
    assert fetch._proxy("http://localhost:8080/x") is None
    assert fetch._proxy("http://a.internal/x") is None
