"""dockyard.content.gc: mark and sweep over caller-supplied roots and edges."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dockyard.content import unreachable


def refs_of(edges: dict[str, list[str]], calls: list[str]) -> Callable[[str], Iterable[str]]:
    """An edge callback over ``edges`` that records each digest it is asked about."""

    def refs(digest: str) -> Iterable[str]:
        calls.append(digest)
        return edges.get(digest, [])

    return refs


def test_unreferenced_blobs_are_swept() -> None:
    edges = {
        "index": ["m1", "m2"],
        "m1": ["config1", "layer-a", "layer-b"],
        "m2": ["config2", "layer-a"],
        "old-manifest": ["old-config", "layer-b", "layer-old"],
    }
    every = {"index", "m1", "m2", "config1", "config2", "layer-a", "layer-b"}
    every |= {"old-manifest", "old-config", "layer-old", "stray"}
    calls: list[str] = []
    assert unreachable(every, ["index"], refs_of(edges, calls)) == {
        "old-manifest",
        "old-config",
        "layer-old",
        "stray",
    }
    # Each reachable node is expanded once, shared children included.
    assert sorted(calls) == sorted(set(calls))
    assert "old-manifest" not in calls


def test_no_roots_sweeps_everything() -> None:
    assert unreachable(["a", "b"], [], lambda d: ["a"]) == {"a", "b"}


def test_cycles_and_multiple_roots() -> None:
    edges = {"a": ["b"], "b": ["a", "c"], "lease": ["d"]}
    calls: list[str] = []
    assert unreachable("abcde", ["a", "lease"], refs_of(edges, calls)) == {"e"}
    assert sorted(calls) == ["a", "b", "c", "d", "lease"]


def test_missing_root_still_protects_its_children() -> None:
    # The manifest blob is gone but the metadata still knows its edges.
    edges = {"manifest": ["layer"]}
    assert unreachable(["layer", "other"], ["manifest"], refs_of(edges, [])) == {"other"}


def test_accepts_iterators() -> None:
    assert unreachable(iter(["x", "y"]), iter(["x"]), lambda d: iter(())) == {"y"}
