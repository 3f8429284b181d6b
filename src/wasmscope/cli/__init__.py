"""The ``wasmscope`` command: one argparse command group, one module per
subcommand (``cli/inspect.py``; ``run``, ``profile`` and ``serve`` will follow).

Each command module defines ``HELP`` (one line), ``DESCRIPTION``, ``EPILOG``,
``configure(parser)`` and ``run(args) -> int``, and keeps its heavy imports
inside ``run`` so that ``wasmscope --help`` stays instant.

Exit status: 0 success, 1 the input is not valid Wasm (or another failure
of the command), 2 usage error (bad options, a file that cannot be read),
3 internal error (a bug), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["EXIT_DECODE", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "CommandError", "build_parser", "main"]

EXIT_OK = 0
EXIT_DECODE = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

PROG = "wasmscope"

# name -> module; imported to build the parser (cheap: argparse only).
COMMANDS: dict[str, str] = {
    "inspect": "wasmscope.cli.inspect",
    "run": "wasmscope.cli.run",
    "profile": "wasmscope.cli.profile",
    "serve": "wasmscope.cli.serve",
    "collect": "wasmscope.cli.collect",
    "guard": "wasmscope.cli.guard",
    "cost": "wasmscope.cli.cost",
}

_DESCRIPTION = """\
Observability for WebAssembly: see what a module or component is, what it
can do, what it is made of and what it costs.
"""

_EPILOG = """\
commands:
  inspect   sections and sizes, imports grouped into capabilities, exports,
            memories, producers and toolchain, features used, biggest
            functions, debug info of a .wasm module or component
  run       run a WASI module or command component under wasmtime with
            limits and record it: times, fuel, memory, exit or trap with
            symbolized frames; OpenTelemetry out
  profile   run a WASI module instrumented and sampled: top functions with
            exact call counts, speedscope/pprof/collapsed/SVG flame graph,
            the whole stack on a trap
  serve     serve WAGI handlers over HTTP, a fresh instance per request,
            with limits (timeout 504, trap 500, 413, 503), health, JSON log
  collect   an OTLP collector (HTTP and gRPC) with an embedded ClickHouse
            store and a dashboard made for Wasm functions
  guard     a module's imports against a capability policy (TOML) before it
            runs; the least-privilege policy learned from recorded runs
  cost      what invocations cost: wall, CPU, fuel and memory per function
            (min/avg/p50/p95/p99/max), priced by a provider's price sheet

examples:
  wasmscope inspect app.wasm                 human-readable report
  wasmscope inspect --json app.wasm | jq .toolchain
  wasmscope inspect --deep --top 20 app.wasm scan every instruction for features
  wasmscope inspect --help                   all options of inspect
  wasmscope run --timeout 2s app.wasm -- a b run with a limit, then a summary
  wasmscope profile --svg app.svg app.wasm   top functions and a flame graph
  wasmscope serve app.toml --port 8080       WAGI handlers over HTTP
  wasmscope collect                          receive OTLP, open the dashboard URL it prints
  wasmscope guard check app.wasm --policy p.toml   imports against a policy
  wasmscope cost summary runs.jsonl --price aws-lambda-arm64   what the runs cost

exit status:
  0 success, 1 not valid WebAssembly, 2 usage error (bad option, unreadable
  file), 3 internal error (please report it; WASMSCOPE_DEBUG=1 shows the traceback)

Colour is used only on a terminal and never when NO_COLOR is set.
"""


class CommandError(Exception):
    """A failure a command reports as one line: ``wasmscope: error: MESSAGE``."""

    def __init__(self, message: str, code: int = EXIT_DECODE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Parser(argparse.ArgumentParser):
    """Usage errors as ``PROG: error: message`` plus a hint, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("wasmscope")
    except Exception:  # not installed: running from a source tree
        return "0+unknown"


class _VersionAction(argparse.Action):
    """``--version``, looking the version up only when asked (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: object, values: object, option_string: str | None = None) -> None:
        sys.stdout.write(f"{parser.prog} {_version()}\n")
        parser.exit()


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        mod = _command_module(name)
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=mod.DESCRIPTION,
            epilog=mod.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def _error(message: str) -> None:
    try:
        sys.stderr.write(f"{PROG}: error: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wasmscope`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args._run(args)
        return code
    except CommandError as exc:
        _error(exc.message)
        return exc.code
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error; keep Python
        # from complaining again when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("WASMSCOPE_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set WASMSCOPE_DEBUG=1 for a traceback)")
        return EXIT_INTERNAL
