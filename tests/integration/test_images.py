"""Image commands through the official docker CLI, the dockyard CLI and docker-py."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _ids(docker, *args):
    return docker("images", "-q", "--no-trunc", *args, check=True).stdout.decode().split()


def test_images_table_same_shape_from_both_clis(docker, dockyard):
    # CREATED is relative ("2 seconds ago"): two calls can straddle a step of it, so a
    # difference is looked at again before it counts
    for _ in range(3):
        theirs = docker("images", check=True).stdout.decode().splitlines()
        mine = dockyard("images", check=True).stdout.decode().splitlines()
        if mine == theirs:
            break
    assert theirs[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert mine == theirs
    assert any(line.startswith("busybox ") and " latest " in line for line in theirs)
    fmt = "{{.Repository}}:{{.Tag}} {{.ID}}"
    assert dockyard("images", "--format", fmt).stdout == docker("images", "--format", fmt).stdout


def test_inspect_history_and_format(docker, dockyard):
    data = json.loads(docker("image", "inspect", "busybox", check=True).stdout)
    assert data[0]["RepoTags"] == ["busybox:latest"]
    assert data[0]["Config"]["Cmd"] == ["sh"]
    assert data[0]["RootFS"]["Type"] == "layers" and len(data[0]["RootFS"]["Layers"]) == 1
    # API 1.44/1.45/1.50 dropped VirtualSize, Container, ContainerConfig and Config's
    # container-only keys: the docker CLI (1.50) shows none, the dockyard CLI speaks 1.41
    assert not {"VirtualSize", "Container", "ContainerConfig"} & set(data[0])
    assert "Hostname" not in data[0]["Config"]
    at_1_41 = docker("image", "inspect", "busybox", env={"DOCKER_API_VERSION": "1.41"})
    assert json.loads(dockyard("inspect", "busybox", check=True).stdout) == json.loads(
        at_1_41.stdout
    )
    assert dockyard("image", "inspect", "-f", "{{.Config.Cmd}}", "busybox").stdout == b"[sh]\n"
    hist = docker("history", "busybox", check=True).stdout.decode().splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and "Imported from -" in hist[1]
    assert dockyard("history", "busybox", check=True).stdout.decode().splitlines() == hist
    missing = docker("image", "inspect", "nosuch")
    assert missing.returncode == 1 and b"No such image: nosuch" in missing.stderr
    untyped = dockyard("inspect", "nosuch")
    assert untyped.returncode == 1 and b"Error: No such object: nosuch" in untyped.stderr


def test_tag_untag_and_delete(docker):
    docker("tag", "busybox", "localhost:5999/bb:v1", check=True)
    docker("tag", "busybox", "other/repo", check=True)
    listed = (
        docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.decode().split()
    )
    assert "localhost:5999/bb:v1" in listed and "other/repo:latest" in listed
    image_id = _ids(docker, "busybox")[0]
    # by id, with several repositories: refused unless forced
    conflict = docker("rmi", image_id[7:19])
    assert conflict.returncode == 1
    assert b"image is referenced in multiple repositories" in conflict.stderr
    out = docker("rmi", "localhost:5999/bb:v1", check=True).stdout.decode()
    assert out == "Untagged: localhost:5999/bb:v1\n"
    assert docker("rmi", "other/repo", check=True).stdout == b"Untagged: other/repo:latest\n"
    assert "busybox" in docker("images", "--format", "{{.Repository}}", check=True).stdout.decode()


def test_import_with_changes_and_delete(docker, dockyard):
    body = _tar({"hello.txt": b"hi\n", "etc/os": b"x\n"})
    out = docker(
        "import",
        "-c",
        'CMD ["/bin/hello"]',
        "-c",
        "ENV A=1 B=two",
        "-c",
        "LABEL k=v",
        "-c",
        "WORKDIR /srv",
        "-m",
        "first",
        "-",
        "imp/one:1",
        input=body,
        check=True,
    )
    image_id = out.stdout.decode().strip()
    assert image_id.startswith("sha256:")
    cfg = json.loads(docker("image", "inspect", "imp/one:1", check=True).stdout)[0]
    assert cfg["Id"] == image_id and cfg["Comment"] == "first"
    assert cfg["Config"]["Cmd"] == ["/bin/hello"]
    assert cfg["Config"]["Env"] == ["A=1", "B=two"]
    assert cfg["Config"]["Labels"] == {"k": "v"} and cfg["Config"]["WorkingDir"] == "/srv"
    labelled = docker("images", "--filter", "label=k=v", "--format", "{{.Repository}}", check=True)
    assert labelled.stdout == b"imp/one\n"
    out = dockyard("rmi", "imp/one:1", check=True).stdout.decode().splitlines()
    assert out[0] == "Untagged: imp/one:1" and out[1] == f"Deleted: {image_id}"
    assert image_id not in _ids(docker, "-a")


def test_bad_change_is_400(docker):
    out = docker("import", "-c", "RUN rm -rf /", "-", "imp/bad", input=_tar({"a": b"a"}))
    assert out.returncode == 1 and b"RUN is not a valid change command" in out.stderr


def test_save_load_round_trip(docker, dockyard, workdir):
    docker("tag", "busybox", "round/trip:1", check=True)
    path = os.path.join(workdir, "rt.tar")
    docker("save", "-o", path, "round/trip:1", check=True)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
    assert "oci-layout" in names and manifest[0]["RepoTags"] == ["round/trip:1"]
    assert (
        index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/round/trip:1"
    )
    before = _ids(docker, "round/trip:1")
    docker("rmi", "round/trip:1", check=True)
    out = dockyard("load", "-i", path, check=True).stdout.decode()
    assert out == "Loaded image: round/trip:1\n"
    assert _ids(docker, "round/trip:1") == before
    docker("rmi", "round/trip:1", check=True)


def test_docker_py_images_api(api, workdir):
    image = api.images.get("busybox")
    assert "busybox:latest" in image.tags
    assert image.tag("pyrepo/x", "1")
    assert "pyrepo/x:1" in api.images.get("pyrepo/x:1").tags
    history = image.history()
    assert history[0]["Id"] == image.id
    data = b"".join(api.images.get("pyrepo/x:1").save(named="pyrepo/x:1"))
    api.images.remove("pyrepo/x:1")
    loaded = api.images.load(data)
    assert loaded[0].id == image.id
    listed = api.images.list(name="pyrepo/x")
    assert [i.id for i in listed] == [image.id]
    api.images.remove("pyrepo/x:1")
    with pytest.raises(Exception) as err:
        api.images.get("nosuch:tag")
    assert "No such image: nosuch:tag" in str(err.value)


def test_filters_dangling_reference_prune(docker):
    a = (
        docker("import", "-", "prn/a:1", input=_tar({"a": b"1"}), check=True)
        .stdout.decode()
        .strip()
    )
    docker("import", "-", "prn/a:1", input=_tar({"a": b"2"}), check=True)  # a is now dangling
    dangling = _ids(docker, "--filter", "dangling=true")
    assert a in dangling
    row = docker(
        "images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}"
    ).stdout
    assert b"<none>:<none>" in row
    ref = (
        docker("images", "--format", "{{.Repository}}", "prn/*", check=True).stdout.decode().split()
    )
    assert ref == ["prn/a"]
    out = docker("image", "prune", "-f", check=True).stdout.decode()
    assert f"deleted: {a}" in out and "Total reclaimed space:" in out
    assert a not in _ids(docker, "-a")
    docker("rmi", "prn/a:1", check=True)


def test_save_from_dockerd_loads_into_dockyardd_and_back(daemon, dockerd, workdir):
    # real dockerd -> dockyardd
    dockerd.cli("tag", "busybox", "from/dockerd:1", check=True)
    path = os.path.join(workdir, "from-dockerd.tar")
    dockerd.cli("save", "-o", path, "from/dockerd:1", check=True)
    ref_id = dockerd.cli("images", "-q", "--no-trunc", "from/dockerd:1").stdout.strip()
    out = daemon.cli("load", "-i", path, check=True).stdout.decode()
    assert "Loaded image: from/dockerd:1" in out
    assert daemon.cli("images", "-q", "--no-trunc", "from/dockerd:1").stdout.strip() == ref_id
    # dockyardd -> real dockerd (Docker 25+ layout, read by 20.10 through manifest.json)
    daemon.cli("tag", "busybox", "from/dockyard:1", check=True)
    back = os.path.join(workdir, "from-dockyard.tar")
    daemon.cli("save", "-o", back, "from/dockyard:1", check=True)
    my_id = daemon.cli("images", "-q", "--no-trunc", "from/dockyard:1").stdout.strip()
    out = dockerd.cli("load", "-i", back, check=True).stdout.decode()
    assert "Loaded image: from/dockyard:1" in out
    assert dockerd.cli("images", "-q", "--no-trunc", "from/dockyard:1").stdout.strip() == my_id
    run = dockerd.cli(
        "run", "--rm", "--network", "none", "from/dockyard:1", "echo", "hello", check=True
    )
    assert run.stdout == b"hello\n"
    daemon.cli("rmi", "from/dockerd:1", "from/dockyard:1", check=True)


def test_pull_from_nowhere_names_the_registry(docker):
    # Registry pulls and pushes are tested in test_pull*.py and test_push.py.
    pull = docker("pull", "localhost:5999/some/image:1")
    assert pull.returncode == 1 and b'"http://localhost:5999/v2/"' in pull.stderr
