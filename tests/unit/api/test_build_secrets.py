"""``X-Dockyard-Build-Secrets``: what the CLI sends is what the route reads, and bad or
oversized values are refused with a 400 that names the secret."""

import base64
import json

import pytest

from dockyard.api.routes.build import SECRET_MAX_BYTES, _secrets
from dockyard.cli.command import CommandError
from dockyard.cli.commands.build import _secret, _secrets_header
from dockyard.errors import InvalidParameter


def _header(table: dict) -> str:
    return base64.b64encode(json.dumps(table).encode()).decode()


def test_cli_header_round_trips(tmp_path, monkeypatch):
    src = tmp_path / "token.txt"
    src.write_bytes(b"s3cr\x00t\n")
    monkeypatch.setenv("API_KEY", "from-env")
    monkeypatch.setenv("OTHER", "other-env")
    header = _secrets_header(
        [f"id=tok,src={src}", "id=API_KEY", "id=named,env=OTHER", "type=env,id=t2,src=OTHER"]
    )
    assert _secrets(header) == {
        "tok": b"s3cr\x00t\n",
        "API_KEY": b"from-env",
        "named": b"other-env",
        "t2": b"other-env",
    }
    assert _secrets_header([]) == ""
    assert _secrets("") == {}


def test_cli_id_alone_falls_back_to_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOT_IN_ENV", raising=False)
    (tmp_path / "NOT_IN_ENV").write_bytes(b"file")
    assert _secret("id=NOT_IN_ENV") == ("NOT_IN_ENV", b"file")


def test_cli_refuses_missing_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_VAR", raising=False)
    with pytest.raises(CommandError, match=r"secret tok from .*/absent: No such file"):
        _secret(f"id=tok,src={tmp_path}/absent")
    with pytest.raises(CommandError, match="environment variable NOPE_VAR is not set"):
        _secret("id=x,env=NOPE_VAR")
    with pytest.raises(CommandError, match="unexpected key 'target'"):
        _secret("id=x,target=/a")
    with pytest.raises(CommandError, match="must be a key=value pair"):
        _secret("id=x,oops")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (SECRET_MAX_BYTES + 1))
    with pytest.raises(CommandError, match="secret big is over"):
        _secret(f"id=big,src={big}")


def test_route_refuses_bad_and_oversized_values():
    with pytest.raises(InvalidParameter, match="base64 of a JSON object"):
        _secrets("%%%")
    with pytest.raises(InvalidParameter, match="a JSON object expected"):
        _secrets(_header(["a"]))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="secret 'a' is not base64"):
        _secrets(_header({"a": "!!"}))
    with pytest.raises(InvalidParameter, match="secret 'a' needs an id and a base64 string"):
        _secrets(_header({"a": 1}))
    huge = base64.b64encode(b"x" * (SECRET_MAX_BYTES + 1)).decode()
    with pytest.raises(InvalidParameter, match=r"secret 'big' is 512001 bytes: the limit"):
        _secrets(_header({"big": huge}))
