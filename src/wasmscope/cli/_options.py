"""The command-line options that several commands share: the guest and its world, its
limits (``run``, ``profile``), telemetry and the engine (``run``, ``profile``,
``serve``)."""

from __future__ import annotations

import argparse
from typing import Any

from wasmscope.cli import EXIT_USAGE, CommandError

__all__ = [
    "add_engine_options",
    "add_guard_options",
    "add_guest_options",
    "add_limit_options",
    "add_telemetry_options",
    "guard_config",
    "guard_wanted",
    "telemetry_options",
]


def add_guest_options(
    p: argparse.ArgumentParser, *, what: str = "a .wasm module or component (or a .wat text module)"
) -> None:
    """FILE, ARGS and the guest's world (``--invoke``, ``--dir``, ``--env``, ...)."""
    p.add_argument("file", metavar="FILE", help=what)
    p.add_argument(
        "args",
        metavar="ARGS",
        nargs=argparse.REMAINDER,
        help="arguments for the guest (after FILE; a leading -- is dropped), or for --invoke",
    )
    g = p.add_argument_group("the guest's world")
    g.add_argument(
        "--invoke",
        metavar="FUNC",
        help="call this exported function with ARGS (numbers) instead of _start",
    )
    g.add_argument(
        "--dir",
        dest="dirs",
        metavar="HOST[::GUEST][:ro]",
        action="append",
        default=[],
        help="preopen a host directory (as GUEST, default the same path; ':ro' read-only); repeatable",
    )
    g.add_argument(
        "--env",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="set an environment variable; repeatable",
    )
    g.add_argument(
        "--env-inherit",
        metavar="NAME",
        action="append",
        default=[],
        help="pass one of our environment variables; repeatable",
    )
    g.add_argument(
        "--argv0", metavar="NAME", help="the program name the guest sees (default: the file name)"
    )
    g.add_argument(
        "--stdin", metavar="FILE", help="read the guest's stdin from FILE (default: our stdin)"
    )


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """The guest's limits: ``--timeout``, ``--memory-limit``, ``--fuel``, ``--max-output``, ``--max-wasm-stack``."""
    g = p.add_argument_group("limits")
    g.add_argument("--timeout", metavar="DURATION", help="wall-clock limit, e.g. 500ms, 2s, 1m")
    g.add_argument(
        "--memory-limit", metavar="SIZE", help="largest linear memory, e.g. 64MiB, 1GB, 100pages"
    )
    g.add_argument(
        "--fuel",
        metavar="N",
        help="fuel units (roughly Wasm instructions); the record says how much was used",
    )
    g.add_argument(
        "--max-output",
        metavar="SIZE",
        default="64MiB",
        help="bytes kept of each of stdout and stderr; past it the guest is stopped (default 64MiB; 'none')",
    )
    g.add_argument(
        "--max-wasm-stack",
        metavar="SIZE",
        help="Wasm stack size (at most 2MiB; above, wasmtime would abort the process)",
    )


def add_telemetry_options(p: argparse.ArgumentParser) -> None:
    """``--telemetry``, ``--otlp``, ``--service-name`` (read by :func:`telemetry_options`)."""
    g = p.add_argument_group("telemetry")
    g.add_argument(
        "--telemetry",
        metavar="SPEC",
        action="append",
        default=[],
        help="console | jsonl:PATH | otlp (endpoint from OTEL_EXPORTER_OTLP_*) | otlp:URL; repeatable",
    )
    g.add_argument(
        "--otlp", metavar="URL", help="send OTLP/HTTP to URL, e.g. http://127.0.0.1:4318"
    )
    g.add_argument(
        "--service-name", metavar="NAME", help="service.name of the telemetry (default: wasmscope)"
    )


def add_engine_options(
    p: argparse.ArgumentParser, *, memory_stats: bool = True, pooling: bool = False
) -> None:
    """``--no-cache``, ``--cache-dir``, ``--memory-stats`` (``run``, ``profile``) and
    ``--no-pooling`` (``serve``, whose instances come from a pool)."""
    g = p.add_argument_group("engine")
    g.add_argument(
        "--no-cache", action="store_true", help="do not use the on-disk compiled-module cache"
    )
    if pooling:
        g.add_argument(
            "--no-pooling",
            action="store_true",
            help="allocate each instance on demand instead of from wasmtime's pooling allocator "
            "(pools reserve virtual address space once: 4 GiB a memory slot, 1000 slots)",
        )
    g.add_argument("--cache-dir", metavar="DIR", help="the compiled-module cache folder")
    if memory_stats:
        g.add_argument(
            "--memory-stats",
            choices=("sampled", "exact"),
            default="sampled",
            help="sampled: peak exact, grow count sampled (free); exact: every grow counted by a host memory creator (a few %% slower)",
        )


def telemetry_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The keyword arguments of :class:`~wasmscope.telemetry.Telemetry` that
    :func:`add_telemetry_options` asked for (None: no telemetry)."""
    opts: dict[str, Any] = {}
    for spec in args.telemetry:
        kind, _, value = spec.partition(":")
        if kind == "console" and not value:
            opts["console"] = True
        elif kind == "jsonl" and value:
            opts["jsonl"] = value
        elif kind == "otlp":
            opts["otlp"] = value if value else True
        else:
            raise CommandError(
                f"--telemetry {spec!r}: expected console, jsonl:PATH, otlp or otlp:URL", EXIT_USAGE
            )
    if args.otlp:
        opts["otlp"] = args.otlp
    if not opts:
        return None
    if args.service_name:
        opts["service_name"] = args.service_name
    return opts


def add_guard_options(p: argparse.ArgumentParser, *, serve: bool = False) -> None:
    """The guard of ``run`` and ``serve``: policy, mode, audit, baseline and sinks."""
    g = p.add_argument_group("guard (capability policy, host-call audit, anomalies; docs/guard.md)")
    g.add_argument(
        "--policy",
        metavar="FILE",
        help="the module's capability policy (TOML)"
        + ("; the default of routes the manifest gives none" if serve else ""),
    )
    g.add_argument(
        "--guard-mode",
        choices=("monitor", "enforce", "kill"),
        help="override the policy's mode: monitor (report), enforce (the call gets an errno), kill (trap)",
    )
    g.add_argument(
        "--audit",
        metavar="FILE",
        help="append every recorded WASI call to FILE as JSON lines (with its invocation id)",
    )
    g.add_argument(
        "--audit-level",
        choices=("full", "count"),
        default="full",
        help="full: each call with its arguments, path, errno and duration; count: counts only (cheapest)",
    )
    g.add_argument(
        "--baseline",
        metavar="FILE",
        help="the SQLite baseline of normal behaviour: runs are judged against it (or learned with --learn)",
    )
    g.add_argument("--learn", action="store_true", help="learn each run as normal into --baseline instead of judging it")
    g.add_argument(
        "--baseline-key",
        choices=("sha256", "name"),
        default="name" if serve else "sha256",
        help="one baseline per exact module (sha256) or per module name / route (name: a new build "
        f"is judged against the old one's normal); default {'name' if serve else 'sha256'}",
    )
    g.add_argument("--input-class", metavar="NAME", default="", help="the input class of these runs, for the resource detector")
    g.add_argument("--ocsf", metavar="FILE", help="append the security events to FILE as OCSF JSON lines (for SIEMs)")


def guard_wanted(args: argparse.Namespace) -> bool:
    """Whether any guard option was given (the guard is off otherwise: no audit, no cost)."""
    return any(getattr(args, k, None) for k in ("policy", "guard_mode", "audit", "baseline", "ocsf", "learn"))


def guard_config(args: argparse.Namespace, telemetry: Any, policy: Any = None) -> Any:
    """The :class:`~wasmscope.guard.session.GuardConfig` the guard options ask for
    (``policy``: already loaded; else ``--policy``); usage errors as CommandError."""
    from wasmscope.errors import WasmscopeError
    from wasmscope.guard.session import GuardConfig, open_sinks

    if args.learn and not args.baseline:
        raise CommandError("--learn needs --baseline FILE (where the runs are learned)", EXIT_USAGE)
    try:
        if policy is None and args.policy:
            from wasmscope.guard.policy import load_policy

            policy = load_policy(args.policy)
        baseline = None
        if args.baseline:
            from wasmscope.guard.baseline import Baseline

            baseline = Baseline.open(args.baseline)
        ocsf, audit = open_sinks(args.ocsf, args.audit)
        return GuardConfig(
            policy=policy, mode=args.guard_mode, record=args.audit_level == "full", baseline=baseline,
            learn=args.learn, baseline_key=args.baseline_key, input_class=args.input_class,
            telemetry=telemetry, ocsf=ocsf, audit_file=audit,
        )  # fmt: skip
    except WasmscopeError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
