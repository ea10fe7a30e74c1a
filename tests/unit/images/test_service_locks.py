"""The image service's keyed locks and leases against a real content store, SQLite file
and vfs driver; a gate in the driver's ``create`` holds a load mid-apply so the ordering
is decided by events, not timing."""

import asyncio
import hashlib
import io
import json
import os
import tarfile
import threading

import pytest

from dockyard.content import LocalStore
from dockyard.db import open_db
from dockyard.errors import NoSuchImage
from dockyard.events import EventBus
from dockyard.images.chain import chain_ids
from dockyard.images.service import ImageService
from dockyard.images.store import Store
from dockyard.storage.vfs import Vfs


class GatedVfs(Vfs):
    """vfs whose ``create`` of one layer waits until the test opens the gate."""

    def __init__(self, root):
        super().__init__(root)
        self.hold: str | None = None
        self.reached = threading.Event()
        self.gate = threading.Event()
        self.created: list[str] = []

    def create(self, layer_id, parent):
        self.created.append(layer_id)
        if layer_id == self.hold:
            self.reached.set()
            assert self.gate.wait(30)
        return super().create(layer_id, parent)


def _layer(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(name)
        tar.addfile(info, io.BytesIO(name.encode()))
    return buf.getvalue()


def _archive(tag: str, layers: list[bytes], comment: str = "") -> bytes:
    diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "comment": comment,
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("config.json", config)
        for i, data in enumerate(layers):
            add(f"l{i}.tar", data)
        manifest = [
            {
                "Config": "config.json",
                "RepoTags": [tag],
                "Layers": [f"l{i}.tar" for i in range(len(layers))],
            }
        ]
        add("manifest.json", json.dumps(manifest).encode())
    return buf.getvalue()


@pytest.fixture
def service(tmp_path):
    db = open_db(str(tmp_path / "metadata.db"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    svc = ImageService(
        Store(db),
        LocalStore(str(tmp_path / "content")),
        GatedVfs(str(tmp_path)),
        EventBus(),
        str(tmp),
    )
    yield svc
    svc.driver.gate.set()
    db.close()


def _chain(layers):
    return chain_ids(["sha256:" + hashlib.sha256(x).hexdigest() for x in layers])


def test_rm_and_prune_during_a_load_keep_the_layers_it_builds_on(service):
    base, top = _layer("base"), _layer("top")
    c_base, c_top = _chain([base, top])

    async def main():
        await service.load(io.BytesIO(_archive("a:1", [base])))
        service.driver.hold = c_top.removeprefix("sha256:")
        load = asyncio.create_task(service.load(io.BytesIO(_archive("b:1", [base, top]))))
        await asyncio.to_thread(service.driver.reached.wait, 30)
        # b's load is applying its top layer on a:1's layer; a:1 goes, then a prune runs.
        out = await service.remove("a:1", force=False, noprune=False)
        assert {"Deleted": c_base} not in out  # leased by the load: not collected
        await service.prune({"dangling": ["false"]})
        assert service.store.layer(c_base) is not None
        service.driver.gate.set()
        await load
        image_id = service.resolve("b:1")
        assert service.store.image_chain(image_id) == [c_base, c_top]
        assert os.path.isdir(service.driver._dir(c_top.removeprefix("sha256:")))
        assert os.path.isfile(os.path.join(service.driver._dir(c_top[7:]), "base"))
        assert len(service.leased) == 0 and len(service.locks) == 0

    asyncio.run(main())


def test_two_loads_of_the_same_layers_apply_each_once(service):
    layers = [_layer("one"), _layer("two")]
    chains = [c.removeprefix("sha256:") for c in _chain(layers)]

    async def main():
        service.driver.hold = chains[0]
        first = asyncio.create_task(service.load(io.BytesIO(_archive("x:1", layers, "x"))))
        await asyncio.to_thread(service.driver.reached.wait, 30)
        second = asyncio.create_task(service.load(io.BytesIO(_archive("y:1", layers, "y"))))
        await asyncio.sleep(0.2)  # let the second reach the layer lock (it must wait there)
        service.driver.gate.set()
        await asyncio.gather(first, second)
        assert [service.driver.created.count(c) for c in chains] == [1, 1]
        assert service.resolve("x:1") != service.resolve("y:1")

    asyncio.run(main())


def test_tag_and_rm_of_other_images_do_not_wait_for_a_load(service):
    async def main():
        await service.load(io.BytesIO(_archive("other:1", [_layer("o")])))
        new = _layer("slow")
        service.driver.hold = _chain([new])[0].removeprefix("sha256:")
        load = asyncio.create_task(service.load(io.BytesIO(_archive("slow:1", [new]))))
        await asyncio.to_thread(service.driver.reached.wait, 30)
        await asyncio.wait_for(service.tag("other:1", "other", "2"), 5)
        await asyncio.wait_for(service.remove("other:1", False, False), 5)
        await asyncio.wait_for(service.remove("other:2", False, False), 5)
        with pytest.raises(NoSuchImage):
            service.resolve("other:1")
        assert not load.done()
        service.driver.gate.set()
        await load
        assert service.resolve("slow:1")

    asyncio.run(main())


def test_create_holding_an_image_makes_rm_wait_and_then_conflict(service):
    async def main():
        await service.load(io.BytesIO(_archive("used:1", [_layer("u")])))
        users: list[str] = []
        service.users = lambda image_id: list(users)
        async with service.using("used:1") as image_id:
            rm = asyncio.create_task(service.remove(image_id, force=False, noprune=False))
            await asyncio.sleep(0.05)
            assert not rm.done()
            users.append("c0ffee")  # the container record is saved before release
        from dockyard.errors import Conflict

        with pytest.raises(Conflict):
            await rm
        assert service.resolve("used:1") == image_id

    asyncio.run(main())
