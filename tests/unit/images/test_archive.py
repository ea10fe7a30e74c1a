import io
import json
import os
import tarfile

import pytest

from dockyard.errors import InvalidParameter
from dockyard.images.archive import SaveItem, plan_load, unpack, write_save


def _tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data else None)
    buf.seek(0)
    return buf


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_save_then_plan_load_round_trip(tmp_path):
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_tar([_file("hello", b"hi")]).getvalue())
    import hashlib

    diff = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    out = io.BytesIO()
    write_save(
        [
            SaveItem(
                image_id,
                config,
                [diff],
                lambda _: (open(layer, "rb"), layer.stat().st_size),
                ["a/b:1"],
                ["docker.io/a/b:1"],
            )
        ],
        out,
    )
    out.seek(0)
    work = tmp_path / "work"
    work.mkdir()
    items = plan_load(unpack(out, str(work)))
    assert len(items) == 1 and items[0].config == config and items[0].repo_tags == ["a/b:1"]
    assert open(items[0].layers[0], "rb").read() == layer.read_bytes()


@pytest.mark.parametrize(
    "entries,message",
    [
        ([_file("../escape")], "escapes the archive"),
        ([_file("/abs")], "absolute path"),
        ([(tarfile.TarInfo("dev"), None)], None),
    ],
)
def test_hostile_archives(tmp_path, entries, message):
    if message is None:
        entries[0][0].type = tarfile.CHRTYPE
        message = "device or fifo"
    with pytest.raises(InvalidParameter, match=message):
        unpack(_tar(entries), str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_links_stay_inside_the_archive(tmp_path):
    link = tarfile.TarInfo("manifest.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../../etc/passwd"
    with pytest.raises(InvalidParameter, match="escapes the archive"):
        unpack(_tar([(link, None)]), str(tmp_path))


def test_missing_manifest_says_what_to_do(tmp_path):
    unpacked = unpack(_tar([_file("random.txt")]), str(tmp_path))
    with pytest.raises(InvalidParameter, match="docker import"):
        plan_load(unpacked)


def test_truncated_archive(tmp_path):
    data = _tar([_file("big", b"x" * 100000)]).getvalue()[:5000]
    with pytest.raises(InvalidParameter):
        unpack(io.BytesIO(data), str(tmp_path))
