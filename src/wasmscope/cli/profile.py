"""``wasmscope profile [OPTIONS] FILE [-- ARGS...]``: run a module instrumented and
sampled; print its hottest functions with exact call counts; write the profile.

The guest runs as under ``wasmscope run`` (same world, limits, telemetry and engine
options; its output is copied to ours while it runs), but rewritten to keep its own
shadow call stack and call counters (:mod:`wasmscope.instrument`), which a sampler
reads while it runs (:mod:`wasmscope.profile.sampler`). Then, on stderr: a short
summary, the top functions (exact calls, self %, total %), the whole stack on a trap,
and the files written.

Exit status: as ``wasmscope run`` (the guest's exit code; 1 for a trap, a limit, a
module that cannot start; 2 for a usage error, a component, a file that cannot be
written; 130 when interrupted).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmscope.cli import EXIT_USAGE, CommandError
from wasmscope.cli._options import (
    add_engine_options,
    add_guest_options,
    add_limit_options,
    add_telemetry_options,
)
from wasmscope.cli.inspect import add_push_options

if TYPE_CHECKING:
    from wasmscope.cli.render import Style, Table
    from wasmscope.cost.attribution import FunctionCost
    from wasmscope.profile.model import Profile
    from wasmscope.runtime.record import Frame, InvocationRecord
    from wasmscope.telemetry.pipeline import Telemetry

HELP = "profile a WASI module: exact call counts, sampled stacks, flame graphs, full trap stacks"

DESCRIPTION = """\
Run a WASI core module as `wasmscope run` would, rewritten so that it keeps its
own shadow call stack and a call counter per function in a memory of its own,
and sample that stack from another thread while it runs (no host call per
function entry or exit, no wasmtime stack walking). Prints:

  - the top functions: exact calls (from the counters), self % and total %
    of the samples (total counts a recursive function once per sample);
    names from the name section, imports as module.name (host calls)
  - on a trap, the whole call stack (wasmtime keeps only 20 frames), with
    file:line for the innermost frames when the module has DWARF

and writes the profile: --format speedscope (open in https://speedscope.app),
pprof (go tool pprof; the format OpenTelemetry's profiling signal builds on) or
collapsed (flamegraph.pl), and --svg a flame graph to open in a browser.

With --price SHEET (a price sheet of `wasmscope cost`), each function's share
of the samples becomes its share of the invocation's cost under that sheet:
the table gets a cost column (USD per million invocations) and --svg is
coloured by cost. Self time is charged: a host call to its import's row (the
thread sampler sees inside it), the request fee and start-up spread in
proportion; with fewer than 100 samples a warning says the shares are rough.

Span mode (--spans-threshold MS): calls inferred to last at least that long
become OpenTelemetry spans under the invocation's execute span (with
--telemetry/--otlp). They are inferred from consecutive samples, so their start
and end are known to one sampling interval.

Core modules only: components are not supported yet. The instrumented module
is cached on disk next to the compiled code (the first profile of a large
module takes a while: yosys, 66 MB, about 10 s to rewrite and a minute to
compile).
"""

EPILOG = """\
examples:
  wasmscope profile app.wasm -- arg1 arg2            top 20 functions
  wasmscope profile --svg app.svg app.wasm           and a flame graph
  wasmscope profile --format speedscope -o app.json app.wasm
  wasmscope profile --format pprof app.wasm          writes app.pb.gz
  wasmscope profile --format collapsed app.wasm      writes app.folded (flamegraph.pl)
  wasmscope profile --rate 5000 --top 50 app.wasm
  wasmscope profile --price aws-lambda-arm64 --memory-mb 512 app.wasm
      which function costs money: a "cost per 1M" column (USD per million
      invocations) beside each function, its self share of the run's cost
      under that price sheet (the run's wall time, CPU time, peak memory)
  wasmscope profile --price cloudflare-workers --svg cost.svg app.wasm
      and a flame graph coloured by each function's cost (pale: none, deep
      red: the costliest)
  wasmscope profile --spans-threshold 10 --otlp http://127.0.0.1:4318 app.wasm
  wasmscope profile --push http://127.0.0.1:4318 app.wasm
      also send the profile to `wasmscope collect` (or any OTLP/HTTP
      collector) as one log record, event.name "wasmscope.profile", its body
      the wasmscope.profile/1 JSON: exact calls, self and total samples per
      function, every sampled stack
  wasmscope profile --otlp http://127.0.0.1:4318 --push http://127.0.0.1:4318 app.wasm
      the same, and the run's spans: the record carries the trace and span
      ids of the invocation span, so collect links the profile to its trace
  WASMSCOPE_PUSH_TOKEN=secret wasmscope profile --push https://collect.example:4318 app.wasm
      with "Authorization: Bearer secret" (or --push-token, visible in ps)

exit status:
  the guest's exit code; 1 trap, timeout, out of fuel/memory, output cap, or a
  module that cannot start; 2 usage error (and components, and a --push URL
  that is not http:// or https://); 130 interrupted. A push that fails
  (connection refused, timeout, an HTTP error) changes neither the exit status
  nor the output: it adds one "wasmscope: warning:" line on stderr naming the
  URL and the reason. A trapped run is pushed too; a module that cannot start
  has no profile to push.
"""

REPORT_TOP = 50  # functions in the --report's cost object, as call_counts keeps 50
EXTENSIONS = {"speedscope": ".speedscope.json", "pprof": ".pb.gz", "collapsed": ".folded"}


def configure(p: argparse.ArgumentParser) -> None:
    add_guest_options(p, what="a .wasm core module (or a .wat text module)")
    add_limit_options(p)
    g = p.add_argument_group("profile")
    g.add_argument("--rate", metavar="HZ", type=float, default=1000.0, help="samples per second (default 1000)")
    g.add_argument(
        "--mode",
        choices=("thread", "epoch"),
        default="thread",
        help="thread: a sampler thread reads the stack while the guest runs (default); "
        "epoch: the guest's own thread samples at epoch ticks (a consistent stack; host calls charged to their caller)",
    )
    g.add_argument("--top", metavar="N", type=int, default=20, help="functions in the table (default 20; 0: none)")
    g.add_argument("--format", choices=tuple(EXTENSIONS), help="write the profile in this format")
    g.add_argument(
        "-o", "--output", metavar="PATH",
        help="where --format writes (default: FILE's name with .speedscope.json, .pb.gz or .folded, here)",
    )  # fmt: skip
    g.add_argument("--svg", metavar="PATH", help="write a flame graph (SVG, opens in a browser)")
    g.add_argument(
        "--spans-threshold", metavar="MS", type=float,
        help="span mode: calls lasting at least MS milliseconds become spans under the execute span",
    )  # fmt: skip
    g = p.add_argument_group("cost")
    g.add_argument(
        "--price", metavar="SHEET",
        help="a price sheet (aws-lambda-x86, cloudflare-workers, ... or FILE.toml): "
        "a cost column per function in the table, and --svg coloured by cost",
    )  # fmt: skip
    g.add_argument(
        "--memory-mb", metavar="N", type=float,
        help="the configured memory the sheet bills (Lambda, Cloud Run, Azure Flex; "
        "default: the run's --memory-limit when set)",
    )  # fmt: skip
    g = p.add_argument_group("output")
    g.add_argument("--report", metavar="FILE", help="write the invocation record as JSON to FILE")
    g.add_argument("-q", "--quiet", action="store_true", help="print only the guest's output and the files written")
    add_push_options(p, "profile")
    add_telemetry_options(p)
    add_engine_options(p)


# -- rendering ---------------------------------------------------------------------------------


def _frame_text(f: Frame) -> str:
    name = f.func_name or (f"func[{f.func_index}]" if f.func_index is not None else "?")
    if f.file:
        return f"{name}  {f.file}:{f.line}" + (f":{f.column}" if f.column else "")
    return name


def render_frames(frames: list[Frame], style: Style, *, truncated: bool = False) -> list[str]:
    """The frames, innermost first, a run of identical frames (recursion) on one line."""
    lines: list[str] = []
    i = 0
    while i < len(frames):
        text = _frame_text(frames[i])
        j = i + 1
        while j < len(frames) and _frame_text(frames[j]) == text:
            j += 1
        if j - i > 2:
            lines.append(f"    #{i:<2} {text}" + style.dim(f"  (x{j - i}: #{i}..#{j - 1})"))
        else:
            for k in range(i, j):
                lines.append(f"    #{k:<2} {_frame_text(frames[k])}")
        i = j
    if truncated:
        lines.append(style.dim("    ... (deeper than the shadow stack's ring: the outer frames are lost)"))
    return lines


def render_summary(
    rec: InvocationRecord, prof: Profile, style: Style, top: int, cost: PricedRun | None = None
) -> str:
    from wasmscope.cli.render import Column, Table, fmt_int, human_bytes
    from wasmscope.cli.run import _ms
    from wasmscope.runtime.record import Outcome

    m = rec.module
    lines = [style.bold("wasmscope profile: ") + f"{m.name}  {m.kind}, {human_bytes(m.size)}, sha256 {m.sha256[:12]}"]
    if rec.outcome == Outcome.OK:
        outcome = style.green(f"ok (exit {rec.exit_code or 0})") if rec.results is None else style.green("ok")
    elif rec.outcome == Outcome.EXIT:
        outcome = style.yellow(f"exit {rec.exit_code}")
    else:
        outcome = style.red(rec.outcome.replace("_", " "))
    lines.append(f"  outcome      {outcome}  ({rec.entry})")
    if rec.results is not None:
        lines.append(f"  results      {' '.join(str(r) for r in rec.results) or '(none)'}")
    times = [f"run {_ms(rec.seconds('execute'))} (instrumented)"]
    if rec.cpu_seconds is not None:
        times.append(f"cpu {_ms(rec.cpu_seconds)}")
    times.append(f"total {_ms(rec.duration_seconds)}")
    lines.append(f"  time         {', '.join(times)}")
    dropped = []
    if prof.bad_samples:
        dropped.append(f"{fmt_int(prof.bad_samples)} torn reads dropped")
    if prof.lost_samples:
        dropped.append(f"{fmt_int(prof.lost_samples)} deeper than the ring")
    if not prof.sampled:
        dropped.append("the run was shorter than the sampling interval: no percentages")
    lines.append(
        f"  samples      {fmt_int(prof.sampled)} at {prof.rate:g} Hz ({prof.mode} sampler, "
        f"one per {prof.interval_ns / 1e6:.2f} ms)" + (f"; {', '.join(dropped)}" if dropped else "")
    )
    calls = prof.calls
    hosts = prof.host_calls
    lines.append(
        f"  calls        {fmt_int(sum(calls.values()))} to {fmt_int(len(calls))} functions (exact), "
        f"{fmt_int(sum(hosts.values()))} host calls"
        + (" (" + ", ".join(f"{k} {fmt_int(v)}" for k, v in list(hosts.items())[:3]) + (", ..." if len(hosts) > 3 else "") + ")" if hosts else "")
    )
    if rec.trap is not None:
        lines.append(f"  {style.red('trap')}         {rec.trap.kind}: {rec.trap.message}")
        lines.append(f"  stack        {len(rec.trap.frames)} frames, innermost first")
        lines.extend(render_frames(rec.trap.frames, style, truncated=rec.trap.frames_truncated))
    if rec.error:
        lines.append(f"  {style.red('error')}        {rec.error}")
    if cost is not None:
        lines.extend(_render_cost_lines(cost, style))
        if top > 0:
            lines.append("")
            lines.extend(_cost_table(prof, cost, top).render(style))
        return "\n".join(lines) + "\n"
    rows = prof.top(top) if top > 0 else []
    if rows:
        t = Table([Column("function", max_width=60), Column("calls", ">"), Column("self %", ">"), Column("total %", ">")])
        sampled = prof.sampled > 0
        for r in rows:
            t.add(
                r.name,
                fmt_int(r.calls) if r.calls else "-",
                f"{r.self_pct:.1f}" if sampled else "-",
                f"{r.total_pct:.1f}" if sampled else "-",
            )
        lines.append("")
        lines.extend(t.render(style))
    return "\n".join(lines) + "\n"


# -- cost ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PricedRun:
    """The run's cost under a price sheet, and its functions' parts."""

    sheet: str
    usd: float
    memory_mb: float | None
    functions: list[FunctionCost]
    warning: str | None
    wall_s: float = 0.0
    startup_s: float = 0.0  # wall outside the execute phase (load, compile, instantiate)
    cold: bool = False  # the run compiled its module

    def as_json(self, top: int = REPORT_TOP) -> dict[str, Any]:
        """The ``cost`` object of ``--report``: the total and the ``top`` costliest rows."""
        return {
            "sheet": self.sheet,
            "memory_mb": self.memory_mb,
            "usd": self.usd,
            "warning": self.warning,
            "functions": [
                {"name": r.name, "share": r.share, "usd": r.usd, "calls": r.calls, "self_samples": r.self_samples,
                 "host": r.host, "share_error": r.share_error}
                for r in self.functions[:top]
            ],
        }  # fmt: skip


def _render_cost_lines(cost: PricedRun, style: Style) -> list[str]:
    from wasmscope.profile.model import usd_text

    memory = f", {cost.memory_mb:g} MB" if cost.memory_mb is not None else ""
    lines = [
        f"  cost         {usd_text(cost.usd)} per invocation, {usd_text(cost.usd * 1e6)} per million "
        f"({cost.sheet}{memory}; this instrumented run's wall, CPU and peak memory)"
    ]
    if cost.warning:
        lines.append(f"  {style.yellow('warning')}      {cost.warning}")
    if cost.cold and cost.wall_s > 0 and cost.startup_s > 0.5 * cost.wall_s:
        lines.append(
            f"  {style.yellow('warning')}      this run compiled the module: {cost.startup_s:.1f} s of its "
            f"{cost.wall_s:.1f} s were start-up, billed and spread over the functions; "
            "profile again (the compiled code is cached) for the warm cost"
        )
    return lines


def _cost_table(prof: Profile, cost: PricedRun, top: int) -> Table:
    """The top table ordered by cost, with a column of USD per million invocations;
    self % is the share of the billed samples (the buckets included), so it sums to
    100 with the buckets' rows."""
    from wasmscope.cli.render import Column, Table, fmt_int
    from wasmscope.profile.model import usd_text

    totals = prof.total_samples_by_function()
    billed = prof.total_samples
    t = Table(
        [Column("function", max_width=60), Column("calls", ">"), Column("self %", ">"),
         Column("total %", ">"), Column("cost per 1M", ">")]
    )  # fmt: skip
    for r in cost.functions[:top]:
        total = f"{100.0 * totals.get(r.index, 0) / billed:.1f}" if r.index is not None and billed else "-"
        t.add(
            r.name,
            fmt_int(r.calls) if r.calls else "-",
            f"{100.0 * r.share:.1f}" if billed else "-",
            total,
            usd_text(r.usd * 1e6),
        )
    return t


def _load_sheet(args: argparse.Namespace) -> Any:
    """The --price sheet, before the run: a bad sheet or a missing --memory-mb is
    exit 2 at once, not after the guest ran."""
    from wasmscope.errors import UsageError

    if args.memory_mb is not None and not args.memory_mb > 0:
        raise CommandError(f"--memory-mb {args.memory_mb:g}: expected a size in MB above 0", EXIT_USAGE)
    try:
        from wasmscope.cost.prices import load_price_sheet  # UsageError without numpy

        sheet = load_price_sheet(args.price)
    except UsageError as exc:
        raise CommandError(f"--price {args.price}: {exc}", EXIT_USAGE) from None
    if sheet.meter == "memory-time" and args.memory_mb is None and not args.memory_limit:
        raise CommandError(
            f"--price {args.price}: this sheet bills configured memory x time: give --memory-mb N "
            "(the size the function is configured with, e.g. --memory-mb 128)",
            EXIT_USAGE,
        )
    if args.memory_mb is not None and sheet.meter == "memory-time":
        try:  # the sheet's own check of the size, on a zero-length invocation
            sheet.invocation_costs(0.0, 0.0, 0.0, memory_mb=args.memory_mb)
        except UsageError as exc:
            raise CommandError(f"--memory-mb {args.memory_mb:g}: {exc}", EXIT_USAGE) from None
    return sheet


def price_run(args: argparse.Namespace, sheet: Any, rec: InvocationRecord, prof: Profile) -> PricedRun:
    from wasmscope.cost.attribution import attribution_warning, function_costs, invocation_cost
    from wasmscope.errors import UsageError

    memory_mb = args.memory_mb
    if memory_mb is None and sheet.meter == "memory-time" and rec.memory_limit:
        memory_mb = rec.memory_limit / 2**20
    try:
        usd = invocation_cost(sheet, rec, memory_mb=memory_mb)
    except UsageError as exc:
        raise CommandError(f"--price {args.price}: {exc}", EXIT_USAGE) from None
    wall = max(0, rec.end_ns - rec.start_ns) / 1e9
    execute = rec.seconds("execute")
    return PricedRun(
        sheet.name, usd, memory_mb, function_costs(prof, usd), attribution_warning(prof),
        wall_s=wall, startup_s=max(0.0, wall - execute) if execute is not None else 0.0, cold=rec.cold_start,
    )  # fmt: skip


# -- the command -------------------------------------------------------------------------------


def _default_output(file: str, fmt: str) -> str:
    stem = Path(file).name
    for suffix in (".wasm", ".wat"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem + EXTENSIONS[fmt]


def _write(path: str, payload: bytes, what: str) -> None:
    try:
        with open(path, "wb") as f:
            f.write(payload)
    except OSError as exc:
        raise CommandError(f"{what} {path}: {exc.strerror or exc}", EXIT_USAGE) from None


def run(args: argparse.Namespace) -> int:
    from wasmscope.cli.inspect import push_target
    from wasmscope.cli.render import Style
    from wasmscope.cli.run import _write_report, exit_status, setup
    from wasmscope.errors import UsageError
    from wasmscope.runtime.record import Outcome

    if not args.rate > 0 or args.rate > 100_000:
        raise CommandError(f"--rate {args.rate:g}: expected a rate above 0 and at most 100000 Hz", EXIT_USAGE)
    if args.top < 0:
        raise CommandError("--top must be >= 0", EXIT_USAGE)
    if args.spans_threshold is not None and args.spans_threshold < 0:
        raise CommandError("--spans-threshold must be >= 0 milliseconds", EXIT_USAGE)
    fmt = args.format
    if args.output and fmt is None:
        fmt = next((f for f, ext in EXTENSIONS.items() if args.output.endswith(ext)), "speedscope")
    output = args.output or (_default_output(args.file, fmt) if fmt else None)
    target = push_target(args)
    if args.memory_mb is not None and args.price is None:
        raise CommandError("--memory-mb needs --price SHEET (the sheet that bills it)", EXIT_USAGE)
    sheet = _load_sheet(args) if args.price is not None else None

    s = setup(args)
    from wasmscope.profile.api import profile
    from wasmscope.runtime.options import RunOptions

    try:
        with s.runtime:
            try:
                options = RunOptions(env=s.env, dirs=s.dirs, stdin=s.stdin, argv0=None if args.invoke else args.argv0,
                                     stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)  # fmt: skip
                rec, prof = profile(
                    args.file,
                    s.guest_args,
                    options,
                    invoke=args.invoke or None,
                    rate=args.rate,
                    mode=args.mode,
                    spans_threshold=args.spans_threshold / 1000 if args.spans_threshold is not None else None,
                    runtime=s.runtime,
                )
            except UsageError as exc:
                raise CommandError(str(exc), EXIT_USAGE) from None
    finally:
        if s.telemetry is not None:
            s.telemetry.shutdown()

    cost = price_run(args, sheet, rec, prof) if sheet is not None and rec.outcome != Outcome.ERROR else None
    doc = rec.to_json()
    if s.telemetry is not None:
        doc["telemetry"] = s.telemetry.stats.as_dict()
    if cost is not None:
        doc["cost"] = cost.as_json()
    if args.report:
        _write_report(args.report, doc)
    if rec.results is not None:
        sys.stdout.write("".join(f"{r}\n" for r in rec.results))
    sys.stdout.flush()
    if rec.outcome == Outcome.ERROR:
        raise CommandError(rec.error or "the module could not start", 1)
    written: list[str] = []
    if output and fmt:
        _write(output, prof.dumps(fmt), "--output")
        written.append(f"{output} ({fmt})")
    if args.svg:
        _write(args.svg, prof.to_svg(cost_usd=cost.usd if cost else None).encode(), "--svg")
        written.append(f"{args.svg} (flame graph" + (", coloured by cost)" if cost else ")"))
    style = Style.for_stream(sys.stderr)
    text = "" if args.quiet else render_summary(rec, prof, style, args.top, cost)
    if prof.spans:
        text += f"  spans        {_count_spans(prof.spans)} calls of {args.spans_threshold:g} ms or more"
        text += " sent as spans\n" if s.telemetry is not None else " (no telemetry: use --telemetry or --otlp)\n"
    if written:
        text += "".join(f"wrote {w}\n" for w in written)
    sys.stderr.write(text)
    sys.stderr.flush()
    if target is not None and _push(args, rec, prof, s.telemetry):
        sys.stderr.write(f"pushed the profile to {target}\n")
        sys.stderr.flush()
    return exit_status(rec)


def _push(args: argparse.Namespace, rec: InvocationRecord, prof: Profile, telemetry: Telemetry | None) -> bool:
    """Push the profile record (see :mod:`wasmscope.telemetry.reports`), with the ids
    of the invocation span and the telemetry's resource when the run had telemetry."""
    from wasmscope.cli.inspect import push_report
    from wasmscope.telemetry.reports import profile_report_record

    ids = telemetry.invocation_span(rec.invocation_id) if telemetry is not None else None
    trace_id, span_id = ids if ids is not None else ("", "")
    resource = telemetry.resource_attributes if telemetry is not None else None
    return push_report(
        args, lambda: profile_report_record(rec, prof, trace_id=trace_id, span_id=span_id), "the profile",
        service_name=args.service_name, resource=resource,
    )  # fmt: skip


def _count_spans(nodes: Any) -> int:
    n = 0
    todo = list(nodes)
    while todo:
        node = todo.pop()
        n += 1
        todo.extend(node.children)
    return n
