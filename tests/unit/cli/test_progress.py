"""The progress renderer against the docker CLI 28's own text.

``data/progress/<case>.jsonl`` are streams recorded from Debian's dockerd 20.10 (pull of a
three-layer image, ``pull -a``, a push to an htpasswd registry, a push refused for lack of
credentials).  Each was replayed to ``docker pull``/``docker push`` 28.2.2 by a fake engine:
``.out``/``.err`` is what it printed through pipes, ``.tty120``/``.tty80`` what it wrote on a
pty of 120 and 80 columns (ONLCR off, so bytes are the program's own).  The renderer must
produce the same bytes; the command's own lines (the final reference) are added here.
"""

from __future__ import annotations

import io
import json
import os

import pytest

from dockyard.cli.progress import StreamError, display, go_duration, progress_string

DATA = os.path.join(os.path.dirname(__file__), "data", "progress")

# case -> (the line the command prints after the stream on success, or None on error)
CASES = {
    "pull": "127.0.0.1:5911/big:v3\n",
    "pull_all": "127.0.0.1:5911/big\n",
    "push": "",
    "push_err": None,
}


def _read(name: str) -> bytes:
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def _messages(case: str) -> list[dict]:
    return [json.loads(line) for line in _read(f"{case}.jsonl").splitlines() if line.strip()]


def _render(case: str, terminal: bool, width: int) -> tuple[str, str | None]:
    out = io.StringIO()
    error = None
    try:
        display(_messages(case), out, terminal, width)
    except StreamError as exc:
        error = str(exc)
    return out.getvalue(), error


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_output_matches_docker_cli(case):
    text, error = _render(case, False, 200)
    tail = CASES[case]
    if tail is None:
        assert error is not None
        assert (text, error + "\n") == (
            _read(f"{case}.out").decode(),
            _read(f"{case}.err").decode(),
        )
    else:
        assert error is None
        assert text + tail == _read(f"{case}.out").decode()
        assert _read(f"{case}.err") == b""


@pytest.mark.parametrize("width", [120, 80])
@pytest.mark.parametrize("case", sorted(CASES))
def test_terminal_output_matches_docker_cli(case, width):
    text, error = _render(case, True, width)
    tail = CASES[case]
    expected = _read(f"{case}.tty{width}").decode()
    if tail is None:
        assert text + error + "\n" == expected
    else:
        assert text + tail == expected


def test_bars_only_on_wide_terminals_and_numbers_as_go_units():
    detail = {"current": 1_500_000, "total": 3_000_000}
    assert (
        progress_string(detail, 111) == "[=========================>" + " " * 25 + "]    1.5MB/3MB"
    )
    assert progress_string(detail, 110) == "   1.5MB/3MB"
    assert progress_string({}, 200) == ""
    assert progress_string({"current": 2048}, 200) == " 2.048kB"
    assert progress_string({"current": 5, "total": 3}, 80) == "      5B"
    assert progress_string({"current": 2, "total": 4, "units": "layers"}, 80) == "2/4 layers"
    assert progress_string({"current": 2, "total": 4, "hidecounts": True}, 80) == ""


def test_time_left_when_the_stream_gives_a_start():
    detail = {"current": 1000, "total": 3000, "start": 1000}
    assert progress_string(detail, 80, now=1010.0) == "     1kB/3kB 20s"
    assert progress_string(detail, 50, now=1010.0) == "     1kB/3kB"


def test_go_duration():
    assert [go_duration(s) for s in (0, 5, 65, 3600, 7325)] == [
        "0s",
        "5s",
        "1m5s",
        "1h0m0s",
        "2h2m5s",
    ]


def test_aux_goes_to_the_callback_and_discarding_output_still_reports_errors():
    seen = []
    messages = [{"aux": {"Tag": "v1"}}, {"errorDetail": {"message": "boom"}, "error": "boom"}]
    with pytest.raises(StreamError, match="boom"):
        display(iter(messages), None, False, aux=seen.append)
    assert seen == [{"aux": {"Tag": "v1"}}]


def test_a_line_without_id_forgets_the_screen_lines():
    out = io.StringIO()
    messages = [
        {"status": "Waiting", "progressDetail": {}, "id": "a"},
        {"status": "Digest: x"},
        {"status": "Done", "progressDetail": {}, "id": "a"},
    ]
    display(messages, out, True, 80)
    assert out.getvalue() == (
        "\n\x1b[1A\x1b[2K\ra: Waiting \r\x1b[1BDigest: x\n\n\x1b[1A\x1b[2K\ra: Done \r\x1b[1B"
    )
