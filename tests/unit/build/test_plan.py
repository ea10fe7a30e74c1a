import pytest

from dockyard.build.context import Context
from dockyard.build.executor import Build
from dockyard.build.options import BuildOptions
from dockyard.dockerignore import Matcher
from dockyard.errors import InvalidParameter

DOCKERFILE = b"""\
ARG TOOLS=tools
FROM busybox AS tools
FROM busybox AS unused
FROM busybox AS lib
RUN --mount=type=bind,from=${TOOLS},target=/t true
FROM lib AS app
COPY --from=1 /x /y
FROM busybox AS final
COPY --from=app /a /a
"""


def plan(dockerfile: bytes, target: str = "") -> list[str]:
    context = Context("/nonexistent", dockerfile, "Dockerfile", Matcher([]))
    build = Build(None, None, None, context, BuildOptions(target=target), None)  # type: ignore[arg-type]
    build._meta()
    return [s.name for s in build.plan()]


def test_only_needed_stages_are_planned():
    assert plan(DOCKERFILE) == ["tools", "unused", "lib", "app", "final"]
    assert plan(DOCKERFILE, "lib") == ["tools", "lib"]
    assert plan(b"FROM busybox AS a\nFROM busybox AS b\nRUN true\n") == ["b"]


def test_unknown_target_and_forward_reference():
    with pytest.raises(InvalidParameter, match="failed to reach build target nope"):
        plan(DOCKERFILE, "nope")
    with pytest.raises(InvalidParameter, match="used before it is defined"):
        plan(b"FROM busybox AS a\nCOPY --from=b /x /\nFROM busybox AS b\n", "a")
