"""``docker cp -a`` (copyUIDGID) takes the container's ``User`` from the container's own
/etc/passwd and /etc/group, resolved inside its root: a symlinked ``/etc`` (or
``/etc/passwd``) is followed as the container would follow it, never on the host.

dockerd 20.10 (the reference here) looks the user up in the *host's* passwd
(moby daemon/archive_tarcopyoptions_unix.go calls idtools.LookupUser), so there is no
side-by-side comparison: the container's view is the spec, as later moby versions do."""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest
from engines import api_request

PASSWD = b"root:x:0:0:root:/:/bin/sh\napp:x:1234:1235::/:/bin/sh\n"
GROUP = b"root:x:0:\napp:x:1235:\n"


def _tar(entries: list[tuple[str, bytes | str | None]]) -> bytes:
    """``(name, data)`` files, ``(name, "->target")`` symlinks, ``(name, None)`` dirs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data.removeprefix("->")
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _owner_after_cp(daemon, docker, rootfs: bytes) -> tuple[int, int]:
    """Import ``rootfs`` with ``USER app``, ``cp -a`` a file into /target of a container
    of it, and read back the owner the copy gave the file."""
    tag = f"dyt-cpowner-{uuid.uuid4().hex[:8]}"
    docker("import", "--change", "USER app", "-", f"{tag}:1", input=rootfs, check=True)
    try:
        docker("create", "--name", tag, f"{tag}:1", "true", check=True)
        status, body = api_request(
            daemon,
            "PUT",
            f"/containers/{tag}/archive?path=/target&copyUIDGID=1",
            body=_tar([("f", b"data\n")]),
            headers={"Content-Type": "application/x-tar"},
        )
        assert status == 200, body
        status, body = api_request(daemon, "GET", f"/containers/{tag}/archive?path=/target/f")
        assert status == 200, body
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            member = tar.getmember("f")
        return member.uid, member.gid
    finally:
        docker("rm", "-f", tag)
        docker("rmi", f"{tag}:1")


def test_cp_a_follows_etc_symlink_inside_the_container(daemon, docker, tmp_path):
    # The host holds the same path the container's /etc points at, with other ids: a
    # host-side open of <root>/etc/passwd follows the absolute link to the host's file.
    rel = str(tmp_path).lstrip("/")
    host_etc = tmp_path / "etc"
    host_etc.mkdir()
    (host_etc / "passwd").write_bytes(b"app:x:4242:4243::/:/bin/sh\n")
    (host_etc / "group").write_bytes(b"app:x:4243:\n")
    rootfs = _tar(
        [
            ("etc", f"->/{rel}/etc"),
            *[("/".join(rel.split("/")[: i + 1]), None) for i in range(rel.count("/") + 1)],
            (f"{rel}/etc", None),
            (f"{rel}/etc/passwd", PASSWD),
            (f"{rel}/etc/group", GROUP),
            ("target", None),
        ]
    )
    assert _owner_after_cp(daemon, docker, rootfs) == (1234, 1235)


@pytest.mark.parametrize("link", ["passwd.real", "/etc/passwd.real", "../etc/passwd.real"])
def test_cp_a_follows_passwd_symlink_inside_the_container(daemon, docker, link):
    rootfs = _tar(
        [
            ("etc", None),
            ("etc/passwd.real", PASSWD),
            ("etc/passwd", f"->{link}"),
            ("etc/group", GROUP),
            ("target", None),
        ]
    )
    assert _owner_after_cp(daemon, docker, rootfs) == (1234, 1235)
