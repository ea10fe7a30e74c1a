"""The Dockerfile builder: parser, build context, executor and build cache.  It may use
``images``, ``content``, ``layers``, ``storage`` and ``runtime`` (RUN steps go through the
``StepRunner`` the daemon provides); it must not import ``api``, ``daemon`` or
``containers``."""

from dockyard.build.base import RunMount, RunRequest, StepRunner
from dockyard.build.dockerfile import Dockerfile, ParseError, parse
from dockyard.build.executor import BuildError
from dockyard.build.options import BuildOptions
from dockyard.build.service import BuildService
from dockyard.build.store import Store as BuildStore

__all__ = [
    "BuildError",
    "BuildOptions",
    "BuildService",
    "BuildStore",
    "Dockerfile",
    "ParseError",
    "RunMount",
    "RunRequest",
    "StepRunner",
    "parse",
]
