"""``wasmscope cost``: what invocations cost.

``cost summary SOURCE --price SHEET`` reads invocation records (a ``run --report`` file,
JSON lines of records, a ``collect`` store folder or a ClickHouse URL) and prints, per
function and in total, the distributions of wall time, CPU time, fuel and peak memory
and the cost under the price sheet. Each subcommand is a ``_configure_NAME`` and a
``_run_NAME`` here; the work is in :mod:`wasmscope.cost`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import TYPE_CHECKING, Any

from wasmscope.cli import EXIT_OK, EXIT_USAGE, CommandError
from wasmscope.cli.render import bytes_text, count_text, duration_text, seconds_text, usd

if TYPE_CHECKING:
    from wasmscope.cli.render import Style
    from wasmscope.cost.summary import Cost, Stats, Summary

HELP = "what invocations cost: usage distributions per function, priced by a provider's sheet"

DESCRIPTION = """\
Turn invocation records into money. The records come from `wasmscope run
--report FILE` (one JSON record), JSON lines of such records, or the store of
`wasmscope collect` (its data folder, or a clickhouse:// URL).

Price sheets (--price): aws-lambda-x86, aws-lambda-arm64, cloudflare-workers,
fastly-compute, cloud-run, azure-consumption, azure-flex, or FILE.toml of the
same form (docs/cost.md). Each bills one of three meters: configured memory x
wall time, CPU time only, or observed memory (bucketed) x wall time.

subcommands:
  summary   per function and in total: invocations, errors, wall time, CPU
            time, fuel and peak memory as min/avg/p50/p95/p99/max, and the
            cost per invocation, per million and per month
  recommend right-sizing: memory, fuel limit and timeout per function, with
            the finding (Optimized, MemoryOverprovisioned, ...), the saving
            per million, and duration and cost at other sizes (--sweep: measured)
  calibrate per module, CPU time fitted to fuel and host calls, with R²
"""

EPILOG = """\
examples:
  wasmscope run --report run.json -q app.wasm
  wasmscope cost summary run.json --price aws-lambda-arm64 --memory-mb 128
  wasmscope cost summary runs.jsonl --price cloudflare-workers --monthly 50M
  wasmscope cost summary ~/.local/share/wasmscope/collect --price cloud-run --rate 20/s
  wasmscope cost summary runs.jsonl --price my-platform.toml --free-tier --json | jq .total.cost
  wasmscope cost summary runs.jsonl --price fastly-compute --function /api/search
  wasmscope cost recommend run.json --price aws-lambda-x86
  wasmscope cost calibrate runs.jsonl

exit status:
  0 success; 2 usage error (a bad records file names its line, a bad price
  sheet its key)
"""

_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "b": 1e9, "B": 1e9, "G": 1e9}
_PER = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}


_METRIC_TABLES = (
    ("wall", "wall time", seconds_text, ""),
    ("cpu", "CPU time", seconds_text, "no CPU time in the records"),
    ("fuel", "fuel", count_text, "not metered (wasmscope run --fuel N, or a route's fuel limit)"),
    ("peak_memory", "peak memory", bytes_text, "not observed"),
)


def parse_count(text: str, option: str) -> float:
    """``50M``, ``2.5k``, ``1e7``, ``10,000,000``."""
    m = re.fullmatch(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBG]?)\s*", text)
    if m is None:
        raise CommandError(f"{option} {text!r}: expected a number such as 5000000, 5M or 2.5k", EXIT_USAGE)
    value = float(m.group(1).replace(",", "").replace("_", "")) * _SUFFIX[m.group(2)]
    if not value > 0 or not math.isfinite(value):
        raise CommandError(f"{option} {text!r}: expected a number above 0", EXIT_USAGE)
    return value


def parse_rate(text: str) -> float:
    """``20/s``, ``1200/min``, ``3M/day``, or a bare number per second."""
    count, _, per = text.partition("/")
    seconds = _PER.get(per.strip() or "s")
    if seconds is None:
        raise CommandError(f"--rate {text!r}: expected N/s, N/min, N/h or N/day", EXIT_USAGE)
    return parse_count(count, "--rate") / seconds


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cost_command", metavar="SUBCOMMAND", parser_class=type(p))
    _configure_summary(sub)
    from wasmscope.cli import _cost_recommend

    _cost_recommend.configure_recommend(sub)
    _cost_recommend.configure_calibrate(sub)


def _configure_summary(sub: Any) -> None:
    s = sub.add_parser(
        "summary",
        help="usage distributions and cost per function and in total",
        description="Per function and in total: invocations, errors, wall time, CPU time, fuel and\n"
        "peak memory (min/avg/p50/p95/p99/max), and the cost under a price sheet per\n"
        "invocation, per million and per month (at the observed or a given rate).",
        epilog="examples:\n  wasmscope cost summary run.json --price aws-lambda-x86 --memory-mb 256\n"
        "  wasmscope cost summary runs.jsonl --price cloudflare-workers --rate 100/s\n"
        "  wasmscope cost summary ~/.local/share/wasmscope/collect --price cloud-run --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("source", metavar="FILE|DIR|URL",
                   help="a `run --report` JSON file, JSON lines of records, a collect store folder, "
                   "or a clickhouse:// / https:// store URL")  # fmt: skip
    s.add_argument("--price", metavar="SHEET",
                   help="the price sheet: a shipped name (aws-lambda-x86, cloudflare-workers, ...) or "
                   "FILE.toml; without it, usage only")  # fmt: skip
    s.add_argument("--memory-mb", type=float, metavar="N",
                   help="the configured memory to price a memory-time sheet at (default: each function's "
                   "memory limit in the records)")  # fmt: skip
    rate = s.add_mutually_exclusive_group()
    rate.add_argument("--rate", metavar="N/s",
                      help="price the month at this rate (N/s, N/min, N/h, N/day) instead of the observed one")  # fmt: skip
    rate.add_argument("--monthly", metavar="N", help="price the month at N invocations (5000000, 5M, 2.5k)")
    s.add_argument("--free-tier", action="store_true", help="take the sheet's monthly free tier off the month")
    s.add_argument("--concurrency", type=float, default=1.0, metavar="N",
                   help="requests one instance serves at once, for sheets that bill instance time (default 1)")  # fmt: skip
    s.add_argument("--function", metavar="NAME", help="only this function (a route, or module:entry)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")


_RUN = {"summary": "_run_summary"}


def run(args: argparse.Namespace) -> int:
    name = getattr(args, "cost_command", None)
    if name is None:
        raise CommandError("missing SUBCOMMAND: summary, recommend or calibrate (see 'wasmscope cost --help')", EXIT_USAGE)
    if name in ("recommend", "calibrate"):
        from wasmscope.cli import _cost_recommend

        rec: int = getattr(_cost_recommend, f"run_{name}")(args)
        return rec
    code: int = globals()[_RUN[name]](args)
    return code


def load_sheet(name: str) -> Any:
    """The price sheet ``name`` (a shipped one or a TOML file); usage errors as exit 2."""
    from wasmscope.cost.prices import load_price_sheet

    return load_price_sheet(name)


def _run_summary(args: argparse.Namespace) -> int:
    from wasmscope.errors import WasmscopeError

    monthly = parse_count(args.monthly, "--monthly") if args.monthly is not None else None
    rate = parse_rate(args.rate) if args.rate is not None else None
    if args.memory_mb is not None and not args.memory_mb > 0:
        raise CommandError(f"--memory-mb {args.memory_mb:g}: expected a size above 0", EXIT_USAGE)
    if not args.concurrency >= 1:
        raise CommandError(f"--concurrency {args.concurrency:g}: expected 1 or more", EXIT_USAGE)
    try:
        from wasmscope.cost.records import is_store, open_store, read_usage
        from wasmscope.cost.summary import summarize

        sheet = load_sheet(args.price) if args.price is not None else None
        options: dict[str, Any] = {"memory_mb": args.memory_mb, "monthly_invocations": monthly, "rate_per_s": rate,
                                   "free_tier": args.free_tier, "concurrency": args.concurrency}  # fmt: skip
        if is_store(args.source):  # aggregated where the invocations are
            from wasmscope.cost.store_summary import summarize_store

            with open_store(args.source) as store:
                summary = summarize_store(store, sheet, function=args.function, **options)
        else:
            summary = summarize(read_usage(args.source, function=args.function), sheet, **options)
    except WasmscopeError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    if summary.total.invocations == 0:
        what = f"no invocations of {args.function}" if args.function else "no invocations"
        raise CommandError(f"{args.source}: {what}", EXIT_USAGE)
    if args.json:
        json.dump(summary.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    from wasmscope.cli.render import Style

    sys.stdout.write(render_summary(summary, Style.for_stream(sys.stdout), source=args.source))
    return EXIT_OK


# -- the human table ----------------------------------------------------------------------


def render_summary(summary: Summary, style: Style, *, source: str | None = None, title: str = "wasmscope cost") -> str:
    """The summary as tables: one per column (functions as rows, the total last), then the cost."""
    from wasmscope.cli.render import Column, Table, fmt_int

    rows = [*summary.functions, summary.total] if len(summary.functions) > 1 else list(summary.functions)
    lines = []
    rate = summary.observed_rate
    n, k = summary.total.invocations, len(summary.functions)
    head = f"{fmt_int(n)} invocation{'s' if n != 1 else ''} of {k} function{'s' if k != 1 else ''}"
    if rate is not None:
        head += f" over {duration_text(summary.seconds_observed)} ({rate:,.3g}/s)"
    lines.append(style.bold(f"{title}: ") + head + (f"  [{source}]" if source else ""))
    width = max(len(f.function) for f in rows)
    for attr, label, fmt, missing in _METRIC_TABLES:
        stats: list[Stats] = [getattr(f, attr) for f in rows]
        lines.append("")
        if all(s.known == 0 for s in stats):
            lines.append(f"{style.bold(label)}: {missing}")
            continue
        first = attr == "wall"
        cols = [Column(label, max_width=max(width, len(label)))]
        if first:
            cols += [Column("invocations", ">"), Column("errors", ">")]
        cols += [Column(h, ">") for h in ("min", "avg", "p50", "p95", "p99", "max")]
        if not first:
            cols.append(Column("known", ">"))
        t = Table(cols)
        for f, s in zip(rows, stats, strict=True):
            cells: list[str] = [f.function]
            if first:
                cells += [fmt_int(f.invocations), _errors(f.errors, f.invocations)]
            cells += [fmt(v) for v in (s.min, s.avg, s.p50, s.p95, s.p99, s.max)]
            if not first:
                cells.append("all" if s.known == f.invocations else fmt_int(s.known))
            t.add(*cells)
        lines.extend(t.render(style, indent=0))
    total_cost = summary.total.cost
    if total_cost is not None:
        lines.append("")
        lines.append(_cost_heading(summary, total_cost))
        t = Table([Column("cost", max_width=max(width, 4)), Column("memory", ">"), Column("per invocation", ">"),
                   Column("per million", ">"), Column("per month", ">"), Column("observed", ">")])  # fmt: skip
        for f in rows:
            c = f.cost
            if c is None:
                continue
            mem = f"{c.memory_mb:g} MB" if c.memory_mb is not None else "-"
            t.add(f.function, mem, usd(c.per_invocation), usd(c.per_million), usd(c.per_month), usd(c.observed))
        lines.extend(t.render(style, indent=0))
    return "\n".join(lines) + "\n"


def _errors(errors: int, n: int) -> str:
    if errors == 0:
        return "0"
    return f"{errors:,} ({100 * errors / n:.1f}%)" if n else str(errors)


def _cost_heading(summary: Summary, c: Cost) -> str:
    month = "per month: -"
    if c.monthly_invocations is not None:
        month = f"per month at {count_text(c.monthly_invocations)} invocations"
        if summary.rate == "observed":
            month += " (the observed rate)"
    free = ", free tier taken off the month" if summary.free_tier else ""
    return f"cost under {summary.price} ({summary.meter}): {month}{free}; observed: the records' sum"
