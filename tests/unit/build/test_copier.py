import gzip
import io
import os
import tarfile

import pytest

from dockyard.build.copier import Writer, is_archive
from dockyard.build.sources import resolve


@pytest.fixture
def trees(tmp_path):
    src, root = tmp_path / "src", tmp_path / "root"
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "e" / "f.txt").write_text("f")
    (src / "x.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "x.sh", 0o755)
    os.symlink("x.sh", src / "link")
    (root / "etc").mkdir(parents=True)
    (root / "usr" / "lib").mkdir(parents=True)
    os.symlink("/usr/lib", root / "lib")
    return str(src), str(root)


def members(writer):
    buf = io.BytesIO()
    assert writer.layer_tar(buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        return {m.name: m for m in tf}


def test_copy_file_to_dir_and_name(trees):
    src, root = trees
    writer = Writer(root)
    writer.copy(resolve(src, "x.sh", "COPY"), "/etc/")
    writer.copy(resolve(src, "x.sh", "COPY"), "/opt/renamed")
    got = members(writer)
    assert got["etc/x.sh"].mode == 0o755 and got["etc/x.sh"].uid == 0
    assert got["opt/renamed"].isreg()
    assert got["opt"].isdir() and got["etc"].isdir()


def test_copy_directory_contents_with_chown_chmod(trees):
    src, root = trees
    writer = Writer(root, owner=(1000, 1001))
    writer.copy(resolve(src, "d", "COPY"), "/app", chmod=0o640)
    got = members(writer)
    assert set(got) == {"app", "app/e", "app/e/f.txt"}
    assert (got["app/e/f.txt"].uid, got["app/e/f.txt"].gid) == (1000, 1001)
    assert got["app/e/f.txt"].mode == 0o640


def test_symlinks_copied_as_links_inside_dirs_and_dest_links_followed_in_root(trees):
    src, root = trees
    writer = Writer(root)
    writer.copy(resolve(src, ".", "COPY"), "/lib/app/")
    got = members(writer)
    # /lib -> /usr/lib in the image: the write lands in usr/lib, never outside the root.
    assert "usr/lib/app/link" in got and got["usr/lib/app/link"].issym()
    assert os.path.isfile(os.path.join(root, "usr/lib/app/x.sh"))


def test_add_unpacks_archives_keeping_owners(trees, tmp_path):
    src, root = trees
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("pkg/file")
        info.size, info.uid, info.gid = 3, 7, 8
        tf.addfile(info, io.BytesIO(b"abc"))
    archive = tmp_path / "src" / "pkg.tar.gz"
    archive.write_bytes(gzip.compress(buf.getvalue()))
    assert is_archive(str(archive)) and not is_archive(os.path.join(src, "x.sh"))
    writer = Writer(root)
    writer.copy(resolve(src, "pkg.tar.gz", "ADD"), "/srv/", unpack=True)
    got = members(writer)
    assert (got["srv/pkg/file"].uid, got["srv/pkg/file"].gid) == (7, 8)


def test_mkdir_all_records_only_new_dirs(trees):
    _, root = trees
    writer = Writer(root)
    writer.mkdir_all("/etc")
    assert not writer.layer_tar(io.BytesIO())
    writer.mkdir_all("/work/dir")
    assert set(members(writer)) == {"work", "work/dir"}


def test_single_wildcard_match_may_name_a_file(trees):
    src, root = trees
    writer = Writer(root)
    writer.copy(resolve(src, "*.sh", "COPY"), "/opt/tool")
    assert os.path.isfile(os.path.join(root, "opt/tool"))


def test_parents_keep_source_paths_and_exclude_filters(trees):
    from dockyard.dockerignore import Matcher

    src, root = trees
    writer = Writer(root)
    writer.copy(resolve(src, "d/e/f.txt", "COPY"), "/dst/", parents=True)
    assert os.path.isfile(os.path.join(root, "dst/d/e/f.txt"))
    writer = Writer(root)
    writer.copy(resolve(src, ".", "COPY"), "/all/", excludes=Matcher(["*.sh", "d/e"]))
    names = set(members(writer))
    assert "all/x.sh" not in names and "all/d/e" not in names
    assert {"all/d", "all/link"} <= names
