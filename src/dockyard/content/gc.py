"""Content reachability: storage-agnostic mark and sweep (pure logic, both worlds).

Like containerd's pkg/gc, this knows nothing about images or disks: the caller names every
digest it holds, the roots (tagged images, leased content, what running containers use) and
a ``refs`` callback giving a node's outgoing edges (index → manifests, manifest → config and
layers).  The answer is the set GC may delete; ``prune`` and ``system df`` use the same one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["unreachable"]


def unreachable(
    all_digests: Iterable[str],
    roots: Iterable[str],
    refs: Callable[[str], Iterable[str]],
) -> set[str]:
    """The digests in ``all_digests`` not reachable from ``roots`` through ``refs``.

    ``refs`` is called exactly once for every reachable digest, roots included, even one
    absent from ``all_digests`` (its edges may be known without its blob); it must not raise
    for those.  Cycles and shared children are fine.
    """
    marked: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in marked:
            continue
        marked.add(digest)
        stack.extend(child for child in refs(digest) if child not in marked)
    return set(all_digests) - marked
