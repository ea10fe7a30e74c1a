"""Go template semantics; expected strings captured from docker 28.2.2 against a fake daemon
(`docker image inspect --format` for inspect mode, `docker images --format` for lists)."""

from collections.abc import Iterator, Mapping

import pytest

from dockyard.cli.table import tabwrite
from dockyard.cli.template import TemplateError, compile

IMAGE = {
    "Id": "sha256:abc",
    "RepoTags": ["a:b", "c:d"],
    "Config": {
        "Env": ["A=1", "B=<2>"],
        "Labels": {"a": "<b>&", "m": "", "z": "1"},
        "Cmd": None,
    },
    "Extra": {
        "n": None,
        "f": 1700000000,
        "g": 1.5,
        "big": 12345678,
        "t": True,
        "l": [1, "x", None, {"k": []}],
        "e": {},
        "s": "str",
    },
}


def inspect(fmt: str) -> str:
    return compile(fmt, preformat=False, missing_key_error=True).render(IMAGE)


@pytest.mark.parametrize(
    ("fmt", "want"),
    [
        ("{{json .Config.Labels}}", '{"a":"<b>&","m":"","z":"1"}'),
        ("{{.Config.Labels}}", "map[a:<b>& m: z:1]"),
        ("{{.Config.Env}}", "[A=1 B=<2>]"),
        ("{{json .Config.Cmd}}", "null"),
        ("{{.Extra.l}}", "[1 x <nil> map[k:[]]]"),
        ("{{.Extra.n}}", "<no value>"),
        ("{{.Extra.f}} {{.Extra.g}} {{.Extra.big}} {{.Extra.t}}", "1700000000 1.5 12345678 true"),
        ("{{.Extra.e}}", "map[]"),
        ("{{range .Config.Env}}{{.}},{{end}}", "A=1,B=<2>,"),
        ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=<b>&;m=;z=1;"),
        ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:A=1 1:B=<2> "),
        ("{{range .Extra.n}}x{{else}}empty{{end}}", "empty"),
        ('{{index .Config.Labels "a"}}', "<b>&"),
        ("{{index .Extra.l 1}}", "x"),
        ('{{join .Config.Env ","}}', "A=1,B=<2>"),
        ("{{len .Config.Env}}", "2"),
        ("{{.Config.Env | json}}", '["A=1","B=<2>"]'),
        (
            '{{upper .Id}} {{title "hello world"}} {{truncate .Id 5}} [{{pad "x" 1 2}}]',
            "SHA256:ABC Hello World sha25 [ x  ]",
        ),
        ('{{title "hello-world foo_bar o\'neil ñandu"}}', "Hello-World Foo_bar O'Neil Ñandu"),
        ('{{split "a,b" ","}}', "[a b]"),
        ('{{println "a"}}b', "a\nb"),
        ("{{if .Config.Cmd}}yes{{else}}no{{end}}", "no"),
        ('{{print 1 2 "a" "b" 3}}', "1 2ab3"),
        ("x\\ty\\nz", "x\\ty\\nz"),  # inspect does not rewrite \t and \n
        ('  a {{- " b " -}} c  ', "  a b c  "),
        ('{{printf "%s-%d" "a" 3}}', "a-3"),
        ('{{"a" | printf "%s-%s" "b"}}', "b-a"),
        ("{{$x := .Id}}{{$x}}", "sha256:abc"),
        ("{{with .Extra}}{{.s}}{{end}}", "str"),
        ('{{json "<a>&\\u2028"}}', '"<a>&\\u2028"'),
        ("{{range .Config.Env -}}\n {{.}}\n{{- end}}", "A=1B=<2>"),
        (
            '{{if eq .Extra.s "str" "zz"}}y{{end}} {{ne 1 2}} {{lt 1 2}} {{and 1 0}} '
            '{{or 0 "" "x"}} {{not .Extra.e}}',
            "y true true 0 x true",
        ),
        ("{{.Extra.l | index}}", "[1 x <nil> map[k:[]]]"),
        ("{{/* comment */}}ok", "ok"),
        ('{{range .Config.Env}}{{if eq . "A=1"}}{{continue}}{{end}}{{.}}{{end}}', "B=<2>"),
    ],
)
def test_inspect_render(fmt: str, want: str) -> None:
    assert inspect(fmt) == want


@pytest.mark.parametrize(
    ("fmt", "msg"),
    [
        ("{{.Foo", "template: :1: unclosed action"),
        ("{{.Foo}", "template: :1: bad character U+007D '}'"),
        ("{{}}", "template: :1: missing value for command"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{if}}", "template: :1: missing value for if"),
        ("{{range .Config.Env}}", "template: :1: unexpected EOF"),
        ("{{foo}}", 'template: :1: function "foo" not defined'),
        ("{{$y}}", 'template: :1: undefined variable "$y"'),
    ],
)
def test_parse_errors(fmt: str, msg: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile(fmt, preformat=False)
    assert str(info.value) == msg


@pytest.mark.parametrize(
    ("fmt", "msg"),
    [
        ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'),
        (
            "{{.Extra.missing.x}}",
            'template: :1:8: executing "" at <.Extra.missing.x>: '
            'map has no entry for key "missing"',
        ),
        (
            "{{.Extra.s.x}}",
            'template: :1:8: executing "" at <.Extra.s.x>: '
            "can't evaluate field x in type interface {}",
        ),
        (
            "{{index .Extra.l 7}}",
            'template: :1:2: executing "" at <index .Extra.l 7>: '
            "error calling index: index out of range: 7",
        ),
        (
            '{{join .Extra.l ","}}',
            'template: :1:13: executing "" at <.Extra.l>: '
            "wrong type for value; expected []string; got []interface {}",
        ),
        (
            "{{len .Extra.n}}",
            'template: :1:2: executing "" at <len .Extra.n>: error calling len: len of nil pointer',
        ),
        (
            '{{split .Extra.g "."}}',
            'template: :1:14: executing "" at <.Extra.g>: '
            "wrong type for value; expected string; got json.Number",
        ),
        ("{{lower 5}}", 'template: :1:8: executing "" at <5>: expected string; found 5'),
    ],
)
def test_exec_errors(fmt: str, msg: str) -> None:
    with pytest.raises(TemplateError) as info:
        inspect(fmt)
    assert str(info.value) == msg


def test_missing_key_default_is_no_value() -> None:
    assert compile("{{.Nope}}").render({"a": 1}) == "<no value>"
    with pytest.raises(TemplateError, match="nil pointer evaluating interface {}.x"):
        compile("{{.Nope.x}}").render({})


class ImageRow(Mapping[str, str]):
    """Stands in for the CLI's lazily computed context (docker's imageContext)."""

    go_type = "*formatter.imageContext"

    def __init__(self, **fields: str) -> None:
        self._fields = fields

    def __getitem__(self, key: str) -> str:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


ROWS = [
    ImageRow(ID="4f2b2ae1c5e3", Repository="alpine", Tag="latest", Size="1e+03MB", Digest="<none>"),
    ImageRow(
        ID="111111111111",
        Repository="verylongrepositoryname/thing",
        Tag="v1.2.3",
        Size="4.26MB",
        Digest="<none>",
    ),
]
LABELS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Size": "SIZE",
    "Digest": "DIGEST",
}


def docker_list(fmt: str) -> str:
    """What docker's formatter.Context writes: header (table) + one line per row."""
    tmpl = compile(fmt)
    body = "".join(tmpl.render(row) + "\n" for row in ROWS)
    if tmpl.is_table:
        return tabwrite(f"{tmpl.header(LABELS)}\n{body}")
    return body


@pytest.mark.parametrize(
    ("fmt", "want"),
    [
        ("{{json .Digest}}", '"<none>"\n"<none>"\n'),
        ("table {{.Repository}}", "REPOSITORY\nalpine\nverylongrepositoryname/thing\n"),
        (
            "table {{.Repository}}\\t{{.Tag}}",
            "REPOSITORY                     TAG\n"
            "alpine                         latest\n"
            "verylongrepositoryname/thing   v1.2.3\n",
        ),
        (
            "table {{.Repository | upper}}\\t{{lower .Tag}}:{{.ID}}",
            "REPOSITORY                     TAG:IMAGE ID\n"
            "ALPINE                         latest:4f2b2ae1c5e3\n"
            "VERYLONGREPOSITORYNAME/THING   v1.2.3:111111111111\n",
        ),
        ("  {{.ID}}  ", "4f2b2ae1c5e3\n111111111111\n"),
        ("{{.ID}}\\t{{.Tag}}", "4f2b2ae1c5e3\tlatest\n111111111111\tv1.2.3\n"),
        ("table {{.ID}}\\t", "IMAGE ID       \n4f2b2ae1c5e3   \n111111111111   \n"),
        (
            'table {{json .Size}}\\t{{truncate .Repository 3}}\\t{{split .Repository "/"}}'
            "\\t{{index .Repository 0}}",
            "SIZE        REPOSITORY   REPOSITORY                       82\n"
            '"1e+03MB"   alp          [alpine]                         97\n'
            '"4.26MB"    ver          [verylongrepositoryname thing]   118\n',
        ),
    ],
)
def test_list_format(fmt: str, want: str) -> None:
    assert docker_list(fmt) == want


def test_json_shorthand_marshals_context_sorted_and_html_escaped() -> None:
    row = ImageRow(Tag="latest", Digest="<none>")
    assert compile("json").render(row) == '{"Digest":"\\u003cnone\\u003e","Tag":"latest"}'
    assert compile("{{json .}}").render(row) == '{"Digest":"\\u003cnone\\u003e","Tag":"latest"}'


def test_unknown_field_of_context_is_an_error() -> None:
    with pytest.raises(TemplateError) as info:
        compile("table {{.Repository}}\\t{{.Nope}}").render(ROWS[0])
    assert str(info.value) == (
        'template: :1:18: executing "" at <.Nope>: '
        "can't evaluate field Nope in type *formatter.imageContext"
    )


def test_range_over_string_fails() -> None:
    with pytest.raises(TemplateError) as info:
        compile("table {{range .Repository}}x{{end}}").render(ROWS[0])
    assert str(info.value) == (
        'template: :1:8: executing "" at <.Repository>: range can\'t iterate over alpine'
    )


def test_table_flags() -> None:
    assert compile("table").is_table and compile("table").header() == ""
    assert compile("{{.ID}}").header() is None
    assert compile("table {{.CreatedAt}}").header() == "CREATED AT"
