import pytest

from dockyard.dockerignore import Matcher, read_patterns


def test_read_patterns_cleans_and_skips_comments():
    text = "# comment\n\n  ./a/../b  \n/abs\n! keep\n!/x/y/\n"
    assert read_patterns(text) == ["b", "abs", "!keep", "!x/y"]


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),
        (["**/*.md"], "docs/a/README.md", True),
        (["**/*.md"], "README.md", True),
        (["docs"], "docs/a/b.txt", True),
        (["docs/**"], "docs/a/b.txt", True),
        (["a?c"], "abc", True),
        (["a?c"], "a/c", False),
        (["*", "!keep"], "keep", False),
        (["*", "!keep"], "other", True),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md", "README.md"], "README.md", True),
        (["node_modules"], "node_modules", True),
        (["a.b"], "axb", False),
        (["[ab].txt"], "a.txt", True),
        (["**"], "anything/at/all", True),
        (["dir/**/x"], "dir/x", True),
        (["dir/**/x"], "dir/a/b/x", True),
    ],
)
def test_matching(patterns, path, ignored):
    assert Matcher(patterns).ignored(path) is ignored


def test_exclusions_make_directories_walkable():
    m = Matcher(["build", "!build/keep.txt"])
    assert m.has_exclusions
    assert m.ignored("build/other")
    assert not m.ignored("build/keep.txt")
    assert m.may_include_below("build")
    assert not Matcher(["build", "!src/x"]).may_include_below("build")
