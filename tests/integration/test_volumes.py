"""Volumes, bind mounts and tmpfs mounts through the official docker CLI and docker-py."""

from __future__ import annotations

import io
import json
import os
import signal
import tarfile
import time

import pytest
from engines import api_request, make_busybox, start_dockyardd


def _inspect(docker, *args):
    if args[0] == "volume":
        return json.loads(docker(*args, check=True).stdout)
    return json.loads(docker("inspect", *args, check=True).stdout)


@pytest.fixture
def volume(docker):
    names: list[str] = []

    def make(name: str) -> str:
        names.append(name)
        return name

    yield make
    for name in names:
        docker("volume", "rm", "-f", name)


def test_named_volume_outlives_containers_and_is_protected(docker, volume):
    name = volume("dyt-data")
    assert docker("volume", "create", name, check=True).stdout == f"{name}\n".encode()
    docker(
        "run",
        "--rm",
        "-v",
        f"{name}:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
        check=True,
    )
    assert (
        docker("run", "--rm", "-v", f"{name}:/data", "busybox", "cat", "/data/f").stdout
        == b"kept\n"
    )
    ro = docker("run", "--rm", "-v", f"{name}:/data:ro", "busybox", "sh", "-c", "echo x > /data/g")
    assert ro.returncode == 1 and b"Read-only file system" in ro.stderr
    docker(
        "run",
        "-d",
        "--name",
        "voluser",
        "-v",
        f"{name}:/data",
        "busybox",
        "sleep",
        "300",
        check=True,
    )
    try:
        busy = docker("volume", "rm", name)
        cid = _inspect(docker, "voluser")[0]["Id"]
        assert busy.returncode == 1 and f"volume is in use - [{cid}]".encode() in busy.stderr
        mounts = _inspect(docker, "voluser")[0]["Mounts"]
        assert mounts == [
            {
                "Type": "volume",
                "Name": name,
                "Source": mounts[0]["Source"],
                "Destination": "/data",
                "Driver": "local",
                "Mode": "z",
                "RW": True,
                "Propagation": "",
            }
        ]
        assert os.path.isfile(os.path.join(mounts[0]["Source"], "f"))
        # docker cp reads and writes the volume's data, not the container layer's
        assert docker("exec", "voluser", "cat", "/data/f").stdout == b"kept\n"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("copied")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"cp\n"))
        docker("cp", "-", "voluser:/data", input=buf.getvalue(), check=True)
        assert open(os.path.join(mounts[0]["Source"], "copied"), "rb").read() == b"cp\n"
        out = docker("cp", "voluser:/data/f", "-", check=True).stdout
        assert tarfile.open(fileobj=io.BytesIO(out)).extractfile("f").read() == b"kept\n"
        with open("/proc/self/mountinfo") as f:
            assert mounts[0]["Source"] not in f.read()  # cp's binds are gone again
        ls = docker("ps", "--filter", f"volume={name}", "--format", "{{.Names}}").stdout
        assert ls == b"voluser\n"
    finally:
        docker("rm", "-f", "voluser")
    assert docker("volume", "ls", "-q", "--filter", f"name={name}").stdout == f"{name}\n".encode()


def test_bind_mounts(docker, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "host.txt").write_text("from host\n")
    out = docker(
        "run", "--rm", "-v", f"{src}:/h:ro", "busybox", "sh", "-c", "cat /h/host.txt; touch /h/x"
    )
    assert out.stdout == b"from host\n" and b"Read-only file system" in out.stderr
    docker(
        "run",
        "--rm",
        "--mount",
        f"type=bind,source={src},target=/h",
        "busybox",
        "sh",
        "-c",
        "echo back > /h/back",
        check=True,
    )
    assert (src / "back").read_text() == "back\n"
    # -v makes a missing source directory; --mount refuses it
    made = tmp_path / "made" / "here"
    docker("run", "--rm", "-v", f"{made}:/m", "busybox", "true", check=True)
    assert made.is_dir()
    missing = docker(
        "run", "--rm", "--mount", f"type=bind,source={tmp_path}/nope,target=/m", "busybox", "true"
    )
    assert missing.returncode == 125 and b"bind source path does not exist" in missing.stderr


def test_tmpfs_is_empty_and_sized(docker):
    out = (
        docker(
            "run",
            "--rm",
            "--tmpfs",
            "/t:size=2m,mode=1777",
            "busybox",
            "sh",
            "-c",
            "ls -A /t | wc -l; df -k /t | tail -1; stat -c %a /t",
            check=True,
        )
        .stdout.decode()
        .split("\n")
    )
    assert out[0].strip() == "0" and out[1].split()[1] == "2048" and out[2] == "1777"
    out = (
        docker(
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/m,tmpfs-size=1048576",
            "busybox",
            "df",
            "-k",
            "/m",
            check=True,
        )
        .stdout.decode()
        .splitlines()
    )
    assert out[-1].split()[1] == "1024"


def test_copy_up_anonymous_volumes_and_prune(docker, volume):
    docker(
        "run",
        "--name",
        "vbase",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /srv/app && echo img > /srv/app/x && chown 1000:2000 /srv/app",
        check=True,
    )
    try:
        docker("commit", "-c", "VOLUME /srv/app", "vbase", "dyt/volimg:1", check=True)
    finally:
        docker("rm", "vbase")
    fresh = volume("dyt-fresh")
    try:
        # copy-up: a new named volume gets the image's content, owner and mode
        out = docker(
            "run",
            "--rm",
            "-v",
            f"{fresh}:/srv/app",
            "dyt/volimg:1",
            "sh",
            "-c",
            "cat /srv/app/x; stat -c %u:%g /srv/app",
            check=True,
        )
        assert out.stdout == b"img\n1000:2000\n"
        nocopy = volume("dyt-nocopy")
        out = docker(
            "run",
            "--rm",
            "--mount",
            f"type=volume,src={nocopy},dst=/srv/app,volume-nocopy",
            "dyt/volimg:1",
            "ls",
            "-A",
            "/srv/app",
            check=True,
        )
        assert out.stdout == b""
        # the image's VOLUME becomes an anonymous volume, kept until rm -v
        docker(
            "run",
            "--name",
            "anon",
            "dyt/volimg:1",
            "sh",
            "-c",
            "echo more > /srv/app/y",
            check=True,
        )
        mounts = _inspect(docker, "anon")[0]["Mounts"]
        anon = mounts[0]["Name"]
        assert len(anon) == 64 and mounts[0]["Destination"] == "/srv/app"
        labels = _inspect(docker, "volume", "inspect", anon)[0]["Labels"]
        assert labels == {"com.docker.volume.anonymous": ""}
        # prune keeps volumes in use (even by a stopped container); at API 1.50 (the docker
        # CLI's version here) unused named ones go only with --all (1.42's change)
        keep = volume("dyt-keep")
        docker("volume", "create", keep, check=True)
        pruned = docker("volume", "prune", "-f", check=True).stdout.decode()
        assert keep not in pruned
        pruned = docker("volume", "prune", "-a", "-f", check=True).stdout.decode()
        names = docker("volume", "ls", "-q", check=True).stdout.decode().split()
        assert anon in names and anon not in pruned
        assert keep not in names and fresh not in names and keep in pruned
        docker("rm", "-v", "anon", check=True)
        assert anon not in docker("volume", "ls", "-q").stdout.decode().split()
        # --rm removes the anonymous volumes too
        docker("run", "--rm", "dyt/volimg:1", "true", check=True)
        docker("run", "--name", "left", "-v", "/scratch", "busybox", "true", check=True)
        left = _inspect(docker, "left")[0]["Mounts"][0]["Name"]
        docker("rm", "left", check=True)  # without -v: the volume stays, unused
        pruned = docker("volume", "prune", "-f", check=True).stdout.decode()
        assert left in pruned and "Total reclaimed space" in pruned
        remaining = docker("volume", "ls", "-q").stdout.decode().split()
        assert left not in remaining
    finally:
        docker("rm", "-f", "anon", "left")
        docker("rmi", "dyt/volimg:1")


def test_volumes_from_shares(docker, volume):
    name = volume("dyt-shared")
    docker(
        "run",
        "-d",
        "--name",
        "vfsrc",
        "-v",
        f"{name}:/shared",
        "busybox",
        "sh",
        "-c",
        "echo s > /shared/s; sleep 300",
        check=True,
    )
    try:
        out = docker(
            "run",
            "--rm",
            "--volumes-from",
            "vfsrc:ro",
            "busybox",
            "sh",
            "-c",
            "cat /shared/s; touch /shared/t",
        )
        assert out.stdout == b"s\n" and b"Read-only file system" in out.stderr
        docker(
            "run", "--rm", "--volumes-from", "vfsrc", "busybox", "touch", "/shared/t", check=True
        )
        assert docker("exec", "vfsrc", "ls", "/shared").stdout.split() == [b"s", b"t"]
    finally:
        docker("rm", "-f", "vfsrc")


def test_local_driver_tmpfs_volume(docker, volume, daemon):
    name = volume("dyt-tv")
    docker(
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=3m",
        name,
        check=True,
    )
    info = _inspect(docker, "volume", "inspect", name)[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=3m"}
    out = docker("run", "--rm", "-v", f"{name}:/t", "busybox", "df", "-k", "/t", check=True)
    assert out.stdout.decode().splitlines()[-1].split()[1] == "3072"
    with open("/proc/self/mountinfo") as f:
        assert info["Mountpoint"] not in f.read()  # unmounted once unused
    bad = docker("volume", "create", "-o", "bogus=1", "dyt-bad")
    assert bad.returncode == 1 and b'invalid option key: "bogus"' in bad.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["-v", "a:b:c:d"], b"invalid volume specification: 'a:b:c:d'"),
        (["-v", "vol:rel"], b"mount path must be absolute"),
        (["-v", "/tmp:/"], b"destination can't be '/'"),
        (["-v", "/tmp:/x:bogus"], b"invalid mode: bogus"),
        (["-v", "bad/name:/x"], b"includes invalid characters for a local volume name"),
        (["--mount", "type=bind,source=relative,target=/x"], b"mount path must be absolute"),
        (["--mount", "type=tmpfs,source=/tmp,target=/x"], b"field Source must not be specified"),
        (["--mount", "type=volume,target=/"], b"destination can't be '/'"),
        (["-v", "/tmp:/d", "-v", "/var:/d"], b"Duplicate mount point: /d"),
        (["--tmpfs", "/t:bogus"], b"invalid tmpfs option"),
        (["--volumes-from", "nosuchcontainer"], b"No such container: nosuchcontainer"),
    ],
)
def test_bad_mount_specs_are_400(docker, args, message):
    before = set(docker("volume", "ls", "-q").stdout.split())
    out = docker("create", *args, "busybox", "true")
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert set(docker("volume", "ls", "-q").stdout.split()) == before  # nothing left made


def test_bad_volume_api_input(daemon):
    import urllib.parse

    for body, message in (
        (b"{", "invalid JSON"),
        (b'{"Name": "a/b"}', "invalid characters"),
        (b'{"Name": ".."}', "invalid characters"),
        (b'{"Labels": "x"}', "Labels must be"),
        (b'{"Bogus": 1}', "unknown field"),
    ):
        status, data = api_request(daemon, "POST", "/volumes/create", body)
        assert status == 400 and message in json.loads(data)["message"], (body, data)
    status, data = api_request(daemon, "GET", "/volumes/nosuch")
    assert status == 404 and json.loads(data)["message"] == "get nosuch: no such volume"
    status, data = api_request(
        daemon, "GET", "/volumes?filters=" + urllib.parse.quote('{"bogus":["x"]}')
    )
    assert status == 400


def _host_mount_points() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def test_symlinked_mount_target_stays_inside(docker, tmp_path, volume):
    """An image whose mount target is a symlink to /etc or / cannot put a mount on the host."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        for name, dest in (("data", "/etc"), ("up", "../../../../../../../../"), ("etc", "")):
            if name == "etc":
                d = tarfile.TarInfo("etc")
                d.type, d.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(d)
                continue
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, dest
            tar.addfile(link)
    docker("import", "-", "dyt/evil-mounts:1", input=buf.getvalue(), check=True)
    src = tmp_path / "bind"
    src.mkdir()
    name = volume("dyt-evil")
    try:
        before = _host_mount_points()
        out = docker(
            "run",
            "--rm",
            "-v",
            f"{src}:/data",
            "-v",
            f"{name}:/up/etc/dyt-evil",
            "dyt/evil-mounts:1",
            "/bin/busybox",
            "sh",
            "-c",
            "echo x > /etc/inside && /bin/busybox ls /etc",
            check=True,
        )
        assert b"inside" in out.stdout
        assert (src / "inside").read_text() == "x\n"  # /data → /etc resolved in the rootfs
        assert not os.path.exists("/etc/inside") and not os.path.exists("/etc/dyt-evil")
        # no mount landed on the host's /etc or / (other daemons of the session mount and
        # unmount meanwhile, so the check is on where mounts are, not how many there are)
        added = _host_mount_points() - before
        assert not [m for m in added if m == "/" or m.startswith("/etc") or "dyt-evil" in m]
    finally:
        docker("rmi", "dyt/evil-mounts:1")


def test_docker_py_volumes(api):
    v = api.volumes.create("dyt-py", labels={"dyt-py": "b"})
    try:
        assert v.attrs["Mountpoint"].endswith("/volumes/dyt-py/_data")
        assert api.volumes.get("dyt-py").attrs["Labels"] == {"dyt-py": "b"}
        out = api.containers.run(
            "busybox",
            "sh -c 'echo py > /v/f; cat /v/f'",
            remove=True,
            volumes={"dyt-py": {"bind": "/v", "mode": "rw"}},
        )
        assert out == b"py\n"
        assert [x.name for x in api.volumes.list(filters={"label": "dyt-py=b"})] == ["dyt-py"]
        res = api.volumes.prune(filters={"all": "true", "label": "dyt-py=b"})
        assert res["VolumesDeleted"] == ["dyt-py"], res
    finally:
        try:
            api.volumes.get("dyt-py").remove(force=True)
        except Exception:
            pass


def test_volume_data_survives_daemon_kill_9(workdir):
    root = os.path.join(workdir, "vol-live")
    engine = start_dockyardd(root)
    try:
        make_busybox(engine)
        engine.cli(
            "run",
            "-d",
            "--name",
            "writer",
            "-v",
            "persist:/p",
            "busybox",
            "sh",
            "-c",
            "echo before > /p/f; sleep 600",
            check=True,
        )
        time.sleep(0.3)
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        engine = start_dockyardd(root)
        assert engine.cli("exec", "writer", "cat", "/p/f").stdout == b"before\n"
        busy = engine.cli("volume", "rm", "persist")
        assert busy.returncode == 1 and b"volume is in use" in busy.stderr
        engine.cli("rm", "-f", "writer", check=True)
        out = engine.cli("run", "--rm", "-v", "persist:/p", "busybox", "cat", "/p/f", check=True)
        assert out.stdout == b"before\n"
    finally:
        engine.stop()
