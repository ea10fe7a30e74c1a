import os
import time

import pytest

from dockyard.build.sources import has_wildcards, hash_sources, resolve, scoped
from dockyard.dockerignore import Matcher
from dockyard.errors import InvalidParameter, NotFound


@pytest.fixture
def root(tmp_path):
    for name, data in {"a.txt": "a", "b.txt": "b", "dir/c.txt": "c", "dir/sub/d.md": "d"}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data)
    os.symlink("/etc/passwd", tmp_path / "out")
    os.symlink("dir", tmp_path / "indir")
    return str(tmp_path)


def test_scoped_follows_links_inside_the_root(root):
    assert scoped(root, "out") == os.path.join(root, "etc/passwd")
    assert scoped(root, "indir/c.txt") == os.path.join(root, "dir/c.txt")
    assert scoped(root, "../../x") == os.path.join(root, "x")
    assert scoped(root, "out", follow_last=False) == os.path.join(root, "out")


def test_resolve_plain_wildcards_and_errors(root):
    (source,) = resolve(root, "dir", "COPY")
    assert source.is_dir and source.rel == "dir"
    assert [s.rel for s in resolve(root, "*.txt", "COPY")] == ["a.txt", "b.txt"]
    assert [s.rel for s in resolve(root, "dir/*", "COPY")] == ["dir/c.txt", "dir/sub"]
    assert [s.rel for s in resolve(root, "?.txt", "COPY", Matcher(["b.txt"]))] == ["a.txt"]
    with pytest.raises(NotFound, match="no source files were specified"):
        resolve(root, "*.nothing", "COPY")
    with pytest.raises(NotFound, match="stat out: file does not exist"):
        resolve(root, "out", "COPY")
    with pytest.raises(InvalidParameter, match="outside the build context"):
        resolve(root, "../x", "ADD")
    assert has_wildcards("a*") and not has_wildcards("a\\*")


def test_hash_ignores_times_but_not_content_or_mode(root):
    sources = resolve(root, "dir", "COPY")
    first = hash_sources(sources)
    past = time.time() - 1000
    os.utime(os.path.join(root, "dir/c.txt"), (past, past))
    assert hash_sources(sources) == first
    os.chmod(os.path.join(root, "dir/c.txt"), 0o600)
    second = hash_sources(sources)
    assert second != first
    with open(os.path.join(root, "dir/c.txt"), "w") as f:
        f.write("changed")
    assert hash_sources(sources) != second
    assert hash_sources(sources, Matcher(["sub"])) != hash_sources(sources)
