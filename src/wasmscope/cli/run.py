"""``wasmscope run [OPTIONS] FILE [-- ARGS...]``: run a module or component, observed.

The guest runs as under ``wasmtime run``: its stdin is ours, its stdout and stderr are
copied to ours *while it runs* (captured through in-memory files and copied every
20 ms, so the two streams interleave at that granularity, and at most ``--max-output``
bytes of each are kept and shown). Then one invocation record is printed to stderr as a
short summary (``--quiet``: nothing), written as JSON with ``--report FILE``, or
printed as JSON on stdout with ``--json`` (the guest's stdout then goes to our
stderr, so stdout stays parseable). Telemetry (``--telemetry``, ``--otlp``) gets one
span tree, metrics and the guest's output as log records per run; a telemetry
failure is logged and never changes the exit status.

Exit status: the guest's exit code (0 when ``_start`` returns, or ``run`` returns
``ok``; 1 for a component whose ``run`` returns ``err``), 1 for a trap, a timeout, out
of fuel or memory, the output cap, or a module that cannot start (malformed,
unsatisfiable import, legacy exceptions: one line ``wasmscope: error: ...``), 2 for a
usage error (bad option, missing file, a refused setting), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from wasmscope.cli import EXIT_USAGE, CommandError
from wasmscope.cli._options import (
    add_engine_options,
    add_guard_options,
    add_guest_options,
    add_limit_options,
    add_telemetry_options,
    guard_config,
    guard_wanted,
    telemetry_options,
)

if TYPE_CHECKING:
    from wasmscope.cli.render import Style
    from wasmscope.guard.findings import Finding
    from wasmscope.guard.session import GuardSession
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.runtime.runner import Runtime
    from wasmscope.runtime.wasi import DirSpec
    from wasmscope.telemetry.pipeline import Telemetry

HELP = "run a WASI module or command component under wasmtime and record the invocation"

DESCRIPTION = """\
Run a WASI preview 1 command module (its _start) or a wasi:cli/run command
component under wasmtime, as `wasmtime run` would, and record the invocation:

  - module identity: sha256, name, producers
  - cold or cached start, compile/load, instantiate and run times, CPU time
  - fuel consumed (--fuel), peak linear memory and memory.grow count
  - exit code, or the trap with symbolized frames (function names from the
    name section; file:line from DWARF when the module has it)
  - bytes written to stdout and stderr

The guest is contained: --timeout stops an endless loop (epoch
interruption), --memory-limit refuses memory.grow past the limit, deep
recursion is a stack-overflow trap, output past --max-output stops the guest
and is marked truncated, and the guest sees only the --dir directories.

Compiled code is cached on disk (in $WASMSCOPE_CACHE_DIR, else
$XDG_CACHE_HOME/wasmscope, else ~/.cache/wasmscope), so later starts skip
compilation.
"""

EPILOG = """\
examples:
  wasmscope run app.wasm -- arg1 arg2
  wasmscope run --dir data::/data:ro --env MODE=fast app.wasm -- /data/in.txt
  wasmscope run --timeout 2s --memory-limit 64MiB --fuel 1e9 app.wasm
  wasmscope run --invoke add lib.wasm 2 40          call an export, print its results
  wasmscope run --json app.wasm | jq .outcome        the record as JSON on stdout
  wasmscope run --report run.json -q app.wasm        guest output only; record to a file
  wasmscope run --otlp http://127.0.0.1:4318 app.wasm   spans, metrics and logs via OTLP
  wasmscope run --telemetry jsonl:telemetry.jsonl app.wasm
  wasmscope run --policy app.policy.toml --dir data::/data:ro app.wasm
                                                     under a capability policy (docs/guard.md)
  wasmscope run --baseline guard.db --learn app.wasm   learn what normal looks like

exit status:
  the guest's exit code; 1 trap, timeout, out of fuel/memory, output cap, or a
  module that cannot start; 2 usage error; 130 interrupted
"""


def configure(p: argparse.ArgumentParser) -> None:
    add_guest_options(p)
    add_limit_options(p)
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print the record as JSON on stdout (the guest's stdout goes to stderr)")
    g.add_argument("--report", metavar="FILE", help="write the record as JSON to FILE")
    g.add_argument("-q", "--quiet", action="store_true", help="print only the guest's output, no summary")
    add_telemetry_options(p)
    add_guard_options(p)
    add_engine_options(p)


def exit_status(rec: InvocationRecord) -> int:
    from wasmscope.runtime.record import Outcome

    if rec.outcome in (Outcome.OK, Outcome.EXIT):
        code = rec.exit_code or 0
        return code if 0 <= code <= 255 else 1
    return 1


# -- the summary --------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def render_record(rec: InvocationRecord, style: Style) -> str:
    """The human summary of a record (a few lines)."""
    from wasmscope.cli.render import human_bytes
    from wasmscope.runtime.record import Outcome

    m = rec.module
    lines = []
    head = f"{m.name}  {m.kind}, {human_bytes(m.size)}, sha256 {m.sha256[:12]}"
    lines.append(style.bold("wasmscope run: ") + head)
    if m.producers:
        prod = "; ".join(f"{k}: {', '.join(v)}" for k, v in m.producers.items())
        lines.append(f"  producers    {prod}")
    if rec.outcome == Outcome.OK:
        outcome = style.green(f"ok (exit {rec.exit_code or 0})") if rec.results is None else style.green("ok")
    elif rec.outcome == Outcome.EXIT:
        outcome = style.yellow(f"exit {rec.exit_code}")
    else:
        outcome = style.red(rec.outcome.replace("_", " "))
    lines.append(f"  outcome      {outcome}  ({rec.entry})")
    if rec.results is not None:
        lines.append(f"  results      {' '.join(str(r) for r in rec.results) or '(none)'}")
    compile_phase = rec.phase("compile")
    if compile_phase is not None:
        how = {
            "memory": "cached (in memory)",
            "disk": "cached (on disk)",
            "miss": "cold (compiled, now cached on disk)",
            "none": "cold (compiled, cache off)",
        }.get(rec.cache, rec.cache)
        lines.append(f"  start        {how}: {_ms(compile_phase.seconds)}")
        note = compile_phase.attributes.get("wasm.cache.note")
        if note:
            lines.append(f"               {style.yellow(str(note))}")
    times = [f"instantiate {_ms(rec.seconds('instantiate'))}", f"run {_ms(rec.seconds('execute'))}"]
    if rec.cpu_seconds is not None:
        times.append(f"cpu {_ms(rec.cpu_seconds)}")
    times.append(f"total {_ms(rec.duration_seconds)}")
    lines.append(f"  time         {', '.join(times)}")
    if rec.peak_memory is not None:
        method = rec.attributes.get("wasm.memory.grow_count_method", "")
        grows = f"{rec.memory_grow_count} memory.grow" + (" (sampled, at least)" if method == "sampled" else "")
        limit = f" of {human_bytes(rec.memory_limit)} limit" if rec.memory_limit else ""
        lines.append(f"  memory       peak {human_bytes(rec.peak_memory)}{limit}, {grows}")
    elif rec.outcome != Outcome.ERROR:
        lines.append(f"  memory       {rec.attributes.get('wasm.memory.observed', 'not observed')}")
    if rec.fuel_limit is not None:
        lines.append(f"  fuel         {rec.fuel_consumed:,} of {rec.fuel_limit:,}" if rec.fuel_consumed is not None else f"  fuel         limit {rec.fuel_limit:,}")
    if rec.timeout is not None and rec.outcome == Outcome.TIMEOUT:
        lines.append(f"  timeout      {rec.timeout:g} s")
    out = f"stdout {human_bytes(rec.stdout_bytes)}" + (style.yellow(" (truncated)") if rec.stdout_truncated else "")
    err = f"stderr {human_bytes(rec.stderr_bytes)}" + (style.yellow(" (truncated)") if rec.stderr_truncated else "")
    lines.append(f"  output       {out}, {err}")
    if rec.trap is not None:
        lines.append(f"  {style.red('trap')}         {rec.trap.kind}: {rec.trap.message}")
        for i, f in enumerate(rec.trap.frames):
            name = f.func_name or (f"func[{f.func_index}]" if f.func_index is not None else "?")
            where = ""
            if f.file:
                where = f"  {f.file}:{f.line}" + (f":{f.column}" if f.column else "")
            elif f.module_offset is not None:
                where = f"  @{f.module_offset:#x}"
            lines.append(f"    #{i:<2} {name}{style.dim(where)}")
        if rec.trap.frames_truncated:
            lines.append(style.dim("    ... (wasmtime keeps only the innermost frames)"))
    if rec.error:
        lines.append(f"  {style.red('error')}        {rec.error}")
    return "\n".join(lines) + "\n"


# -- the command --------------------------------------------------------------------------


def _write_report(path: str, doc: dict[str, Any]) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, default=str)
            f.write("\n")
    except OSError as exc:
        raise CommandError(f"--report {path}: {exc.strerror or exc}", EXIT_USAGE) from None


@dataclass
class Setup:
    """What the shared options make: the Runtime (with its telemetry) and the guest's
    world, for `run` and `profile`."""

    runtime: Runtime
    telemetry: Telemetry | None
    guest_args: list[str]
    env: dict[str, str]
    dirs: list[DirSpec]
    stdin: Any


def setup(args: argparse.Namespace) -> Setup:
    """Parse the shared options into a :class:`Setup`; usage errors (exit 2) as
    :class:`CommandError`."""
    from wasmscope.errors import UsageError, WasmscopeError

    try:
        from wasmscope.runtime.engine import RuntimeUnavailable
        from wasmscope.runtime.limits import Limits
        from wasmscope.runtime.wasi import DirSpec, parse_env
    except ImportError as exc:  # pragma: no cover - the package itself is broken
        raise CommandError(f"cannot load the runtime: {exc}") from None

    guest_args: list[str] = list(args.args)
    if guest_args and guest_args[0] == "--":
        guest_args = guest_args[1:]
    try:
        limits = Limits.parse(
            memory_limit=args.memory_limit,
            timeout=args.timeout,
            fuel=args.fuel,
            max_output=args.max_output,
            max_wasm_stack=args.max_wasm_stack,
        )
        dirs = [DirSpec.parse(d) for d in args.dirs]
        env = parse_env(args.env, args.env_inherit)
        if args.stdin is not None and not os.path.isfile(args.stdin):
            raise UsageError(f"--stdin {args.stdin}: no such file")
        tel_opts = telemetry_options(args)
        telemetry = None
        if tel_opts is not None:
            from wasmscope.telemetry import Telemetry

            # A guarded run's output may attack the terminal of whoever reads the logs.
            telemetry = Telemetry.from_options(sanitize_output=guard_wanted(args), **tel_opts)
        from wasmscope.runtime.runner import Runtime

        runtime = Runtime(
            cache=not args.no_cache,
            cache_dir=args.cache_dir,
            limits=limits,
            memory_stats=args.memory_stats,
            telemetry=telemetry,
        )
    except RuntimeUnavailable as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except WasmscopeError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    stdin: Any = args.stdin if args.stdin is not None else "inherit"
    return Setup(runtime, telemetry, guest_args, env, dirs, stdin)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from wasmscope.errors import UsageError
    from wasmscope.runtime.options import RunOptions

    s = setup(args)
    runtime, telemetry, guest_args, env, dirs, stdin = s.runtime, s.telemetry, s.guest_args, s.env, s.dirs, s.stdin
    guest_out: IO[bytes] = sys.stderr.buffer if args.json else sys.stdout.buffer
    options = RunOptions(env=env, dirs=dirs, stdin=stdin, stdout=guest_out, stderr=sys.stderr.buffer)
    session = _guard_session(args, telemetry) if guard_wanted(args) else None
    findings: list[Finding] = []
    try:
        with runtime:
            if session is not None:
                options, findings = _guard_before(session, args.file, options)
            try:
                if args.invoke:
                    rec = runtime.invoke(args.file, args.invoke, guest_args, options)
                else:
                    rec = runtime.run(args.file, guest_args, replace(options, argv0=args.argv0))
            except UsageError as exc:
                raise CommandError(str(exc), EXIT_USAGE) from None
            if session is not None:
                findings = session.judge(rec, options, findings)
    finally:
        if session is not None:
            session.close()
            if session.config.baseline is not None:
                session.config.baseline.close()
        if telemetry is not None:
            telemetry.shutdown()
    return _report(args, rec, telemetry, findings if session is not None else None)


def _guard_session(args: argparse.Namespace, telemetry: Telemetry | None) -> GuardSession:
    from wasmscope.guard.session import GuardSession

    return GuardSession(guard_config(args, telemetry), name=os.path.basename(args.file))


def _guard_before(session: GuardSession, file: str, options: Any) -> tuple[Any, list[Finding]]:
    """The static check (a refused import stops here, exit 1) and the options cut to
    the policy, with the findings of the cut."""
    from wasmscope.errors import WasmscopeError

    try:
        static = session.check(file)
    except OSError as exc:
        raise CommandError(f"{file}: {exc.strerror}", EXIT_USAGE) from None
    except WasmscopeError as exc:
        raise CommandError(str(exc), 1) from None
    if session.refuses(static):
        denied = [f for f in static if f.rule == "import.denied"]
        _report_refusal(session, file, options, denied)
        lines = [f"  {f.target}: {f.message}" for f in denied]
        raise CommandError("the policy refuses to link the module:\n" + "\n".join(lines), 1)
    shaped, early = session.prepare(options)
    # An import outside the policy that still links is the static check's news
    # (`guard check`); the run reports what the guest did with it.
    return shaped, early


def _report_refusal(session: GuardSession, file: str, options: Any, denied: list[Finding]) -> None:
    """The refusal's findings to the sinks (``--ocsf``, the telemetry), on a record of
    the run that never started."""
    import hashlib

    from wasmscope.runtime.identity import ModuleSource
    from wasmscope.runtime.record import InvocationRecord, Outcome
    from wasmscope.runtime.runner import new_invocation_id

    with open(file, "rb") as f:
        data = f.read()
    source = ModuleSource(data, hashlib.sha256(data).hexdigest(), file)
    rec = InvocationRecord(invocation_id=new_invocation_id(), module=source.identity, entry="_start",
                           outcome=Outcome.ERROR, error="the policy refuses to link the module")  # fmt: skip
    session.judge(rec, options, denied)


def _report(
    args: argparse.Namespace, rec: InvocationRecord, telemetry: Any, findings: list[Finding] | None = None
) -> int:
    from wasmscope.cli.render import Style
    from wasmscope.runtime.record import Outcome

    doc = rec.to_json()
    if findings is not None:
        doc["guard"] = {"findings": [f.to_json() for f in findings]}
    if telemetry is not None:
        doc["telemetry"] = telemetry.stats.as_dict()
    if args.report:
        _write_report(args.report, doc)
    if rec.results is not None and not args.json:
        # As `wasmtime run --invoke`: the results on stdout, one per line.
        sys.stdout.write("".join(f"{r}\n" for r in rec.results))
    if args.json:
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        sys.stdout.flush()
    elif not args.quiet and rec.outcome != Outcome.ERROR:
        sys.stdout.flush()
        style = Style.for_stream(sys.stderr)
        sys.stderr.write(render_record(rec, style))
        if findings is not None:
            from wasmscope.cli.guard import render_findings

            sys.stderr.write(render_findings(findings, style))
        sys.stderr.flush()
    if rec.outcome == Outcome.ERROR:
        raise CommandError(rec.error or "the module could not start", 1)
    return exit_status(rec)
