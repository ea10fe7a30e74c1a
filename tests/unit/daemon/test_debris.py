"""debris.collect against a real metadata store, content store and vfs driver in a temp
dir: what a record owns stays, everything else goes and is reported with its bytes."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.containers.record import Container
from dockyard.containers.store import Store as ContainerStore
from dockyard.content import LocalStore
from dockyard.daemon import debris
from dockyard.daemon.config import Config
from dockyard.db import open_db
from dockyard.images.store import LayerRow
from dockyard.images.store import Store as ImageStore
from dockyard.storage.vfs import Vfs

KEEP_LAYER, KEEP_CTR, ORPHAN = "a" * 64, "b" * 64, "c" * 64


def test_collect_removes_only_what_no_record_owns(tmp_path: Path) -> None:
    data, execr = tmp_path / "data", tmp_path / "exec"
    db = open_db(str(tmp_path / "metadata.db"))
    ImageStore(db).add_layer(LayerRow("sha256:" + KEEP_LAYER, "sha256:" + "e" * 64, None, 0))
    ContainerStore(db).save(
        Container(
            id=KEEP_CTR, name="/keep", created="", created_ns=0, image_id="", image_name="",
            path="true", args=[], config={}, host_config={}, rw_layer=KEEP_CTR,
        )
    )  # fmt: skip
    content = LocalStore(str(data / "content"))
    driver = Vfs(str(data))
    for layer in (KEEP_LAYER, KEEP_CTR, ORPHAN):
        Path(driver.create(layer, None), "f").write_bytes(b"x" * 1000)
    for top in (data / "containers", execr / "containers"):
        for cid in (KEEP_CTR, ORPHAN):
            (top / cid).mkdir(parents=True)
        (top / KEEP_CTR / "keep.json").write_text("{}")
    (data / "containers" / KEEP_CTR / ".config.json.tmp-4242").write_text("partial")
    (data / "tmp" / "load-1").mkdir(parents=True)
    (data / "tmp" / "load-1" / "layer.tar").write_bytes(b"y" * 5000)
    (data / "content" / "ingest" / "partial").write_bytes(b"z" * 300)

    config = Config(data_root=str(data), exec_root=str(execr))
    config.extra["cgroup-parent"] = "dockyard-unit-nonexistent"
    report = debris.collect(db, content, driver, config)

    assert sorted(driver.ids()) == [KEEP_LAYER, KEEP_CTR]
    for top in (data / "containers", execr / "containers"):
        assert os.listdir(top) == [KEEP_CTR]
    assert os.listdir(data / "containers" / KEEP_CTR) == ["keep.json"]
    assert os.listdir(data / "tmp") == [] and os.listdir(data / "content" / "ingest") == []
    kinds = sorted(kind for kind, _, _ in report.removed)
    assert kinds == [
        "container directory",
        "container directory",
        "content ingest",
        "layer",
        "temp file",
        "temp file",
    ]
    assert report.freed == 1000 + 5000 + 300 + len("partial")
    # a second start finds nothing
    assert debris.collect(db, content, driver, config).removed == []


def test_collect_removes_tar_splits_of_unrecorded_layers(tmp_path: Path) -> None:
    data, execr = tmp_path / "data", tmp_path / "exec"
    db = open_db(str(tmp_path / "metadata.db"))
    diff = "e" * 64
    ImageStore(db).add_layer(LayerRow("sha256:" + KEEP_LAYER, "sha256:" + diff, None, 0))
    content = LocalStore(str(data / "content"))
    driver = Vfs(str(data))
    driver.create(KEEP_LAYER, None)
    splits = data / "tarsplit"
    (splits / diff).mkdir(parents=True)
    (splits / diff / KEEP_LAYER).write_bytes(b"k" * 10)
    (splits / diff / ORPHAN).write_bytes(b"o" * 20)  # an apply that crashed before its record
    (splits / ("f" * 64)).mkdir()
    (splits / ("f" * 64) / ORPHAN).write_bytes(b"p" * 30)
    config = Config(data_root=str(data), exec_root=str(execr))
    config.extra["cgroup-parent"] = "dockyard-unit-nonexistent"
    report = debris.collect(db, content, driver, config)
    assert sorted(os.listdir(splits)) == [diff]
    assert os.listdir(splits / diff) == [KEEP_LAYER]
    assert [kind for kind, _, _ in report.removed] == ["tar-split file", "tar-split file"]
    assert report.freed == 50
