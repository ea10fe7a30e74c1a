"""COPY, ADD and WORKDIR steps (asyncio world; file work in threads): no container, the
layer is written from the context (or another stage's files) by ``copier.Writer`` into a
scratch layer over the parent, and registered through the image service.

The cache key holds the expanded arguments, the flags and the content hash of the
sources, so a touched but unchanged file still hits.  ``created_by`` is moby's:
``/bin/sh -c #(nop) COPY file:<hash> in /dst `` (``dir:`` for a directory, ``multi:`` for
several sources, ``--chown=u:g`` glued in front as moby does).  ``ADD <url>`` downloads
the file first (``fetch``) and hashes its content, as moby's legacy builder does.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from typing import IO, TYPE_CHECKING

from dockyard.build import fetch
from dockyard.build.cache import step_key
from dockyard.build.config import probe
from dockyard.build.copier import Writer
from dockyard.build.dockerfile import Heredoc, Instruction
from dockyard.build.expand import expand_raw
from dockyard.build.explain import Facts
from dockyard.build.sources import Source, hash_sources, resolve, scoped
from dockyard.build.view import RootView
from dockyard.dockerignore import Matcher
from dockyard.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.build.executor import Build, StageState

__all__ = ["copy", "workdir"]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_HEREDOC_SOURCE = re.compile(r"^<<-?(['\"]?)([^'\"]+)\1$")


def _dest(st: StageState, raw: str) -> str:
    dest = st.word(raw)
    if not dest.startswith("/"):
        base = str(st.config.get("WorkingDir") or "/")
        trailing = dest.endswith("/") or dest in (".", "")
        dest = posixpath.join(base, dest)
        dest = posixpath.normpath(dest) + ("/" if trailing else "")
    return dest.replace("//", "/")


def _heredoc(ins: Instruction, word: str) -> Heredoc | None:
    match = _HEREDOC_SOURCE.match(word)
    if not match or not ins.heredocs:
        return None
    return next((h for h in ins.heredocs if h.name == match.group(2)), None)


async def copy(build: Build, st: StageState, ins: Instruction) -> None:
    what = ins.keyword
    flags = ins.flags
    raw_sources, dest = list(ins.args[:-1]), _dest(st, ins.args[-1])
    inline: list[tuple[str, bytes]] = []
    specs: list[str] = []
    urls: list[str] = []  # ADD's, downloaded by the daemon
    for word in raw_sources:
        doc = _heredoc(ins, word)
        if doc is not None:
            text = expand_raw(doc.content, st.vars()) if doc.expand else doc.content
            inline.append((doc.name, text.encode()))
            continue
        spec = st.word(word)
        if _URL.match(spec):
            if what == "COPY":
                raise InvalidParameter(f"line {ins.line}: COPY: source can't be a URL: {spec}")
            urls.append(spec)
            continue
        specs.append(spec)
    checksum = st.word(str(flags["checksum"])) if flags.get("checksum") else ""
    if checksum and (len(urls) != 1 or specs or inline):
        raise InvalidParameter(
            f"line {ins.line}: ADD --checksum needs exactly one source, and it must be a URL"
        )
    if urls and flags.get("from"):
        raise InvalidParameter(f"line {ins.line}: ADD --from cannot take a URL source")
    if not urls:
        await _copy(build, st, ins, specs, dest, inline, [], [])
        return
    tmp = tempfile.mkdtemp(prefix="add-url-", dir=build.images.tmpdir)
    try:
        downloads = await _download(build, ins, urls, dest, checksum, tmp)
        await _copy(build, st, ins, specs, dest, inline, urls, downloads)
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)


async def _download(
    build: Build, ins: Instruction, urls: list[str], dest: str, checksum: str, tmp: str
) -> list[Source]:
    """Each URL downloaded (``fetch``) into its own dir of ``tmp``, as a source named as
    moby names it."""
    out: list[Source] = []
    for i, url in enumerate(urls):
        directory = os.path.join(tmp, str(i))
        os.mkdir(directory, 0o700)
        got = await fetch.download(
            url, directory, fetch.check_checksum(checksum) if checksum else ""
        )
        if not got.name and (dest.endswith("/") or len(urls) > 1):
            raise InvalidParameter(f"line {ins.line}: cannot determine filename from url: {url}")
        path = os.path.join(directory, got.name or "download")
        os.rename(got.path, path)
        out.append(Source(path, got.name or "download", False))
    return out


async def _copy(
    build: Build,
    st: StageState,
    ins: Instruction,
    specs: list[str],
    dest: str,
    inline: list[tuple[str, bytes]],
    urls: list[str],
    downloads: list[Source],
) -> None:
    """The step once its sources are known: the context's (or ``--from``'s) ``specs``,
    heredocs, and downloaded URLs."""
    what = ins.keyword
    flags = ins.flags
    chown = st.word(str(flags["chown"])) if flags.get("chown") else ""
    chmod = _chmod(st.word(str(flags["chmod"]))) if flags.get("chmod") else None
    excludes = Matcher([st.word(p) for p in flags.get("exclude", [])])  # type: ignore[union-attr]
    parents = bool(flags.get("parents"))
    from_image = ""
    if flags.get("from"):
        from_image = await _from_image(build, st, st.word(str(flags["from"])))
    files: dict[str, str] = {}
    _, digest = await asyncio.to_thread(
        _resolve_all, build, specs, from_image, excludes, what, files
    )
    for name, content in inline:
        digest.append("file:" + hashlib.sha256(content).hexdigest() + ":" + name)
        files["<<" + name] = digest[-1]
    for url, download in zip(urls, downloads, strict=True):
        # As moby: the downloaded content (with its name and mode) is the source's hash,
        # which history shows bare (no "file:").
        digest.append(hash_sources([download]))
        files[url] = digest[-1]
    if len(digest) > 1 and not dest.endswith("/"):
        raise InvalidParameter(
            f"line {ins.line}: When using {what} with more than one source file, the "
            "destination must be a directory and end with a /"
        )
    if len(digest) == 1:
        src_hash = digest[0].rsplit(":", 1)[0] if inline and not urls else digest[0]
    else:
        src_hash = "multi:" + hashlib.sha256(":".join(digest).encode()).hexdigest()
    chown_comment = f"--chown={chown}" if chown else ""
    # History shows the destination as written (expanded, not joined to WORKDIR), as
    # moby's performCopy does: ``COPY . .`` is "... in . ".
    comment = f"{what} {chown_comment}{src_hash} in {st.word(ins.args[-1])} "
    container_config = probe(st.config, [*st.shell, "#(nop) " + comment])
    container_config["Image"] = st.image_id
    options = [chown, chmod, parents, list(flags.get("exclude", []))]  # type: ignore[call-overload]
    link = bool(flags.get("link"))
    facts = build.facts(st, ins, files)
    if link:
        # Content-addressed: no parent, no parent config, no source image id; the
        # comment holds the sources' digests and the destination.
        key = step_key("", what + " --link", comment, specs, dest, options)
        facts = Facts(facts.step, "(--link: any parent)", facts.args, facts.files)
    else:
        key = step_key(st.image_id, what, container_config, specs, dest, options, from_image)
    if await build.cached(st, key, container_config, facts, link=link):
        return
    spool = await asyncio.to_thread(
        _write_layer,
        build,
        st,
        from_image,
        specs,
        dest,
        chown,
        chmod,
        excludes,
        parents,
        inline,
        what,
        link,
        downloads,
    )
    with spool:
        await build.commit(st, key, container_config, layer=spool)


def _chmod(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise InvalidParameter(f"invalid chmod parameter {value!r}: use an octal mode") from None
    if not 0 <= mode <= 0o7777:
        raise InvalidParameter(f"invalid chmod parameter {value!r}: use an octal mode")
    return mode


async def _from_image(build: Build, st: StageState, name: str) -> str:
    index = build.stage_ref(name)
    if index is not None:
        if index >= st.stage.index:
            raise InvalidParameter(f"COPY --from={name}: a stage can only copy from one above it")
        return (await build.stage_result(index)).image_id or "scratch"
    return await build.image(name, st.log)


def _resolve_all(
    build: Build,
    specs: list[str],
    from_image: str,
    excludes: Matcher,
    what: str,
    files: dict[str, str],
) -> tuple[list[Source], list[str]]:
    """Resolve the sources and hash them; another stage's files are mounted for that, so
    that history names ``file:`` or ``dir:`` as moby does.  ``files`` gets each context
    path's digest (an image's sources: each source's)."""
    if from_image:
        # Images are immutable: their digests are remembered, so a cached build mounts
        # nothing.
        memo_key = (from_image, tuple(specs), tuple(excludes.raw), what)
        found = build.cache.digests.get(memo_key)
        if found is None:
            top = build.images.top_layer(from_image) if from_image != "scratch" else None
            with RootView(build.images.driver, top) as root:
                found = _digests(root, specs, excludes, what)[1]
            if len(build.cache.digests) > 4096:
                build.cache.digests.clear()
            build.cache.digests[memo_key] = found
        files["<--from image>"] = from_image
        if len(found) == len(specs):
            files.update(zip(specs, found))
        else:  # wildcards: the digests do not line up with the specs
            files[" ".join(specs)] = ":".join(found)
        return [], list(found)
    return _digests(build.context.root, specs, excludes, what, files)


def _digests(
    root: str, specs: list[str], excludes: Matcher, what: str, files: dict[str, str] | None = None
) -> tuple[list[Source], list[str]]:
    ex = excludes if excludes.patterns else None
    sources: list[Source] = []
    digest: list[str] = []
    for spec in specs:
        found = resolve(root, spec, what, ex)
        sources.extend(found)
        for source in found:
            kind = "dir" if source.is_dir else "file"
            digest.append(f"{kind}:{hash_sources([source], ex, files)}")
    return sources, digest


def _owner(root: str, chown: str) -> tuple[int, int] | None:
    """``--chown=user[:group]`` resolved in the image's /etc/passwd and /etc/group."""
    if not chown:
        return None
    user, _, group = chown.partition(":")
    uid, primary = _lookup(root, "etc/passwd", user, 2, 3)
    if group:
        gid = _lookup(root, "etc/group", group, 2, 2)[0]
    elif user.isdigit():
        gid = int(user)
    else:
        gid = primary
    return uid, gid


def _lookup(root: str, path: str, name: str, id_field: int, gid_field: int) -> tuple[int, int]:
    if name.isdigit():
        return int(name), int(name)
    try:
        with open(scoped(root, path), encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > max(id_field, gid_field) and fields[0] == name:
                    return int(fields[id_field]), int(fields[gid_field])
    except (OSError, ValueError):
        pass
    kind = "user" if "passwd" in path else "group"
    raise InvalidParameter(
        f"unable to convert uid/gid chown string to host mapping: can't find {kind} {name!r} "
        f"in /{path} of the image"
    )


def _write_layer(
    build: Build,
    st: StageState,
    from_image: str,
    specs: list[str],
    dest: str,
    chown: str,
    chmod: int | None,
    excludes: Matcher,
    parents: bool,
    inline: list[tuple[str, bytes]],
    what: str,
    link: bool = False,
    downloads: list[Source] | None = None,
) -> IO[bytes]:
    """The step's layer tar.  With ``--link`` it is written into an empty root, not over
    the parent, so that it is the same layer whatever the parent (BuildKit's --link); a
    ``--chown`` name is still looked up in the parent's /etc/passwd and /etc/group."""
    driver = build.images.driver
    parent_top = build.images.top_layer(st.image_id) if st.image_id else None
    owner = None
    if chown:
        with RootView(driver, parent_top) as parent_root:
            owner = _owner(parent_root, chown)
    top = None if link else parent_top
    spool = tempfile.TemporaryFile(dir=build.images.tmpdir)
    try:
        with RootView(driver, top) as root:
            writer = Writer(root, owner)
            ex = excludes if excludes.patterns else None
            if from_image:
                src_top = build.images.top_layer(from_image) if from_image != "scratch" else None
                with RootView(driver, src_top) as src_root:
                    for spec in specs:
                        found = resolve(src_root, spec, what, ex)
                        writer.copy(found, dest, chmod=chmod, excludes=ex, parents=parents)
            else:
                sources: list[Source] = []
                for spec in specs:
                    sources.extend(resolve(build.context.root, spec, what, ex))
                fetched = downloads or []
                multi = len(sources) + len(inline) + len(fetched) > 1
                target = dest if not multi or dest.endswith("/") else dest + "/"
                if sources:
                    writer.copy(
                        sources,
                        target,
                        chmod=chmod,
                        unpack=what == "ADD",
                        excludes=ex,
                        parents=parents,
                    )
                if fetched:  # never unpacked, even an archive (moby)
                    writer.copy(fetched, target, chmod=chmod)
            for name, content in inline:
                target = posixpath.join(dest, name) if dest.endswith("/") else dest
                writer.write_file(target, content, chmod if chmod is not None else 0o644)
            writer.layer_tar(spool)
        spool.seek(0)
        return spool
    except BaseException:
        spool.close()
        raise


async def workdir(build: Build, st: StageState, ins: Instruction) -> None:
    path = st.word(ins.args[0])
    if not path.startswith("/"):
        path = posixpath.join(str(st.config.get("WorkingDir") or "/"), path)
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = path[1:]
    st.config["WorkingDir"] = path
    container_config = probe(st.config, [*st.shell, "#(nop) WORKDIR " + path])
    container_config["Image"] = st.image_id
    key = step_key(st.image_id, "WORKDIR", container_config)
    if await build.cached(st, key, container_config, build.facts(st, ins)):
        return
    cid = await build.nop_container(st, container_config)
    try:
        spool, changed = await asyncio.to_thread(_mkdir_layer, build, st, path)
        with spool:
            await build.commit(
                st, key, container_config, container=cid, layer=spool if changed else None
            )
    except BaseException:
        if cid:
            await asyncio.shield(build.runner.remove(cid))
        raise
    await build.drop_container(st, cid)


def _mkdir_layer(build: Build, st: StageState, path: str) -> tuple[IO[bytes], bool]:
    top = build.images.top_layer(st.image_id) if st.image_id else None
    spool = tempfile.TemporaryFile(dir=build.images.tmpdir)
    try:
        with RootView(build.images.driver, top) as root:
            writer = Writer(root)
            writer.mkdir_all(path)
            changed = writer.layer_tar(spool)
        spool.seek(0)
        return spool, changed
    except BaseException:
        spool.close()
        raise
