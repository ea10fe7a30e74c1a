import pytest

from dockyard.cli.flags import Flag, FlagError, parse

FLAGS = [
    Flag("all", "a"),
    Flag("quiet", "q"),
    Flag("filter", "f", "list"),
    Flag("format", "", "str"),
    Flag("time", "t", "int"),
]


def test_pflag_rules():
    values, args = parse(
        FLAGS, ["-aq", "--filter", "a=b", "-fc=d", "x", "--format={{.ID}}", "-t5", "--", "-z"]
    )
    assert values["all"] and values["quiet"]
    assert values["filter"] == ["a=b", "c=d"]
    assert values["format"] == "{{.ID}}" and values["time"] == 5
    assert args == ["x", "-z"]
    values, _ = parse(FLAGS, ["--all=false"])
    assert values["all"] is False


def test_not_interspersed_stops_at_first_positional():
    values, args = parse(FLAGS, ["-a", "busybox", "ls", "-q"], interspersed=False)
    assert values["all"] and not values["quiet"] and args == ["busybox", "ls", "-q"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--bogus"], "unknown flag: --bogus"),
        (["-z"], "unknown shorthand flag: 'z' in -z"),
        (["--format"], "flag needs an argument: --format"),
        (["-t", "x"], 'invalid argument "x"'),
    ],
)
def test_errors(argv, message):
    with pytest.raises(FlagError, match=message):
        parse(FLAGS, argv)
