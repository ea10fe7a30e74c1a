import pytest

from dockyard.build.expand import ExpandError, expand, expand_words

ENV = {"A": "a", "E": "", "W": "two words", "P": "/usr/local/bin"}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("$A", "a"),
        ("${A}", "a"),
        ("x${A}y", "xay"),
        ("$UNSET", ""),
        ("${UNSET:-def}", "def"),
        ("${E:-def}", "def"),
        ("${E-def}", ""),
        ("${UNSET-def}", "def"),
        ("${A:+alt}", "alt"),
        ("${E:+alt}", ""),
        ("${E+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-$A}", "a"),
        ("${UNSET:-${A}x}", "ax"),
        ("'$A'", "$A"),
        ('"$A"', "a"),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ('"a\\"b"', 'a"b'),
        ('"a\\nb"', "a\\nb"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("$1", ""),
        ("${P#*/}", "usr/local/bin"),
        ("${P##*/}", "bin"),
        ("${P%/*}", "/usr/local"),
        ("${P%%/l*}", "/usr"),
        ("${P/local/opt}", "/usr/opt/bin"),
        ("${P//\\//:}", ":usr:local:bin"),
    ],
)
def test_expand(text, want):
    assert expand(text, ENV) == want


def test_escape_backtick():
    assert expand("a`$A", ENV, escape="`") == "a$A"
    assert expand("a\\b", ENV, escape="`") == "a\\b"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("a b  c", ["a", "b", "c"]),
        ("$W", ["two", "words"]),
        ('"$W"', ["two words"]),
        ('""', [""]),
        ("'a b' c", ["a b", "c"]),
        ("x$W", ["xtwo", "words"]),
        ("a\\ b", ["a b"]),
    ],
)
def test_words(text, want):
    assert expand_words(text, ENV) == want


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'abc", "single-quote"),
        ('"abc', "double-quote"),
        ("${A", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:a}", "bad substitution"),
        ("${UNSET:?must be set}", "UNSET: must be set"),
        ("${E:?}", "E: is not allowed to be empty"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${A:=x}", "unsupported modifier (=)"),
    ],
)
def test_errors(text, message):
    with pytest.raises(ExpandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(text, ENV)


def test_raw_expansion_keeps_quotes_and_escapes():
    from dockyard.build.expand import expand_raw

    text = "echo \"$A\" '$A' \\$A $W\n"
    assert expand_raw(text, ENV) == "echo \"a\" '$A' \\$A two words\n"


@pytest.mark.parametrize(
    ("text", "env", "want"),
    [
        # Cases from buildkit's shell/lex_test.go (TestProcessWithMatches).
        ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc"),
        ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc"),
        ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb "),
        ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  "),
        ("${BAR?bbb}", {"BAR": ""}, ""),
        ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
        ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
        ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
        ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
        ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
            "/tmp/bar.txt - /bar.txt",
        ),
        (
            "${FOO/$N/$R} - ${FOO//$N/$R}",
            {"FOO": "/a/foo/b/c.txt", "N": "/?/", "R": "/"},
            "/foo/b/c.txt - /foo/c.txt",
        ),
        (
            "${FOO/$N/$R}",
            {"FOO": "http://google.de", "N": "http://", "R": "https://"},
            "https://google.de",
        ),
        ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ],
)
def test_buildkit_cases(text, env, want):
    assert expand(text, env) == want


@pytest.mark.parametrize(
    "text", ["${BAZ?ccc}", "${BAR:?bbb}", "${FOO=aaa}", "${FOO=:aaa}", "${FOO//ww}", "${FOO//}"]
)
def test_buildkit_error_cases(text):
    with pytest.raises(ExpandError):
        expand(text, {"FOO": "xxx", "BAR": ""})
