import gzip
import io
import lzma
import os
import tarfile

import pytest

from dockyard.build.context import open_context
from dockyard.errors import InvalidParameter, NotFound


def tar_bytes(files: dict[str, bytes], compress=None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return compress(raw) if compress else raw


def listing(root):
    out = []
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            out.append(os.path.relpath(os.path.join(top, name), root))
    return sorted(out)


@pytest.mark.parametrize("compress", [None, gzip.compress, lzma.compress])
def test_tar_contexts_plain_and_compressed(tmp_path, compress):
    body = tar_bytes({"Dockerfile": b"FROM busybox\n", "a/b.txt": b"x"}, compress)
    ctx = open_context(io.BytesIO(body), "Dockerfile", str(tmp_path))
    try:
        assert ctx.dockerfile == b"FROM busybox\n"
        assert listing(ctx.root) == ["Dockerfile", "a", "a/b.txt"]
    finally:
        ctx.close()
    assert not os.path.exists(ctx.root)


def test_bare_dockerfile_body(tmp_path):
    ctx = open_context(io.BytesIO(b"FROM busybox\nRUN true\n"), "", str(tmp_path))
    try:
        assert ctx.dockerfile == b"FROM busybox\nRUN true\n"
        assert listing(ctx.root) == []
    finally:
        ctx.close()


def test_dockerignore_applied_and_dockerfile_still_read(tmp_path):
    body = tar_bytes(
        {
            "Dockerfile": b"FROM x\n",
            ".dockerignore": b"Dockerfile\n*.log\nsub\n!sub/keep\n",
            "a.log": b"",
            "b.txt": b"",
            "sub/drop": b"",
            "sub/keep": b"",
        }
    )
    ctx = open_context(io.BytesIO(body), "Dockerfile", str(tmp_path))
    try:
        assert ctx.dockerfile == b"FROM x\n"
        assert listing(ctx.root) == [".dockerignore", "b.txt", "sub", "sub/keep"]
    finally:
        ctx.close()


def test_dockerfile_specific_ignore_file_wins(tmp_path):
    body = tar_bytes(
        {
            "build/app.Dockerfile": b"FROM x\n",
            "build/app.Dockerfile.dockerignore": b"*.md\n",
            ".dockerignore": b"*.txt\n",
            "a.md": b"",
            "a.txt": b"",
        }
    )
    ctx = open_context(io.BytesIO(body), "build/app.Dockerfile", str(tmp_path))
    try:
        assert "a.md" not in listing(ctx.root)
        assert "a.txt" in listing(ctx.root)
    finally:
        ctx.close()


def test_missing_and_outside_dockerfile(tmp_path):
    body = tar_bytes({"other": b""})
    with pytest.raises(NotFound, match="Cannot locate specified Dockerfile: Dockerfile"):
        open_context(io.BytesIO(body), "Dockerfile", str(tmp_path))
    with pytest.raises(InvalidParameter, match="outside the build context"):
        open_context(io.BytesIO(body), "../Dockerfile", str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_lowercase_dockerfile_fallback(tmp_path):
    ctx = open_context(io.BytesIO(tar_bytes({"dockerfile": b"FROM y\n"})), "", str(tmp_path))
    try:
        assert ctx.dockerfile_name == "dockerfile"
    finally:
        ctx.close()


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/../../escape"])
def test_hostile_paths_refused(tmp_path, name):
    body = tar_bytes({"Dockerfile": b"FROM x\n", name: b"x"})
    with pytest.raises(InvalidParameter):
        open_context(io.BytesIO(body), "Dockerfile", str(tmp_path))
    assert not (tmp_path / "escape").exists()


def test_missing_tail_of_the_docker_cli_tolerated_but_not_cut_data(tmp_path):
    body = tar_bytes({"Dockerfile": b"FROM busybox\n", "a": b"x" * 700})
    # What CLI 28 sends with -f outside the context: the last member's padding and the
    # end-of-archive blocks missing.
    cut = body[: 512 + 512 + 512 + 700]
    ctx = open_context(io.BytesIO(cut), "Dockerfile", str(tmp_path))
    try:
        with open(os.path.join(ctx.root, "a"), "rb") as f:
            assert f.read() == b"x" * 700
    finally:
        ctx.close()
    with pytest.raises(InvalidParameter):
        open_context(io.BytesIO(body[: 512 + 512 + 512 + 600]), "Dockerfile", str(tmp_path))
    with pytest.raises(InvalidParameter):
        open_context(io.BytesIO(body[: 512 + 512 + 100]), "Dockerfile", str(tmp_path))
