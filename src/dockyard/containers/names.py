"""Container names: validation and Docker-style random names (pure logic)."""

from __future__ import annotations

import random
import re

from dockyard.errors import InvalidParameter

__all__ = ["random_name", "validate"]

_VALID = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")

_LEFT = (
    "admiring",
    "brave",
    "clever",
    "dazzling",
    "eager",
    "festive",
    "gallant",
    "happy",
    "inspiring",
    "jolly",
    "keen",
    "loving",
    "modest",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
    "bold",
    "calm",
    "elegant",
    "focused",
    "gifted",
)
_RIGHT = (
    "turing",
    "hopper",
    "lovelace",
    "ritchie",
    "thompson",
    "torvalds",
    "knuth",
    "dijkstra",
    "hamilton",
    "curie",
    "noether",
    "shannon",
    "babbage",
    "liskov",
    "kay",
    "lamport",
    "mccarthy",
    "pike",
    "wirth",
    "backus",
    "cerf",
    "engelbart",
    "hoare",
    "johnson",
    "kernighan",
    "minsky",
    "naur",
    "perlman",
    "stallman",
    "wozniak",
)


def validate(name: str) -> str:
    """Return the stored form (leading ``/``) of a user-given name, or refuse it."""
    if not _VALID.fullmatch(name):
        raise InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name if name.startswith("/") else "/" + name


def random_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"/{random.choice(_LEFT)}_{random.choice(_RIGHT)}"
        if name not in taken:
            return name
    return f"/{random.choice(_LEFT)}_{random.choice(_RIGHT)}{random.randint(0, 99999)}"
