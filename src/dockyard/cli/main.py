"""``dockyard``: the docker-compatible command line (CLI world: synchronous, starts fast).

Global flags are parsed here; the command table maps each command (and its docker aliases:
``images`` = ``image ls``) to ``module:function`` in ``cli/commands``, so only that module is
imported.  Exit codes as docker's: 125 for usage errors, 1 for daemon errors.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import Flag, FlagError, parse

__all__ = ["Cli", "main"]

GLOBAL_FLAGS = [
    Flag("host", "H", "list", help="Daemon socket to connect to"),
    Flag("tls", help="Use TLS; implied by --tlsverify"),
    Flag("tlsverify", help="Use TLS and verify the remote"),
    Flag("tlscacert", kind="str", default="", help="Trust certs signed only by this CA"),
    Flag("tlscert", kind="str", default="", help="Path to TLS certificate file"),
    Flag("tlskey", kind="str", default="", help="Path to TLS key file"),
    Flag("debug", "D", help="Enable debug mode"),
    Flag("log-level", "l", "str", default="info", help="Set the logging level"),
    Flag("config", kind="str", default="", help="Location of client config files"),
    Flag("context", "c", "str", default="", help="Ignored: dockyard has no contexts"),
    Flag("version", "v", help="Print version information and quit"),
    Flag("help", "h", help="Print usage"),
]

# command words -> "module:function" in dockyard.cli.commands
COMMANDS: dict[tuple[str, ...], str] = {
    ("version",): "system:version",
    ("registry",): "registry:registry",
    ("info",): "system:info",
    ("system", "info"): "system:info",
    ("system", "df"): "system:df",
    ("events",): "system:events",
    ("system", "events"): "system:events",
    ("inspect",): "system:inspect",
    ("images",): "image:ls",
    ("image", "ls"): "image:ls",
    ("image", "list"): "image:ls",
    ("image", "inspect"): "image:inspect",
    ("history",): "image:history",
    ("image", "history"): "image:history",
    ("tag",): "image:tag",
    ("image", "tag"): "image:tag",
    ("rmi",): "image:rm",
    ("image", "rm"): "image:rm",
    ("image", "remove"): "image:rm",
    ("import",): "image:import_",
    ("image", "import"): "image:import_",
    ("save",): "image:save",
    ("image", "save"): "image:save",
    ("load",): "image:load",
    ("image", "load"): "image:load",
    ("image", "prune"): "image:prune",
    ("pull",): "distribution:pull",
    ("image", "pull"): "distribution:pull",
    ("push",): "distribution:push",
    ("image", "push"): "distribution:push",
    ("login",): "login:login",
    ("logout",): "login:logout",
    ("search",): "search:search",
    ("run",): "run:run",
    ("container", "run"): "run:run",
    ("create",): "run:create",
    ("container", "create"): "run:create",
    ("start",): "run:start",
    ("container", "start"): "run:start",
    ("attach",): "run:attach",
    ("container", "attach"): "run:attach",
    ("exec",): "run:exec_",
    ("container", "exec"): "run:exec_",
    ("stop",): "container:stop",
    ("container", "stop"): "container:stop",
    ("restart",): "container:restart",
    ("container", "restart"): "container:restart",
    ("kill",): "container:kill",
    ("container", "kill"): "container:kill",
    ("pause",): "container:pause",
    ("container", "pause"): "container:pause",
    ("unpause",): "container:unpause",
    ("container", "unpause"): "container:unpause",
    ("wait",): "container:wait",
    ("container", "wait"): "container:wait",
    ("rm",): "container:rm",
    ("container", "rm"): "container:rm",
    ("logs",): "container:logs",
    ("container", "logs"): "container:logs",
    ("top",): "container:top",
    ("container", "top"): "container:top",
    ("rename",): "container:rename",
    ("container", "rename"): "container:rename",
    ("port",): "container:port",
    ("container", "port"): "container:port",
    ("stats",): "resources:stats",
    ("container", "stats"): "resources:stats",
    ("diff",): "container:diff",
    ("container", "diff"): "container:diff",
    ("export",): "container:export",
    ("container", "export"): "container:export",
    ("update",): "resources:update",
    ("container", "update"): "resources:update",
    ("cp",): "cp:cp",
    ("container", "cp"): "cp:cp",
    ("ps",): "container:ps",
    ("container", "ps"): "container:ps",
    ("container", "ls"): "container:ps",
    ("container", "list"): "container:ps",
    ("container", "remove"): "container:rm",
    ("container", "inspect"): "container:inspect",
    ("container", "prune"): "container:prune",
    ("volume", "create"): "volume:create",
    ("volume", "ls"): "volume:ls",
    ("volume", "list"): "volume:ls",
    ("volume", "inspect"): "volume:inspect",
    ("volume", "rm"): "volume:rm",
    ("volume", "remove"): "volume:rm",
    ("volume", "prune"): "volume:prune",
    ("network", "create"): "network:create",
    ("network", "ls"): "network:ls",
    ("network", "list"): "network:ls",
    ("network", "inspect"): "network:inspect",
    ("network", "rm"): "network:rm",
    ("network", "remove"): "network:rm",
    ("network", "prune"): "network:prune",
    ("network", "connect"): "network:connect",
    ("network", "disconnect"): "network:disconnect",
}

USAGE = """
Usage:  dockyard [OPTIONS] COMMAND

A Docker-compatible container engine

Commands:
  attach      Attach local standard input, output, and error streams to a running container
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  events      Get real time events from the server
  exec        Execute a command in a running container
  export      Export a container's filesystem as a tar archive
  history     Show the history of an image
  images      List images
  import      Import the contents from a tarball to create a filesystem image
  info        Display system-wide information
  inspect     Return low-level information on Docker objects
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  login       Authenticate to a registry
  logout      Log out from a registry
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  ps          List containers
  pull        Download an image from a registry
  push        Upload an image to a registry
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  run         Create and run a new container from an image
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  search      Search Docker Hub for images
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  version     Show the Docker version information
  wait        Block until one or more containers stop, then print their exit codes

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  registry    Run an OCI registry (serve, gc)
  system      Manage Docker
  volume      Manage volumes

Run 'dockyard COMMAND --help' for more information on a command.
"""


class Cli:
    """What a command needs: the client (made on first use), output streams, global flags."""

    def __init__(self, options: dict[str, object]) -> None:
        self.options = options
        self._client = None
        self._config_file = None
        self.out = sys.stdout
        self.err = sys.stderr

    @property
    def host(self) -> str:
        hosts = self.options["host"]
        if hosts:
            return hosts[-1]  # type: ignore[index]
        from dockyard.client import default_host

        return default_host()

    @property
    def config_file(self):  # type: ignore[no-untyped-def]
        """config.json (``--config``, ``DOCKER_CONFIG``, ``~/.docker``), read on first use."""
        if self._config_file is None:
            from dockyard.cli import configfile

            self._config_file = configfile.load(configfile.config_dir(str(self.options["config"])))
        return self._config_file

    @property
    def client(self):  # type: ignore[no-untyped-def]
        if self._client is None:
            from dockyard.client import Client, TLSOptions

            tls = None
            opts = self.options
            verify = bool(opts["tlsverify"]) or bool(os.environ.get("DOCKER_TLS_VERIFY"))
            if opts["tls"] or verify:
                cert_path = os.environ.get("DOCKER_CERT_PATH", os.path.expanduser("~/.docker"))
                tls = TLSOptions(
                    verify,
                    str(opts["tlscacert"] or os.path.join(cert_path, "ca.pem")),
                    str(opts["tlscert"] or os.path.join(cert_path, "cert.pem")),
                    str(opts["tlskey"] or os.path.join(cert_path, "key.pem")),
                )
            self._client = Client(self.host, tls)
        return self._client


def _lookup(words: list[str]) -> tuple[tuple[str, ...], str] | None:
    for n in (2, 1):
        key = tuple(words[:n])
        if key in COMMANDS:
            return key, COMMANDS[key]
    return None


def run(argv: list[str]) -> int:
    try:
        options, rest = parse(GLOBAL_FLAGS, argv, interspersed=False)
    except FlagError as exc:
        sys.stderr.write(f"{exc}\nSee 'dockyard --help'.\n")
        return 125
    if options["version"]:
        from dockyard import __version__

        sys.stdout.write(f"Dockyard version {__version__}\n")
        return 0
    if not rest or options["help"]:
        sys.stdout.write(USAGE)
        return 0
    found = _lookup(rest)
    if found is None:
        if rest[0] in ("container", "image", "network", "system", "volume"):
            sys.stdout.write(
                f"\nUsage:  dockyard {rest[0]} COMMAND\n\nRun 'dockyard {rest[0]} COMMAND --help' for more information.\n"
            )
            return 0 if len(rest) == 1 else 1
        sys.stderr.write(
            f"dockyard: '{rest[0]}' is not a dockyard command.\nSee 'dockyard --help'\n"
        )
        return 1
    words, target = found
    module_name, func_name = target.split(":")
    module = __import__(f"dockyard.cli.commands.{module_name}", fromlist=[func_name])
    command = getattr(module, func_name)
    return command.invoke(Cli(options), " ".join(words), rest[len(words) :])


def main() -> None:
    try:
        code = run(sys.argv[1:])
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
