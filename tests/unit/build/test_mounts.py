import pytest

from dockyard.build.mounts import parse_mount
from dockyard.errors import InvalidParameter


def test_cache_mount_defaults():
    spec = parse_mount("type=cache,target=/root/.cache")
    assert (spec.type, spec.target, spec.id, spec.readonly) == (
        "cache",
        "/root/.cache",
        "/root/.cache",
        False,
    )
    spec = parse_mount("type=cache,id=go,target=/go,sharing=locked,mode=0700,uid=1,gid=2")
    assert (spec.id, spec.sharing, spec.mode, spec.uid, spec.gid) == ("go", "locked", 0o700, 1, 2)


def test_bind_is_default_and_read_only():
    spec = parse_mount("target=/src,source=app")
    assert (spec.type, spec.source, spec.readonly) == ("bind", "app", True)
    assert not parse_mount("type=bind,target=/src,rw").readonly
    assert parse_mount("type=bind,target=/src,from=builder").from_ == "builder"


def test_secret_and_tmpfs():
    spec = parse_mount("type=secret,id=npmrc")
    assert spec.target == "/run/secrets/npmrc"
    assert parse_mount("type=secret,id=x,required").required
    assert parse_mount("type=tmpfs,target=/t,size=64m").size == "64m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=nfs,target=/x", "unsupported mount type"),
        ("type=cache", "needs a target"),
        ("type=cache,target=rel", "absolute path"),
        ("type=ssh", "SSH agent"),
        ("type=cache,target=/x,colour=blue", "unexpected key 'colour'"),
        ("type=cache,target=/x,sharing=sometimes", "unsupported sharing"),
        ("type=cache,target=/x,uid=me", "invalid number"),
    ],
)
def test_bad_mounts(text, message):
    with pytest.raises(InvalidParameter, match=message):
        parse_mount(text)
