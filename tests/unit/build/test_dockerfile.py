import pytest

from dockyard.build.dockerfile import ParseError, parse, split_words
from dockyard.errors import InvalidParameter


def only(text):
    df = parse("FROM busybox\n" + text)
    (instruction,) = df.stages[0].instructions
    return instruction


def test_stages_and_meta_args():
    df = parse(
        "ARG BASE=busybox\nFROM ${BASE} AS Build\nRUN true\nFROM build\nCOPY --from=build /a /b\n"
    )
    assert [a.pairs for a in df.meta_args] == [(("BASE", "busybox"),)]
    assert [(s.base, s.name) for s in df.stages] == [("${BASE}", "build"), ("build", "")]
    assert df.stage("BUILD") is df.stages[0]
    assert df.stages[1].instructions[0].flags == {"from": "build"}


def test_instructions_are_case_insensitive_and_keep_original():
    ins = only("run   echo hi")
    assert ins.keyword == "RUN"
    assert ins.args == ("echo hi",)
    assert ins.original == "run   echo hi"


def test_from_platform_flag():
    df = parse("FROM --platform=linux/amd64 busybox AS a\n")
    assert df.stages[0].platform == "linux/amd64"


def test_continuations_comments_and_blank_lines_inside():
    df = parse("FROM busybox\nRUN echo a \\\n# a comment\n\n    && echo b\nRUN x\n")
    first, second = df.stages[0].instructions
    assert first.args == ("echo a     && echo b",)
    assert (first.line, first.end_line) == (2, 5)
    assert second.line == 6
    assert df.warnings and "Empty continuation" in df.warnings[0]


def test_continuation_allows_trailing_whitespace_after_escape():
    assert only("RUN a \\  \n b").args == ("a  b",)


def test_escape_directive_backtick():
    df = parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo x\n")
    assert df.directives.escape == "`"
    assert df.stages[0].instructions[0].args == ("dir c:\\   && echo x",)


def test_directives_only_at_top_and_syntax_check_kept():
    df = parse("# syntax=docker/dockerfile:1\n# check=skip=all\nFROM busybox\n# escape=`\n")
    assert df.directives.syntax == "docker/dockerfile:1"
    assert df.directives.check == "skip=all"
    assert df.directives.escape == "\\"
    df = parse("# comment\n# escape=`\nFROM busybox\n")
    assert df.directives.escape == "\\"


def test_directive_errors():
    with pytest.raises(ParseError, match="line 2: only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM busybox\n")
    with pytest.raises(ParseError, match="invalid escape token"):
        parse("# escape=x\nFROM busybox\n")


def test_json_and_shell_forms():
    assert only('CMD ["a", "b c"]').args == ("a", "b c")
    assert only('CMD ["a", "b c"]').json
    assert only("CMD a b").args == ("a b",)
    assert not only("CMD a b").json
    # Not valid JSON: shell form, as moby.
    assert only("CMD [a, b]").args == ("[a, b]",)
    with pytest.raises(ParseError, match="arrays must be comprised of strings only"):
        parse('FROM busybox\nCMD ["a", 1]\n')


def test_shell_requires_json():
    assert only('SHELL ["/bin/bash", "-c"]').args == ("/bin/bash", "-c")
    with pytest.raises(ParseError, match="SHELL requires the arguments to be in JSON form"):
        parse("FROM busybox\nSHELL /bin/bash -c\n")


def test_env_and_label_forms():
    assert only("ENV A=1 B=\"x y\" C='z'").pairs == (("A", "1"), ("B", '"x y"'), ("C", "'z'"))
    legacy = only("ENV PATH /usr/bin:/bin  more")
    assert legacy.pairs == (("PATH", "/usr/bin:/bin  more"),)
    assert legacy.legacy_kv
    assert only('LABEL "a b"=c d=e').pairs == (('"a b"', "c"), ("d", "e"))
    with pytest.raises(ParseError, match="can't find = in 'B'"):
        parse("FROM busybox\nENV A=1 B\n")
    with pytest.raises(ParseError, match="ENV must have two arguments"):
        parse("FROM busybox\nENV A\n")
    with pytest.raises(ParseError, match="ENV names can not be blank"):
        parse("FROM busybox\nENV =x\n")


def test_arg_forms():
    assert only("ARG A").pairs == (("A", None),)
    assert only("ARG A=1 B").pairs == (("A", "1"), ("B", None))
    assert only("ARG A=").pairs == (("A", ""),)


def test_copy_add_flags_and_arguments():
    ins = only(
        "COPY --from=stage --chown=1:2 --chmod=644 --link --parents --exclude=*.md "
        "--exclude=x a b /dst/"
    )
    assert ins.flags == {
        "from": "stage",
        "chown": "1:2",
        "chmod": "644",
        "link": True,
        "parents": True,
        "exclude": ["*.md", "x"],
    }
    assert ins.args == ("a", "b", "/dst/")
    assert only('COPY ["a b", "/d"]').args == ("a b", "/d")
    assert only("ADD --checksum=sha256:abc --link=false x /y").flags == {
        "checksum": "sha256:abc",
        "link": False,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("COPY --frm=a b c", "Unknown flag: frm"),
        ("COPY --from=a --from=b c d", "duplicate flag specified: from"),
        ("COPY --from c d", "missing a value on flag: from"),
        ("COPY --link=maybe c d", "expecting boolean value for flag link, not: maybe"),
        ("ADD --parents a b", "Unknown flag: parents"),
        ("RUN --mount=type=cache,target=/x --nope=1 true", "Unknown flag: nope"),
        ("USER --x=1 root", "Unknown flag: x"),
        ("COPY onlyone", "COPY requires at least two arguments"),
        ("FOO bar", "unknown instruction: FOO"),
        ("VOLUME", "VOLUME specified can not be an empty string"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK BAD x", "Unknown type 'BAD' in HEALTHCHECK"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("ONBUILD COPY --bad=1 a b", "Unknown flag: bad"),
        ("USER", "USER requires exactly one argument"),
        ("RUN", "RUN requires at least one argument"),
        ("STOPSIGNAL A B", "STOPSIGNAL requires exactly one argument"),
    ],
)
def test_bad_instructions_name_their_line(line, message):
    with pytest.raises(ParseError) as info:
        parse(f"FROM busybox\n# a comment\n{line}\n", "Dockerfile.dev")
    assert info.value.line == 3
    assert "line 3 of Dockerfile.dev" in info.value.message
    assert message in info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a b\n", "FROM requires either one or three arguments"),
        ("FROM a is b\n", "Expected 'AS' or 'as'"),
        ("FROM a AS 1x\n", "invalid name for build stage"),
        ("FROM a AS x\nFROM b AS X\n", "duplicate stage name 'x'"),
        ("RUN x\nFROM a\n", "only ARG may come before FROM"),
        ("ARG A\n", "no FROM instruction"),
    ],
)
def test_bad_from(text, message):
    with pytest.raises(ParseError, match=message):
        parse(text)


def test_empty_dockerfile():
    with pytest.raises(InvalidParameter, match="cannot be empty"):
        parse("# only a comment\n\n")


def test_healthcheck():
    ins = only('HEALTHCHECK --interval=5s --retries=3 CMD ["curl", "x"]')
    assert ins.args == ("CMD", "curl", "x")
    assert ins.json
    assert ins.flags == {"interval": "5s", "retries": "3"}
    assert only("HEALTHCHECK CMD curl x || exit 1").args == ("CMD", "curl x || exit 1")
    assert only("HEALTHCHECK NONE").args == ("NONE",)


def test_onbuild_trigger_parsed():
    ins = only("ONBUILD COPY --chown=1 . /app")
    assert ins.trigger is not None
    assert ins.trigger.keyword == "COPY"
    assert ins.trigger.flags == {"chown": "1"}
    assert ins.args == ("COPY --chown=1 . /app",)


def test_heredocs():
    df = parse(
        "FROM busybox\n"
        "RUN <<EOF\n"
        "echo $HOME\n"
        "EOF\n"
        "COPY <<one <<'two' /dst/\n"
        "first\n"
        "one\n"
        "second $X\n"
        "two\n"
        "RUN <<-END cat\n"
        "\t\tindented\n"
        "\tEND\n"
        "RUN echo '<<NOT'\n"
    )
    run, copy, chomped, plain = df.stages[0].instructions
    assert run.heredocs[0].name == "EOF"
    assert run.heredocs[0].content == "echo $HOME\n"
    assert run.heredocs[0].expand
    assert [(h.name, h.content, h.expand) for h in copy.heredocs] == [
        ("one", "first\n", True),
        ("two", "second $X\n", False),
    ]
    assert copy.args == ("<<one", "<<'two'", "/dst/")
    assert chomped.heredocs[0].content == "indented\n"
    assert chomped.heredocs[0].chomp
    assert plain.heredocs == ()
    assert plain.line == 13


def test_heredoc_only_for_run_copy_add():
    assert only("CMD cat <<EOF").heredocs == ()


def test_unterminated_heredoc():
    with pytest.raises(ParseError, match="line 2: unterminated heredoc 'EOF'"):
        parse("FROM busybox\nRUN <<EOF\necho\n")


def test_bom_and_crlf():
    df = parse("\ufeffFROM busybox\r\nRUN echo hi\r\n")
    assert df.stages[0].instructions[0].args == ("echo hi",)


def test_split_words_keeps_quotes():
    assert split_words('a \'b c\' "d\\"e" f\\ g', "\\") == ["a", "'b c'", '"d\\"e"', "f\\ g"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('ENV A="unterminated', "matching double-quote"),
        ("LABEL a='open", "matching single-quote"),
        ("WORKDIR ${X", "missing '}'"),
        ("COPY ${} /x", "bad substitution"),
    ],
)
def test_bad_quotes_and_substitutions_are_parse_errors(line, message):
    with pytest.raises(ParseError, match=f"line 2: .*{message}"):
        parse(f"FROM busybox\n{line}\n")


def test_unset_checks_are_not_parse_errors():
    parse('FROM busybox\nARG V\nENV A="${V:?V must be set}"\nRUN echo \'unbalanced\n')
