"""``wasmscope cost recommend`` and ``wasmscope cost calibrate``: right-sizing and calibration.

:mod:`wasmscope.cli.cost` registers them: ``configure_recommend(sub)`` /
``run_recommend(args)`` and ``configure_calibrate(sub)`` / ``run_calibrate(args)``. The
work is in :mod:`wasmscope.cost.recommend`, :mod:`wasmscope.cost.calibrate` and
:mod:`wasmscope.cost.sweep`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from wasmscope.cli import EXIT_OK, EXIT_USAGE, CommandError
from wasmscope.cli.render import bytes_text, seconds_text, usd

if TYPE_CHECKING:
    from wasmscope.cli.render import Style
    from wasmscope.cost.calibrate import Calibration
    from wasmscope.cost.recommend import Recommendation
    from wasmscope.cost.sweep import SweepResult

__all__ = ["configure_calibrate", "configure_recommend", "run_calibrate", "run_recommend"]

SWEEP_MB = (128, 256, 512, 1024, 1769, 3008)

RECOMMEND_EPILOG = """\
examples:
  wasmscope run --report run.json --memory-limit 1GiB --fuel 1e12 -q app.wasm
  wasmscope cost recommend run.json --price aws-lambda-x86
  wasmscope cost recommend runs.jsonl --price aws-lambda-arm64 --headroom 0.5 --json
  wasmscope cost recommend runs.jsonl --price aws-lambda-x86 --memory-mb 1024   records without a limit
  wasmscope cost recommend run.json --price aws-lambda-x86 --sweep              measure it at each size
  wasmscope cost recommend run.json --price aws-lambda-x86 --sweep --sweep-mb 128,512,1769 --repeat 5

findings (as AWS Compute Optimizer's):
  Optimized               the configured memory fits the peak with headroom, no smaller size
  MemoryOverprovisioned   a smaller size holds the peak with headroom (the saving is given)
  MemoryUnderprovisioned  an invocation ran out of memory, or the headroom is below --headroom
  Unavailable             no configured memory to compare with (give --memory-mb)

Duration at other sizes is predicted where CPU grows with memory (Lambda: one vCPU
at 1,769 MB): CPU time scales with the vCPU share below one vCPU, the rest of the
wall time (host calls, I/O) does not. --sweep checks that by running the module
(its path and arguments from the records) at each size, with the CPU share applied
by a CPU quota where one can be had (root: a cgroup), else modelled.

exit status:
  0 success; 2 usage error (a bad records file, a bad price sheet, a bad option)
"""

CALIBRATE_EPILOG = """\
examples:
  for n in 1 2 4 8 16; do wasmscope run --fuel 1e12 --json -q app.wasm -- $n; done > runs.jsonl
  wasmscope cost calibrate runs.jsonl
  wasmscope cost calibrate runs.jsonl --json | jq '.[] | {r2, seconds_per_gigafuel}'

The fit is cpu = a + b*fuel + c*host_calls over the invocations that finished; it is
reported poor when R^2 < 0.9 (fuel does not explain the CPU time: do not use fuel as
that module's cost unit), and cannot be made when fuel does not vary. Host calls are
known in instrumented (`profile`) and audited runs.
"""


def configure_recommend(sub: Any) -> None:
    r = sub.add_parser(
        "recommend",
        help="right-sizing: memory, fuel limit and timeout per function, with findings and savings",
        description="Per function: the memory (peak with headroom, rounded up to the host's\n"
        "sizes), the fuel limit and the timeout to run with, Compute Optimizer's finding\n"
        "with the numbers behind it, the saving per million requests, and the predicted\n"
        "duration and cost at other sizes.",
        epilog=RECOMMEND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("source", metavar="FILE|DIR",
                   help="a `run --report` JSON file, JSON lines of records, or a collect store folder or URL")  # fmt: skip
    r.add_argument("--price", metavar="SHEET", required=True,
                   help="the price sheet: a shipped name (aws-lambda-x86, cloud-run, ...) or FILE.toml")  # fmt: skip
    r.add_argument("--headroom", type=float, default=0.2, metavar="F",
                   help="headroom over the observed peak, fuel and duration (default 0.2: 20%%)")  # fmt: skip
    r.add_argument("--memory-mb", type=int, metavar="N",
                   help="the configured size, for records that carry no memory limit")  # fmt: skip
    r.add_argument("--function", metavar="NAME", help="only this function (a route, or module:entry)")
    r.add_argument("--sweep", action="store_true",
                   help="run each function's module at several sizes and compare with the prediction")  # fmt: skip
    r.add_argument("--sweep-mb", metavar="LIST",
                   help="the sizes of --sweep, comma-separated MB (default: 128,256,512,1024,1769,3008 and "
                   "the recommended size, those that hold the peak)")  # fmt: skip
    r.add_argument("--repeat", type=int, default=3, metavar="N", help="runs per size in --sweep (default 3; the median is kept)")
    r.add_argument("--json", action="store_true", help="print the recommendations as JSON")


def configure_calibrate(sub: Any) -> None:
    c = sub.add_parser(
        "calibrate",
        help="per module, the fit of CPU time against fuel and host calls (R², residuals)",
        description="Per module: the least-squares fit cpu = a + b*fuel + c*host_calls over its\n"
        "invocations, with R² and the residuals' spread, so that fuel serves as a portable\n"
        "cost unit; a poor fit (R² < 0.9) is said to be poor.",
        epilog=CALIBRATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("source", metavar="FILE|DIR",
                   help="a `run --report` JSON file, JSON lines of records, or a collect store folder or URL")  # fmt: skip
    c.add_argument("--function", metavar="NAME", help="only the invocations of this function")
    c.add_argument("--json", action="store_true", help="print the fits as JSON")


# -- recommend ----------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) <= 0:
            raise CommandError(f"--sweep-mb {text!r}: expected sizes in MB separated by commas (128,512,1769)", EXIT_USAGE)
        out.append(int(part))
    return out


def _record_docs(source: str) -> Iterator[dict[str, Any]]:
    """The JSON records of a `run --report` file or of JSON lines (for --sweep)."""
    import os

    if not os.path.isfile(source):
        raise CommandError(f"--sweep needs a records file (a `run --report` JSON or JSON lines): {source} is not one", EXIT_USAGE)
    with open(source, encoding="utf-8") as f:
        text = f.read()
    try:
        doc = json.loads(text)
        docs = doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    for d in docs:
        if isinstance(d, dict):
            yield d.get("record", d) if isinstance(d.get("record"), dict) else d


def _sweep_targets(source: str) -> dict[str, tuple[str, list[str]]]:
    """function -> (module path, args) from the records, the first of each function."""
    from wasmscope.cost.records import function_of

    out: dict[str, tuple[str, list[str]]] = {}
    for d in _record_docs(source):
        module = d.get("module") or {}
        if not isinstance(module, dict):
            continue
        name = function_of((d.get("attributes") or {}).get("http.route"), str(module.get("name", "")), str(d.get("entry", "")))
        if name not in out and module.get("path"):
            out[name] = (str(module["path"]), [str(a) for a in d.get("args") or []])
    return out


def run_recommend(args: argparse.Namespace) -> int:
    from wasmscope.errors import WasmscopeError

    if args.repeat < 1:
        raise CommandError(f"--repeat {args.repeat}: expected 1 or more", EXIT_USAGE)
    if args.memory_mb is not None and args.memory_mb <= 0:
        raise CommandError(f"--memory-mb {args.memory_mb}: expected a size above 0", EXIT_USAGE)
    if not (args.headroom >= 0 and math.isfinite(args.headroom)):
        raise CommandError(f"--headroom {args.headroom}: expected a number >= 0 (0.2 is 20%)", EXIT_USAGE)
    sizes = _sizes(args.sweep_mb) if args.sweep_mb else None
    try:
        from wasmscope.cost.prices import load_price_sheet
        from wasmscope.cost.recommend import recommend
        from wasmscope.cost.records import read_usage

        sheet = load_price_sheet(args.price)
        table = read_usage(args.source, function=args.function)
        if len(table) == 0:
            what = f"no invocations of {args.function}" if args.function else "no invocations"
            raise CommandError(f"{args.source}: {what}", EXIT_USAGE)
        recs = recommend(table, sheet, headroom=args.headroom, configured_mb=args.memory_mb)
        sweeps: dict[str, SweepResult] = {}
        if args.sweep:
            sweeps = _run_sweeps(args, sheet, table, recs, sizes)
    except WasmscopeError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    if args.json:
        doc = {
            "sheet": {"name": sheet.name, "date": sheet.date, "source": sheet.source},
            "headroom": args.headroom,
            "functions": [r.to_json() | ({"sweep": sweeps[r.function].to_json()} if r.function in sweeps else {}) for r in recs],
        }
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return EXIT_OK
    from wasmscope.cli.render import Style

    style = Style.for_stream(sys.stdout)
    head = (
        f"{style.bold('wasmscope cost recommend:')} {args.source}, {len(recs)} function{'s' if len(recs) != 1 else ''}, "
        f"{sheet.name} ({sheet.date}), headroom {args.headroom:.0%}\n"
    )
    sys.stdout.write(head)
    for r in recs:
        sys.stdout.write("\n" + render_recommendation(r, style))
        if r.function in sweeps:
            sys.stdout.write(render_sweep(sweeps[r.function], style))
    return EXIT_OK


def _run_sweeps(
    args: argparse.Namespace, sheet: Any, table: Any, recs: list[Recommendation], sizes: list[int] | None
) -> dict[str, SweepResult]:
    import numpy as np

    from wasmscope.cost._measure import Measurer
    from wasmscope.cost.recommend import MIB
    from wasmscope.cost.sweep import sweep

    targets = _sweep_targets(args.source)
    steps = set(sheet.memory_steps_mb or ())
    out: dict[str, SweepResult] = {}
    names = np.asarray(table.function).astype(str)
    with Measurer() as m:
        for r in recs:
            if r.function not in targets:
                raise CommandError(
                    f"--sweep: the records of {r.function} do not name its module's file (module.path)", EXIT_USAGE
                )
            chosen = list(sizes) if sizes else [s for s in SWEEP_MB if not steps or s in steps]
            if not sizes and r.memory_mb is not None:
                chosen.append(r.memory_mb)
            if not sizes and r.peak_memory_max is not None:
                chosen = [s for s in chosen if s * MIB >= r.peak_memory_max]
            path, argv = targets[r.function]
            out[r.function] = sweep(path, argv, sheet, chosen or [r.memory_mb or 128],
                                    base=table.where(names == r.function), repeat=args.repeat, measurer=m)  # fmt: skip
    return out


def _limit(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n // (1 << 20)}MiB" if n % (1 << 20) == 0 else str(n)


def _ms(x: float | None) -> str:
    return "-" if x is None else seconds_text(x)


def _usd(x: float | None) -> str:
    return usd(x)


def _bytes(x: float | None) -> str:
    return "-" if x is None else bytes_text(x)


def render_recommendation(r: Recommendation, style: Style) -> str:
    colour = {"Optimized": style.green, "MemoryOverprovisioned": style.yellow, "MemoryUnderprovisioned": style.red}
    finding = colour.get(r.finding, style.dim)(r.finding)
    lines = [f"{style.bold(r.function)}  {finding}  ({r.invocations} invocation{'s' if r.invocations != 1 else ''})"]
    for reason in r.reasons:
        lines.append(f"  {reason}")
    if r.memory_mb is not None:
        was = f", configured {r.configured_mb} MB" if r.configured_mb is not None else ""
        lines.append(f"  memory       {r.memory_mb} MB{was}; peak {_bytes(r.peak_memory_max)} (p95 {_bytes(r.peak_memory_p95)}); "
                     f"wasmscope --memory-limit {_limit(r.memory_limit)}")  # fmt: skip
    if r.usd_per_million_recommended is not None:
        cost = f"  cost         {_usd(r.usd_per_million_recommended)} per million"
        if r.usd_per_million_configured is not None:
            cost += f" (configured: {_usd(r.usd_per_million_configured)}"
            if r.saving_per_million is not None:
                verb = "saves" if r.saving_per_million >= 0 else "costs"
                cost += f"; {verb} {_usd(abs(r.saving_per_million))} per million"
            cost += ")"
        lines.append(cost)
    if r.wall_s_recommended is not None:
        dur = f"  duration     {_ms(r.wall_s_recommended)} mean at {r.memory_mb} MB"
        if r.wall_s_configured is not None and r.configured_mb is not None:
            dur += f" (at {r.configured_mb} MB: {_ms(r.wall_s_configured)})"
        lines.append(dur + ", predicted")
    if r.fuel_limit is not None:
        inputs = f"{r.fuel_inputs} distinct value{'s' if r.fuel_inputs != 1 else ''}"
        lines.append(f"  fuel limit   {r.fuel_limit:,} (max {r.fuel_max:,.0f} seen, {inputs})")
    if r.timeout_s is not None:
        lines.append(f"  timeout      {r.timeout_s:g} s (slowest {_ms(r.wall_max)}, p99 {_ms(r.wall_p99)}, p95 {_ms(r.wall_p95)})")
    for risk in r.risks:
        lines.append(f"  {style.yellow('risk')}         {risk}")
    if r.curve:
        lines.append(style.dim("  other sizes (predicted):   MB   vCPU   duration   per million"))
        for p in r.curve:
            share = "-" if p.vcpu_share is None else f"{p.vcpu_share:.2f}"
            mark = "  <-" if p.memory_mb == r.memory_mb else ("  (configured)" if p.memory_mb == r.configured_mb else "")
            lines.append(f"  {'':25}{p.memory_mb:>5}  {share:>5}  {_ms(p.wall_s):>9}   {_usd(p.usd_per_million)}{mark}")
    return "\n".join(lines) + "\n"


def render_sweep(s: SweepResult, style: Style) -> str:
    how = "CPU share applied by a CPU quota" if s.emulated else "no CPU quota here: runs at a whole CPU, the share is modelled"
    lines = [style.dim(f"  sweep: {s.runs} runs of {s.path} ({how})"),
             style.dim("       MB   vCPU   measured  predicted   error   per million (measured / predicted)  outcome")]  # fmt: skip
    for p in s.points:
        err = "-" if p.error is None else f"{p.error:+.0%}"
        lines.append(
            f"    {p.memory_mb:>5}  {p.vcpu_share:>5.2f}  {_ms(p.wall_s):>9}  {_ms(p.wall_s_predicted):>9}  {err:>6}   "
            f"{_usd(p.usd_per_million):>10} / {_usd(p.usd_per_million_predicted):<10}          {p.outcome}"
        )
    best = s.cheapest()
    if best is not None:
        lines.append(f"    cheapest measured: {best.memory_mb} MB at {_usd(best.usd_per_million)} per million")
    return "\n".join(lines) + "\n"


# -- calibrate ----------------------------------------------------------------------------


def run_calibrate(args: argparse.Namespace) -> int:
    from wasmscope.errors import WasmscopeError

    try:
        from wasmscope.cost.calibrate import calibrate
        from wasmscope.cost.records import read_usage

        table = read_usage(args.source, function=args.function)
        if len(table) == 0:
            what = f"no invocations of {args.function}" if args.function else "no invocations"
            raise CommandError(f"{args.source}: {what}", EXIT_USAGE)
        fits = calibrate(table)
    except WasmscopeError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    if args.json:
        json.dump([f.to_json() for f in fits], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    from wasmscope.cli.render import Style

    style = Style.for_stream(sys.stdout)
    sys.stdout.write(f"{style.bold('wasmscope cost calibrate:')} {args.source}, {len(fits)} module{'s' if len(fits) != 1 else ''}\n")
    for f in fits:
        sys.stdout.write("\n" + render_calibration(f, style))
    return EXIT_OK


def render_calibration(f: Calibration, style: Style) -> str:
    colour = {"good": style.green, "poor": style.red}.get(f.status, style.yellow)
    names = ", ".join(f.functions) if f.functions else f.module
    lines = [f"{style.bold(names)}  {colour(f.status)}  (module {f.module[:12]}, {f.invocations} invocations)", f"  {f.verdict}"]
    if f.b is not None and f.a is not None:
        fit = f"  cpu = {f.a * 1e3:.3g} ms + {f.b * 1e9:.4g} s per 10^9 fuel"
        if f.c is not None:
            fit += f" + {f.c * 1e6:.3g} µs per host call"
        lines.append(fit)
        lines.append(
            f"  R² {f.r2:.4f}, residuals {f.residual_std_s * 1e3 if f.residual_std_s is not None else math.nan:.3g} ms"
            f" ({(f.residual_rel or 0.0):.1%} of the mean), fuel {f.fuel_min:,.0f} to {f.fuel_max:,.0f}"
        )
    return "\n".join(lines) + "\n"
