"""config.json and credential helpers, against what docker CLI 28.2.2 wrote and sent.

``data/config/seed.json`` holds every kind of key docker knows; ``after-login.json`` is the
file docker left after ``echo pass | docker login -u user --password-stdin 127.0.0.1:5912``
on it.  The header values are the ``X-Registry-Auth`` docker sent for pulls from each
registry of that file (recorded with a proxy in front of dockerd).  Helpers are a real
program, ``docker-credential-dyt``, written by the test into a temporary PATH.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap

import pytest

from dockyard.cli import configfile, credentials

DATA = os.path.join(os.path.dirname(__file__), "data", "config")


def _read(name: str) -> str:
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


@pytest.fixture
def cfg_dir(tmp_path):
    return str(tmp_path / "cfg")


def _write(directory: str, text: str, mode: int = 0o600) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "config.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_login_writes_the_file_docker_writes_keeping_its_mode(cfg_dir, capsys):
    path = _write(cfg_dir, _read("seed.json"), 0o644)
    cfg = configfile.load(cfg_dir)
    credentials.store(
        cfg, {"username": "user", "password": "pass", "serveraddress": "127.0.0.1:5912"}
    )
    with open(path, encoding="utf-8") as f:
        assert f.read() == _read("after-login.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(cfg_dir) == ["config.json"]  # the temporary file was renamed
    assert capsys.readouterr().err == credentials.UNENCRYPTED_WARNING.format(path)


def test_new_file_is_0600_and_unchanged_credentials_are_not_rewritten(cfg_dir, capsys):
    auth = {"username": "u", "password": "p", "serveraddress": "reg:5000"}
    credentials.store(configfile.load(cfg_dir), auth)
    path = os.path.join(cfg_dir, "config.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cfg_dir).st_mode) == 0o700
    with open(path) as f:
        assert f.read() == '{\n\t"auths": {\n\t\t"reg:5000": {\n\t\t\t"auth": "dTpw"\n\t\t}\n\t}\n}'
    capsys.readouterr()
    before = os.stat(path).st_mtime_ns
    credentials.store(configfile.load(cfg_dir), auth)
    assert os.stat(path).st_mtime_ns == before
    assert capsys.readouterr().err == ""  # docker warns only when it writes


def test_identity_token_is_stored_instead_of_the_password(cfg_dir, capsys):
    cfg = configfile.load(cfg_dir)
    credentials.store(cfg, {"username": "u", "identitytoken": "T", "serveraddress": "r"})
    with open(os.path.join(cfg_dir, "config.json")) as f:
        assert json.load(f) == {"auths": {"r": {"auth": "dTo=", "identitytoken": "T"}}}
    assert capsys.readouterr().err == ""  # no password in clear, no warning


def test_unknown_keys_survive_and_a_broken_file_is_never_overwritten(cfg_dir):
    _write(cfg_dir, '{"auths": {}, "stackOrchestrator": "swarm", "psFormat": "x"}')
    cfg = configfile.load(cfg_dir)
    credentials.store(cfg, {"username": "u", "password": "p", "serveraddress": "r"})
    with open(os.path.join(cfg_dir, "config.json")) as f:
        assert list(json.load(f)) == ["auths", "psFormat", "stackOrchestrator"]
    path = _write(cfg_dir, "{not json")
    cfg = configfile.load(cfg_dir)
    with pytest.raises(credentials.CredentialsError, match="could not be parsed"):
        credentials.store(cfg, {"username": "u", "password": "p", "serveraddress": "r"})
    with open(path) as f:
        assert f.read() == "{not json"


@pytest.mark.parametrize(
    ("key", "header"),
    [
        (
            "legacy.example",
            "eyJ1c2VybmFtZSI6ImwiLCJwYXNzd29yZCI6InAiLCJzZXJ2ZXJhZGRyZXNzIjoiaHR0cHM6Ly9sZWdhY3kuZXhhbXBsZS92MS8ifQ==",
        ),
        (
            "tok.example",
            "eyJ1c2VybmFtZSI6InUiLCJzZXJ2ZXJhZGRyZXNzIjoidG9rLmV4YW1wbGUiLCJpZGVudGl0eXRva2VuIjoiVCJ9",
        ),
        (
            "other.example",
            "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJlbWFpbCI6ImVAeCIsInNlcnZlcmFkZHJlc3MiOiJvdGhlci5leGFtcGxlIn0=",
        ),
        ("nowhere.example", "e30="),
    ],
)
def test_header_is_what_docker_sends(cfg_dir, key, header):
    _write(cfg_dir, _read("seed.json"))
    auth = credentials.get(configfile.load(cfg_dir), key)
    assert credentials.encode_header(auth) == header


def test_auth_keys():
    assert credentials.key_for_domain("docker.io") == "https://index.docker.io/v1/"
    assert credentials.key_for_domain("localhost:5000") == "localhost:5000"
    assert credentials.convert_to_hostname("https://reg.example:5000/v2/") == "reg.example:5000"
    assert credentials.convert_to_hostname("reg.example/x") == "reg.example"


@pytest.fixture
def helper(tmp_path, monkeypatch):
    """``docker-credential-dyt`` on PATH, keeping its secrets in a JSON file and logging
    every call (action and stdin) so the protocol can be checked."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    store = tmp_path / "store.json"
    script = bindir / "docker-credential-dyt"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{os.environ.get("PYTHON_FOR_HELPER", "/usr/bin/env python3")}
            import json, sys
            store = {str(store)!r}
            action, data = sys.argv[1], sys.stdin.read()
            with open(store + ".log", "a") as f:
                f.write(action + " " + data.strip() + "\\n")
            try:
                creds = json.load(open(store))
            except FileNotFoundError:
                creds = {{}}
            if action == "get":
                if data not in creds:
                    print("credentials not found in native keychain"); sys.exit(1)
                if data == "broken.example":
                    print("the keychain is locked"); sys.exit(3)
                user, secret = creds[data]
                print(json.dumps({{"ServerURL": data, "Username": user, "Secret": secret}}))
            elif action == "store":
                c = json.loads(data)
                creds[c["ServerURL"]] = [c["Username"], c["Secret"]]
                json.dump(creds, open(store, "w"))
            elif action == "erase":
                creds.pop(data, None)
                json.dump(creds, open(store, "w"))
            """
        )
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")

    def log() -> list[str]:
        try:
            return (tmp_path / "store.json.log").read_text().splitlines()
        except FileNotFoundError:
            return []

    return store, log


def test_creds_store_helper_get_store_erase(cfg_dir, helper, capsys):
    store, log = helper
    path = _write(cfg_dir, '{"credsStore": "dyt"}')
    cfg = configfile.load(cfg_dir)
    credentials.store(cfg, {"username": "u", "password": "p", "serveraddress": "reg:5000"})
    credentials.store(cfg, {"username": "u", "identitytoken": "T", "serveraddress": "tok"})
    assert log() == [
        'store {"ServerURL":"reg:5000","Username":"u","Secret":"p"}',
        # Go's json.Encoder escapes HTML characters: the helper reads "\u003ctoken\u003e"
        'store {"ServerURL":"tok","Username":"\\u003ctoken\\u003e","Secret":"T"}',
    ]
    with open(path) as f:  # docker keeps an empty entry per registry, no secret
        assert f.read() == (
            '{\n\t"auths": {\n\t\t"reg:5000": {},\n\t\t"tok": {}\n\t},\n\t"credsStore": "dyt"\n}'
        )
    assert capsys.readouterr().err == ""
    cfg = configfile.load(cfg_dir)
    assert credentials.get(cfg, "reg:5000") == {
        "username": "u",
        "password": "p",
        "serveraddress": "reg:5000",
    }
    assert credentials.get(cfg, "tok") == {"identitytoken": "T", "serveraddress": "tok"}
    assert credentials.get(cfg, "unknown") == {}
    credentials.erase(cfg, "reg:5000")
    assert json.loads(store.read_text()) == {"tok": ["<token>", "T"]}
    assert "reg:5000" not in configfile.load(cfg_dir).auths


def test_cred_helpers_win_over_creds_store_and_errors_name_the_program(cfg_dir, helper):
    store, _log = helper
    store.write_text(json.dumps({"reg:5000": ["u", "p"], "broken.example": ["x", "y"]}))
    _write(
        cfg_dir,
        '{"credsStore": "absent", "credHelpers": {"reg:5000": "dyt", "broken.example": "dyt"}}',
    )
    cfg = configfile.load(cfg_dir)
    assert credentials.get(cfg, "reg:5000")["password"] == "p"
    with pytest.raises(credentials.CredentialsError) as info:
        credentials.get(cfg, "other:1")
    assert str(info.value) == (
        'error getting credentials - err: exec: "docker-credential-absent": executable file '
        "not found in $PATH, out: ``"
    )
    with pytest.raises(credentials.CredentialsError) as info:
        credentials.get(cfg, "broken.example")
    assert str(info.value) == (
        "error getting credentials - err: exit status 3, out: `the keychain is locked`"
    )


def test_a_broken_file_warns_in_a_fresh_cli_process(cfg_dir):
    """In the CLI ``json`` is not imported; the C scanner's syntax error must still surface
    as the standard message (it used to be a SystemError)."""
    import subprocess
    import sys

    _write(cfg_dir, "{bad")
    code = "from dockyard.cli import configfile; import sys; configfile.load(sys.argv[1])"
    res = subprocess.run([sys.executable, "-c", code, cfg_dir], capture_output=True, text=True)
    assert res.returncode == 0
    assert res.stderr == (
        f"WARNING: Error parsing config file ({cfg_dir}/config.json): "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)\n"
    )
