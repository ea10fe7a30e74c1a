from dockyard.build.args import BuildArgs


def test_meta_args_only_in_from_until_redeclared():
    args = BuildArgs({"V": "2"})
    args.declare_meta("V", "1")
    args.declare_meta("BASE", "busybox")
    assert args.meta_env() == {"V": "2", "BASE": "busybox"}
    stage = args.stage()
    assert "BASE" not in stage.values()
    stage.declare("BASE", None)  # re-declared without a value: inherits the meta value
    assert stage.values()["BASE"] == "busybox"


def test_build_arg_overrides_default_and_env_wins():
    args = BuildArgs({"A": "given", "P": None})
    stage = args.stage()
    stage.declare("A", "default")
    stage.declare("B", "b")
    stage.declare("P", None)
    assert stage.values() == {"A": "given", "B": "b"}
    assert stage.expansion_env(["A=from-env"]) == {"A": "from-env", "B": "b"}
    assert stage.for_run(["A=from-env"]) == ["B=b"]
    assert stage.history_prefix([]) == ["|2", "A=given", "B=b"]


def test_proxy_args_are_predefined_but_not_in_history():
    args = BuildArgs({"HTTP_PROXY": "http://p:3128", "UNUSED": "1"})
    stage = args.stage()
    assert stage.values() == {"HTTP_PROXY": "http://p:3128"}
    assert stage.history_prefix([]) == []
    stage.declare("HTTP_PROXY", None)
    assert stage.history_prefix([]) == ["|1", "HTTP_PROXY=http://p:3128"]
    assert args.unused() == ["UNUSED"]
