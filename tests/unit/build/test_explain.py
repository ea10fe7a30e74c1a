from dockyard.build.explain import Facts, reason


def test_first_build_and_changed_instruction():
    facts = Facts("RUN make", "sha256:p")
    assert reason(facts, [], []) == "first build of this instruction here"
    assert reason(facts, [], ["RUN make all"]) == (
        "instruction changed: this parent was last followed by 'RUN make all'"
    )


def test_args_and_files_named_on_the_same_parent():
    old = Facts("COPY . /src", "sha256:p", {"A": "1", "B": "2"}, {"a": "x", "b": "y", "c": "z"})
    new = Facts("COPY . /src", "sha256:p", {"A": "9", "C": "3"}, {"a": "x", "b": "Y", "d": "w"})
    assert reason(new, [old], []) == (
        "build args changed: A, B (gone), C (new); sources changed: b, c (removed), d (added)"
    )


def test_parent_changed_uses_newest_facts_elsewhere():
    older = Facts("RUN x", "sha256:a", {"A": "0"})
    newer = Facts("RUN x", "sha256:b", {"A": "1"})
    facts = Facts("RUN x", "sha256:c", {"A": "1"})
    assert reason(facts, [newer, older], []) == (
        "parent changed (an earlier step, or the FROM image, is not the same)"
    )


def test_same_parts_means_expansion_changed_or_image_gone():
    facts = Facts("ENV A=$B", "sha256:p")
    assert "expanded arguments" in reason(facts, [facts], [])
    assert "was removed" in reason(facts, [], [], image_gone=True)


def test_many_files_are_cut_short():
    old = Facts("COPY . /", "p", files={str(i): "a" for i in range(20)})
    new = Facts("COPY . /", "p", files={str(i): "b" for i in range(20)})
    assert reason(new, [old], []).endswith("and 12 more")


def test_facts_round_trip():
    facts = Facts("RUN x", "p", {"A": "1"}, {"f": "d"})
    assert Facts.decode("RUN x", "p", facts.encode()) == facts
