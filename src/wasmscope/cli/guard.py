"""``wasmscope guard``: a module's capabilities against a policy.

``guard check MODULE --policy P.toml`` checks the imports before anything runs;
``guard learn --from USAGE.jsonl... -o OUT.toml`` writes the least-privilege policy
that the recorded runs pass and lists what a current policy grants and nothing used.
The work is in :mod:`wasmscope.guard`; this module parses options and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wasmscope.cli import EXIT_DECODE, EXIT_OK, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from wasmscope.cli.render import Style
    from wasmscope.guard.check import ImportVerdict
    from wasmscope.guard.findings import Finding
    from wasmscope.guard.policy import Policy
    from wasmscope.guard.usage import Usage

HELP = "check a module's imports against a capability policy; learn a policy from runs"

DESCRIPTION = """\
A capability policy (TOML) says what a guest may touch: which preopened dirs
and paths, which environment variables and arguments, which clocks, how many
random bytes, which exit codes, and budgets of host calls, output and open
descriptors. Its mode says what happens to a call outside it: monitor
(record and report), enforce (the call gets errno notcapable) or kill (the
instance traps). docs/guard.md is the reference of every key.

subcommands:
  check   every import of a module (or WIT import of a component), put into
          its capability family and checked against the policy, before
          anything runs: exit status 1 when the policy refuses to link it
  learn   the least-privilege policy that every recorded run passes (runs
          as JSON lines, one usage a line), and what a current policy
          grants that no run used
"""

EPILOG = """\
examples:
  wasmscope guard check app.wasm --policy app.policy.toml
      a table of the imports, their family and verdict, then the findings
      with the policy line that would allow each one
  wasmscope guard check app.wasm --policy p.toml --mode enforce --json
      the same as JSON, as if the policy said mode = "enforce"
  wasmscope guard learn --from runs.jsonl -o app.policy.toml
      write the policy that all runs in runs.jsonl pass
  wasmscope guard learn --from a.jsonl b.jsonl --policy app.policy.toml -o new.toml
      learn from two files, and list what app.policy.toml grants unused

A policy that lets a module read its data and nothing else:

  mode = "enforce"
  [filesystem]
  dirs = ["/data:ro"]
  read = ["/data/*.csv"]
  [clocks]
  allow = ["monotonic"]

exit status:
  check: 0 the module links under the policy (warnings included), 1 the
  policy refuses to link it or the file is not valid WebAssembly, 2 usage
  error (a bad policy names its file, key and the fix).
  learn: 0 the policy was written, 2 usage error (a bad usage line names
  its file and line number).
"""


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="guard_command", metavar="SUBCOMMAND", parser_class=type(p))
    check = sub.add_parser(
        "check",
        help="a module's imports against a policy, before running",
        description="Check every import of a module or component against a policy, before anything runs.",
        epilog="example:\n  wasmscope guard check app.wasm --policy app.policy.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("module", metavar="MODULE", help="a .wasm module or component")
    check.add_argument(
        "--policy", metavar="P.toml", required=True, help="the policy file (TOML; docs/guard.md)"
    )
    check.add_argument(
        "--mode",
        choices=("monitor", "enforce", "kill"),
        help="check as if the policy had this mode",
    )
    check.add_argument("--json", action="store_true", help="print the imports and findings as JSON")
    learn = sub.add_parser(
        "learn",
        help="the least-privilege policy that recorded runs pass",
        description="Write the least-privilege policy that every recorded run passes.",
        epilog="examples:\n  wasmscope guard learn --from runs.jsonl --policy current.toml -o learned.toml\n"
        "  wasmscope run --baseline guard.db --learn app.wasm   (a few times, with varied input)\n"
        "  wasmscope guard learn --baseline guard.db -o app.policy.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    learn.add_argument(
        "--from", dest="sources", metavar="FILE", nargs="+", action="extend", default=[],
        help="JSON-lines files of run usages (one Usage.to_json object a line; '-' reads stdin)",
    )  # fmt: skip
    learn.add_argument(
        "--baseline", metavar="FILE",
        help="read the usages that 'run/serve --baseline FILE --learn' stored (with --module)",
    )  # fmt: skip
    learn.add_argument(
        "--module", metavar="KEY",
        help="the module in --baseline: its sha256, or its name or route with --baseline-key name "
        "(default: the only one there)",
    )  # fmt: skip
    learn.add_argument(
        "--policy",
        metavar="CURRENT",
        help="the current policy: list what it grants and no run used",
    )
    learn.add_argument(
        "-o",
        "--output",
        metavar="OUT.toml",
        required=True,
        help="where to write the learned policy ('-': stdout)",
    )
    learn.add_argument(
        "--mode",
        choices=("monitor", "enforce", "kill"),
        default="monitor",
        help="the mode of the learned policy (default: %(default)s)",
    )
    learn.add_argument(
        "--glob-min",
        metavar="N",
        type=int,
        default=3,
        help="files of one directory (or arguments of one extension) that become a glob (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from wasmscope.errors import DecodeError, UsageError

    if args.guard_command is None:
        raise CommandError(
            "guard needs a subcommand: check or learn (see 'wasmscope guard --help')", EXIT_USAGE
        )
    try:
        if args.guard_command == "check":
            return _check(args)
        return _learn(args)
    except UsageError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except DecodeError as exc:
        raise CommandError(f"{args.module}: {exc}", EXIT_DECODE) from None


# -- check -----------------------------------------------------------------------
def _check(args: argparse.Namespace) -> int:
    from wasmscope.guard.check import check_imports, import_verdicts, refuses
    from wasmscope.guard.policy import load_policy

    if not os.path.exists(args.module):
        raise CommandError(f"{args.module}: no such file", EXIT_USAGE)
    policy = load_policy(args.policy)
    mode = args.mode or policy.mode
    kind, verdicts = import_verdicts(args.module, policy)
    findings = check_imports(args.module, policy, mode)
    refused = refuses(findings)
    out = sys.stdout
    if args.json:
        doc = {
            "module": args.module, "kind": kind, "policy": policy.source, "mode": mode, "refused": refused,
            "imports": [{"import": v.qualified, "kind": v.kind, "family": v.family, "verdict": v.verdict, "reason": v.reason} for v in verdicts],
            "findings": [f.to_json() for f in findings],
        }  # fmt: skip
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        from wasmscope.cli.render import Style

        out.write(
            render_check(args.module, kind, policy, mode, verdicts, findings, Style.for_stream(out))
        )
    out.flush()
    return 1 if refused else EXIT_OK


def render_check(
    module: str,
    kind: str,
    policy: Policy,
    mode: str,
    verdicts: Sequence[ImportVerdict],
    findings: Sequence[Finding],
    style: Style,
) -> str:
    """The text report of ``guard check``."""
    from wasmscope.cli.render import Column, Table, shorten

    lines = [f"{style.bold(module)}: WebAssembly {kind}, {len(verdicts)} import{'s' if len(verdicts) != 1 else ''}; "
             f"policy {policy.source} (mode {mode})", ""]  # fmt: skip
    lines.append(style.heading(f"Imports ({len(verdicts)})"))
    if verdicts:
        t = Table(
            [
                Column("import", max_width=72),
                Column("family"),
                Column("verdict"),
                Column("reason", max_width=60),
            ]
        )
        for v in verdicts:
            t.add(v.qualified, v.family, v.verdict, shorten(v.reason, 60))
        lines.extend(t.render(style))
    else:
        lines.append("  none: the module imports nothing, it can only compute")
    lines.append("")
    lines.append(style.heading(f"Findings ({len(findings)})"))
    if not findings:
        lines.append("  none: every import is granted")
    for f in findings:
        mark = style.red("denied ") if f.outcome == "denied" else style.yellow("warning")
        lines.append(f"  {mark}  {f.rule}  {f.message}")
        if f.suggestion:
            lines.append(style.dim(f"      to allow it: {f.suggestion}"))
    refused = sum(1 for f in findings if f.rule == "import.denied" and f.outcome == "denied")
    lines.append("")
    if refused:
        lines.append(
            style.red(
                f"refused: {refused} import{'s' if refused != 1 else ''} outside the policy; the module would not be linked"
            )
        )
    elif findings:
        lines.append(f"links, with {len(findings)} warning{'s' if len(findings) != 1 else ''}")
    else:
        lines.append(style.green("clean: the module links under the policy"))
    return "\n".join(lines) + "\n"


# -- learn -----------------------------------------------------------------------
def read_usages(paths: Sequence[str]) -> list[Usage]:
    """Usages from JSON-lines files (blank lines and ``#`` comments skipped)."""
    from wasmscope.errors import UsageError
    from wasmscope.guard.usage import Usage

    usages: list[Usage] = []
    for path in paths:
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
        except FileNotFoundError:
            raise UsageError(f"--from {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"--from {path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                usages.append(Usage.from_json(line))
            except UsageError as exc:
                raise UsageError(f"--from {path} line {number}: {exc}") from None
    return usages


def baseline_usages(path: str, module: str | None) -> list[Usage]:
    """The usages a baseline file holds for ``module`` (or its only module)."""
    from wasmscope.errors import UsageError
    from wasmscope.guard.baseline import Baseline
    from wasmscope.guard.usage import Usage

    if not os.path.exists(path):
        raise UsageError(f"--baseline {path}: no such file")
    with Baseline.open(path) as baseline:
        if module is None:
            keys = sorted({m.sha256 for m in baseline.modules()})
            if len(keys) != 1:
                listed = ", ".join(keys) or "none"
                raise UsageError(f"--baseline {path} holds {len(keys)} modules ({listed}): name one with --module")
            module = keys[0]
        stored = baseline.usages(module)
    if not stored:
        raise UsageError(f"--baseline {path}: no learned runs of {module} (learn them with --learn)")
    return [Usage.from_json(json.dumps(u)) for u in stored]


def render_findings(findings: Sequence[Finding], style: Style) -> str:
    """The findings of one guarded run, for the summary after ``run``."""
    if not findings:
        return f"  {style.dim('guard')}        {style.green('no findings')}\n"
    lines = [f"  {style.dim('guard')}        {len(findings)} finding{'s' if len(findings) != 1 else ''}"]
    for f in findings:
        mark = style.red(str(f.name)) if f.severity >= 17 else style.yellow(str(f.name))
        lines.append(f"    {mark}  {f.rule}  {f.message}")
        if f.suggestion:
            lines.append(style.dim(f"        to allow it: {f.suggestion}"))
    return "\n".join(lines) + "\n"


def _learn(args: argparse.Namespace) -> int:
    from wasmscope.errors import UsageError
    from wasmscope.guard.learn import learn, learned_notes, unused
    from wasmscope.guard.policy import load_policy

    if args.glob_min < 1:
        raise UsageError("--glob-min: expected 1 or more")
    current = load_policy(args.policy) if args.policy else None
    if not args.sources and not args.baseline:
        raise UsageError("guard learn needs runs: give --from FILE... or --baseline FILE")
    usages = read_usages(args.sources)
    if args.baseline:
        usages += baseline_usages(args.baseline, args.module)
    elif args.module:
        raise UsageError("--module names a module of --baseline FILE")
    policy = learn(usages, mode=args.mode, glob_min=args.glob_min)
    text = policy.to_toml(notes=learned_notes(usages))
    report = sys.stderr if args.output == "-" else sys.stdout
    if args.output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"-o {args.output}: cannot write: {exc.strerror or exc}") from None
    fs = policy.filesystem
    report.write(
        f"learned from {len(usages)} run{'s' if len(usages) != 1 else ''}: {len(fs.dirs)} dirs, "
        f"{len(fs.read or ())} read and {len(fs.write or ())} write paths, {len(policy.environment)} variables, "
        f"clocks {'granted' if policy.clocks else 'not granted'}, random {'granted' if policy.random else 'not granted'}"
        + (f" -> {args.output}\n" if args.output != "-" else "\n")
    )  # fmt: skip
    if current is not None:
        grants = unused(current, usages)
        report.write(
            f"\n{current.source}: {len(grants)} grant{'s' if len(grants) != 1 else ''} no run used\n"
        )
        for g in grants:
            report.write(f"  {g}\n")
    report.flush()
    return EXIT_OK
