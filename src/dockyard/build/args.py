"""Build arguments and their scoping, as moby's builder (pure, both worlds).

- ``--build-arg`` values come from the request; one given without a value (``NAME`` with no
  ``=``) takes the client's environment, which the CLI resolves before sending it; a value
  of None here means "not given".
- ARG before the first FROM declares a *meta* arg, usable only in FROM lines unless a stage
  declares it again (``ARG NAME`` without a value then inherits the meta value).
- Inside a stage an ARG is usable from its declaration on; ENV of the same name wins.
- The proxy args (``HTTP_PROXY``...) are predefined: usable without ARG, never written to
  history unless declared.
- A build arg that no ARG (of any stage run, or meta) declares is warned about at the end:
  ``[Warning] One or more build-args [X] were not consumed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BUILTIN", "BuildArgs", "StageArgs"]

BUILTIN = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@dataclass(slots=True)
class BuildArgs:
    """The request's build args and the meta args; records which were consumed."""

    given: dict[str, str | None]
    meta: dict[str, str | None] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def declare_meta(self, name: str, default: str | None) -> None:
        self.used.add(name)
        value = self.given.get(name)
        self.meta[name] = value if value is not None else default

    def meta_env(self) -> dict[str, str]:
        """What FROM lines expand with: meta args that have a value."""
        return {k: v for k, v in self.meta.items() if v is not None}

    def stage(self) -> StageArgs:
        return StageArgs(self)

    def unused(self) -> list[str]:
        return sorted(k for k in self.given if k not in self.used and k not in BUILTIN)


@dataclass(slots=True)
class StageArgs:
    """The ARGs one stage has declared so far, with their values."""

    build: BuildArgs
    declared: dict[str, str | None] = field(default_factory=dict)

    def declare(self, name: str, default: str | None) -> None:
        self.build.used.add(name)
        if name in self.build.given and self.build.given[name] is not None:
            value: str | None = self.build.given[name]
        elif default is not None:
            value = default
        else:
            value = self.build.meta.get(name)
        self.declared[name] = value

    def values(self) -> dict[str, str]:
        """Declared args with a value, plus given builtin proxy args."""
        out = {k: v for k, v in self.build.given.items() if k in BUILTIN and v is not None}
        out.update({k: v for k, v in self.declared.items() if v is not None})
        return out

    def for_run(self, env: list[str]) -> list[str]:
        """``K=V`` for the RUN environment: every arg value that ENV does not override."""
        env_keys = {e.partition("=")[0] for e in env}
        return [f"{k}={v}" for k, v in self.values().items() if k not in env_keys]

    def history_prefix(self, env: list[str]) -> list[str]:
        """moby's prependEnvOnCmd: ``|N K=V...`` of the declared (not builtin-only) args."""
        env_keys = {e.partition("=")[0] for e in env}
        pairs = sorted(
            f"{k}={v}"
            for k, v in self.values().items()
            if k not in env_keys and (k in self.declared or k not in BUILTIN)
        )
        return [f"|{len(pairs)}", *pairs] if pairs else []

    def expansion_env(self, env: list[str]) -> dict[str, str]:
        """Variables for expanding an instruction: args first, ENV over them."""
        out = self.values()
        for item in env:
            key, _, value = item.partition("=")
            out[key] = value
        return out
