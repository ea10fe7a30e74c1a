import pytest

from dockyard.errors import InvalidParameter
from dockyard.images.chain import chain_ids
from dockyard.images.changes import apply_changes


def test_changes_apply_like_dockerfile_instructions():
    config = {"Env": ["PATH=/bin"], "Cmd": None}
    apply_changes(
        config,
        [
            'CMD ["sh", "-c", "echo hi"]',
            "ENTRYPOINT /init",
            "ENV A=1 B='two words'",
            "ENV PATH /usr/bin",
            "LABEL a=b c=d",
            "EXPOSE 80 53/udp",
            'VOLUME ["/data"]',
            "USER 1000:1000",
            "WORKDIR /srv",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN true",
        ],
    )
    assert config["Cmd"] == ["sh", "-c", "echo hi"]
    assert config["Entrypoint"] == ["/bin/sh", "-c", "/init"]
    assert config["Env"] == ["A=1", "B=two words", "PATH=/usr/bin"]
    assert config["Labels"] == {"a": "b", "c": "d"}
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert (config["User"], config["WorkingDir"], config["StopSignal"]) == (
        "1000:1000",
        "/srv",
        "SIGINT",
    )
    assert config["OnBuild"] == ["RUN true"]


@pytest.mark.parametrize(
    "line,message",
    [
        ("RUN rm -rf /", "RUN is not a valid change command"),
        ("FROM scratch", "FROM is not a valid change command"),
        ("EXPOSE http", "invalid containerPort"),
        ("ENV", "requires at least one argument"),
    ],
)
def test_bad_changes(line, message):
    with pytest.raises(InvalidParameter, match=message):
        apply_changes({}, [line])


def test_chain_ids_follow_the_oci_formula():
    a = "sha256:" + "a" * 64
    b = "sha256:" + "b" * 64
    import hashlib

    assert chain_ids([a]) == [a]
    assert chain_ids([a, b])[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
