"""``wasmscope inspect FILE``: what a module or component is made of.

The report itself is built by :mod:`wasmscope.analysis.report`; this module
parses the options, reads the file, shows a progress bar during long
``--deep`` scans and renders the report as text or JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from wasmscope.cli import EXIT_DECODE, EXIT_OK, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from wasmscope.analysis.report import InspectReport
    from wasmscope.cli.render import Style
    from wasmscope.telemetry.reports import ReportRecord

HELP = "describe a .wasm module or component: sizes, capabilities, toolchain, features"

DESCRIPTION = """\
Describe a WebAssembly module or component without running it:

  - header and every section with its size and share of the file
  - imports grouped into capabilities (WASI filesystem, clocks, random,
    environment, process exit, sockets, wasi:* interfaces, JS host calls...)
  - exports; memories, tables and globals with their limits; data segments;
    the start function
  - the producers section and the toolchain inferred from it and from
    import/export conventions and names (clang/wasi-sdk, Emscripten,
    Rust/wasm-bindgen, Go, AssemblyScript, componentize-py...), with evidence
  - the Wasm features used: from the module's structure, and from every
    instruction with --deep
  - the N biggest functions by body size, named from the name section
  - the debug info present (name section, DWARF, source map)

Without --deep no function body is decoded, so even a 70 MB module is
reported in well under a second. A malformed custom section (say, a broken
name section) becomes a warning in the report, not a failure.
"""

EPILOG = """\
examples:
  wasmscope inspect app.wasm
      the human-readable report
  wasmscope inspect --top 25 app.wasm
      list the 25 biggest functions (default 10; 0 hides the list)
  wasmscope inspect --deep app.wasm
      also decode every instruction to list the features really used
      (SIMD, threads, bulk memory, tail calls, GC...); slower on big modules,
      with a progress bar on a terminal for modules over 4 MiB
  wasmscope inspect --json app.wasm > report.json
      the whole report as JSON (stable keys; "schema" names the version)
  wasmscope inspect --json app.wasm | jq '.capabilities[].key'
  wasmscope inspect --section-details component.wasm
      every import, export, global and data segment, and for a component
      the full report of each core module inside it
  cat app.wasm | wasmscope inspect -
      read the binary from standard input
  wasmscope inspect --push http://127.0.0.1:4318 app.wasm
      print the report and also send it to `wasmscope collect` (or any
      OTLP/HTTP collector) as one log record, event.name
      "wasmscope.inspect.report", its body the --json document
  WASMSCOPE_PUSH_TOKEN=secret wasmscope inspect --json --push https://collect.example:4318 app.wasm
      the same with "Authorization: Bearer secret" (the variable keeps the
      token out of the process list, unlike --push-token)

exit status:
  0 report printed, 1 the file is not valid WebAssembly (the message names
  the byte offset where decoding failed), 2 usage error or unreadable file
  (a --push URL that is not http:// or https:// included). A push that fails
  (connection refused, timeout, an HTTP error) does not change the exit
  status or the report printed: it adds one "wasmscope: warning:" line on
  stderr naming the URL and the reason.
"""

PROGRESS_THRESHOLD = 4 * 1024 * 1024  # bytes: smaller modules scan too fast to need a bar
CAPABILITY_NAMES_WIDTH = 100
NAME_WIDTH = 80
EXPORTS_SHOWN = 20
IMPORTS_SHOWN = 40


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a .wasm module or component ('-' reads standard input)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.add_argument(
        "--deep",
        action="store_true",
        help="decode every function body to find the features its instructions use",
    )
    p.add_argument(
        "--top",
        metavar="N",
        type=_non_negative,
        default=10,
        help="how many of the biggest functions to list (default: %(default)s)",
    )
    p.add_argument(
        "--section-details",
        action="store_true",
        help="list every import, export, global and data segment (and each core module of a component)",
    )
    bar = p.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar on stderr during --deep scans even if stderr is not a terminal",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")
    add_push_options(p, "report")


def add_push_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--push URL`` and ``--push-token TOKEN`` (shared with ``profile``)."""
    g = p.add_argument_group("push to a collector")
    g.add_argument(
        "--push",
        metavar="URL",
        help=f"also send the {what} to `wasmscope collect` or any OTLP/HTTP collector: one log "
        "record POSTed to URL/v1/logs, URL being a base such as http://127.0.0.1:4318; "
        "429/502/503/504 are retried after their Retry-After, 5 s at most in all; "
        "a failed push is a warning on stderr, never a change of output or exit status",
    )
    g.add_argument(
        "--push-token",
        metavar="TOKEN",
        help="send 'Authorization: Bearer TOKEN' with the push "
        "(default: $WASMSCOPE_PUSH_TOKEN, which keeps it out of the process list)",
    )


def push_target(args: argparse.Namespace) -> str | None:
    """The checked ``--push`` URL (``/v1/logs`` appended) or None; usage errors as
    :class:`CommandError` before the command does any work."""
    from wasmscope.telemetry.reports import logs_url

    if args.push is None:
        if args.push_token is not None:
            raise CommandError("--push-token needs --push URL", EXIT_USAGE)
        return None
    try:
        return logs_url(args.push)
    except ValueError as exc:
        raise CommandError(f"--push: {exc}", EXIT_USAGE) from None


def push_report(args: argparse.Namespace, make: Callable[[], ReportRecord], what: str, *,
                service_name: str | None = None, resource: dict[str, object] | None = None) -> bool:
    """Push the report record that ``make`` builds to ``--push``; on failure one
    warning line on stderr. True when it was delivered. Like telemetry, a push never
    fails the command: even a bug in building the record is only a warning."""
    from wasmscope.telemetry.reports import push, report_resource

    try:
        result = push(args.push, [make()], token=args.push_token,
                      resource=resource if resource is not None else report_resource(service_name))  # fmt: skip
        warning = result.warning(what)
        delivered = result.ok and not result.rejected
    except Exception as exc:
        if os.environ.get("WASMSCOPE_DEBUG"):
            raise
        warning = f"could not push {what}: internal error: {type(exc).__name__}: {exc} (set WASMSCOPE_DEBUG=1 for a traceback)"
        delivered = False
    if warning:
        try:
            sys.stderr.write(f"wasmscope: warning: {warning}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return delivered


# -- reading ----------------------------------------------------------------------
def _looks_like_text(data: bytes) -> str | None:
    head = data[:4096].lstrip()
    while head.startswith(b";;"):
        nl = head.find(b"\n")
        head = head[nl + 1 :].lstrip() if nl >= 0 else b""
    if head.startswith((b"(module", b"(component")):
        return "this is the WebAssembly text format (WAT), not a binary; convert it with `wasm-tools parse`"
    return None


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file", EXIT_USAGE) from None
    except IsADirectoryError:
        raise CommandError(f"{path}: is a directory, not a .wasm file", EXIT_USAGE) from None
    except PermissionError:
        raise CommandError(f"{path}: permission denied", EXIT_USAGE) from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from None


def _want_progress(args: argparse.Namespace, size: int, stream: TextIO) -> bool:
    if args.progress is False or not args.deep:
        return False
    if args.progress is True:
        return True
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and size > PROGRESS_THRESHOLD


def run(args: argparse.Namespace) -> int:
    from wasmscope.analysis.report import build_report
    from wasmscope.binary.component import decode
    from wasmscope.cli.render import ProgressBar, Style
    from wasmscope.errors import DecodeError

    path: str = args.file
    display = "<stdin>" if path == "-" else path
    push_target(args)
    data = _read(path)
    progress: Callable[[int, int], None] | None = None
    bar: ProgressBar | None = None
    if _want_progress(args, len(data), sys.stderr):
        bar = ProgressBar(sys.stderr, label=f"scanning {os.path.basename(display)}")
        progress = bar.update
    try:
        obj = decode(data)
        report = build_report(
            obj,
            deep=args.deep,
            top=args.top,
            section_details=args.section_details,
            progress=progress,
            path=display,
        )
    except DecodeError as exc:
        hint = _looks_like_text(data) if exc.offset == 0 else None
        message = f"{hint} (at byte offset 0x0)" if hint else str(exc)
        raise CommandError(f"{display}: {message}", EXIT_DECODE) from None
    except RecursionError:
        raise CommandError(f"{display}: nesting too deep to decode", EXIT_DECODE) from None
    finally:
        if bar is not None:
            bar.close()

    out = sys.stdout
    doc = report.to_json() if args.json or args.push is not None else None
    if doc is not None and args.json:
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        style = Style.for_stream(out)
        out.write(render_report(report, style, details=args.section_details, top=args.top))
    out.flush()
    if doc is not None and args.push is not None:
        import hashlib

        from wasmscope.telemetry.reports import inspect_report_record

        name = os.path.basename(path) if path != "-" else (report.debug.module_name or "<stdin>")
        sha256 = hashlib.sha256(data).hexdigest()
        push_report(args, lambda: inspect_report_record(doc, sha256=sha256, name=name), "the inspect report")
    return EXIT_OK


# -- rendering --------------------------------------------------------------------
def render_report(report: InspectReport, style: Style | None = None, *, details: bool = False, top: int = 10) -> str:
    """The human-readable report, as printed by ``wasmscope inspect``."""
    from wasmscope.cli.render import Style

    style = style or Style(False)
    lines: list[str] = []
    if report.component is not None:
        _render_component(report, style, details, top, lines)
    else:
        _render_module(report, style, details, top, lines)
    return "\n".join(lines).rstrip() + "\n"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _heading(lines: list[str], style: Style, text: str) -> None:
    if lines:
        lines.append("")
    lines.append(style.heading(text))


def _kv(lines: list[str], style: Style, key: str, value: str, width: int = 12) -> None:
    lines.append(f"{style.bold(key.ljust(width))}{value}")


def _render_summary(r: InspectReport, style: Style, lines: list[str]) -> None:
    from wasmscope.cli.render import fmt_int, human_bytes

    kind = "WebAssembly component" if r.kind == "component" else "WebAssembly module"
    version = f"binary version {r.header.version:#x}, layer 1" if r.kind == "component" else "binary version 1"
    title = r.path or r.label or "<module>"
    lines.append(f"{style.bold(title)}: {kind} ({version}), {human_bytes(r.size)} ({fmt_int(r.size)} bytes)")
    lines.append("")
    tc = r.toolchain
    name = style.green(tc.name) if tc.name != "unknown" else style.yellow(tc.name)
    extra = f", {tc.variant}" if tc.variant else ""
    _kv(lines, style, "toolchain", f"{name} ({tc.confidence} confidence{extra})")
    if tc.languages:
        _kv(lines, style, "languages", ", ".join(tc.languages))
    for i, ev in enumerate(tc.evidence[:4]):
        _kv(lines, style, "evidence" if i == 0 else "", ev)
    if tc.alternatives:
        _kv(lines, style, "also scored", ", ".join(tc.alternatives))
    f = r.functions
    _kv(
        lines,
        style,
        "functions",
        f"{fmt_int(f.total)} ({fmt_int(f.imported)} imported, {fmt_int(f.defined)} defined), "
        f"code {human_bytes(f.code_bytes)}",
    )


def _render_sections(r: InspectReport, style: Style, lines: list[str], aggregate: bool) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int, human_bytes, percent

    if aggregate:
        # Components repeat small sections dozens of times: one row per kind.
        kinds: dict[str, list[int]] = {}
        for s in r.sections:
            label = f'custom "{s.name}"' if s.name is not None else s.kind
            acc = kinds.setdefault(label, [0, 0, 0])
            acc[0] += 1
            acc[1] += s.size
            acc[2] += s.count or 0
        _heading(lines, style, f"Sections ({len(r.sections)}, by kind; --section-details lists each)")
        t = Table([Column("section"), Column("sections", ">"), Column("size", ">"), Column("%", ">"), Column("items", ">")])
        for label, (n, size, items) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
            t.add(label, n, human_bytes(size), percent(size, r.size), fmt_int(items) if items else "")
        lines.extend(t.render(style))
        return
    _heading(lines, style, f"Sections ({len(r.sections)})")
    t = Table(
        [Column("#", ">"), Column("section", max_width=48), Column("offset", ">"), Column("size", ">"),
         Column("bytes", ">"), Column("%", ">"), Column("items", ">")]
    )
    for s in r.sections:
        label = f'custom "{s.name}"' if s.name is not None else s.kind
        t.add(s.index, label, f"{s.offset:#x}", human_bytes(s.size), fmt_int(s.size), percent(s.size, r.size),
              "" if s.count is None else fmt_int(s.count))
    lines.extend(t.render(style))


def _render_capabilities(r: InspectReport, style: Style, lines: list[str]) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int, shorten

    n = len(r.imports)
    _heading(lines, style, f"Capabilities ({fmt_int(n)} import{'s' if n != 1 else ''})")
    if not r.capabilities:
        lines.append("  none: the module imports nothing, it can only compute")
        return
    t = Table([Column("capability"), Column("n", ">"), Column("imports")])
    for g in r.capabilities:
        if g.imports:
            modules = {i.module for i in g.imports}
            names = [i.name if len(modules) == 1 else i.qualified for i in g.imports]
            if len(modules) == 1:
                names_text = f"{next(iter(modules))}: " + ", ".join(names)
            else:
                names_text = ", ".join(names)
        else:
            names_text = ", ".join(g.interfaces)
        t.add(g.title if not g.key.startswith("module:") else f"module {g.key[7:]!r}", g.count, shorten(names_text, CAPABILITY_NAMES_WIDTH))
    lines.extend(t.render(style))


def _render_imports(r: InspectReport, style: Style, lines: list[str], details: bool) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int

    if not r.imports:
        return
    shown = r.imports if details else r.imports[:IMPORTS_SHOWN]
    more = len(r.imports) - len(shown)
    _heading(lines, style, f"Imports ({fmt_int(len(r.imports))})" + (f", first {len(shown)}" if more else ""))
    t = Table([Column("module"), Column("name", max_width=NAME_WIDTH), Column("kind"), Column("type", max_width=NAME_WIDTH), Column("capability")])
    for i in shown:
        t.add(i.module, i.name, i.kind, i.type, i.capability)
    lines.extend(t.render(style))
    if more:
        lines.append(style.dim(f"  ... {fmt_int(more)} more (--section-details or --json lists them all)"))


def _render_exports(r: InspectReport, style: Style, lines: list[str], details: bool) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int

    n = len(r.exports)
    shown = r.exports if details else r.exports[:EXPORTS_SHOWN]
    more = n - len(shown)
    _heading(lines, style, f"Exports ({fmt_int(n)})" + (f", first {len(shown)}" if more else ""))
    if not n:
        lines.append("  none")
        return
    t = Table([Column("name", max_width=NAME_WIDTH), Column("kind"), Column("index", ">"), Column("type", max_width=NAME_WIDTH)])
    for e in shown:
        target = f"  [{e.target}]" if e.target and e.target != e.name else ""
        t.add(e.name, e.kind, e.index, e.type + target)
    lines.extend(t.render(style))
    if more:
        lines.append(style.dim(f"  ... {fmt_int(more)} more (--section-details or --json lists them all)"))


def _render_storage(r: InspectReport, style: Style, lines: list[str], details: bool) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int, human_bytes

    _heading(lines, style, "Memories, tables and globals")
    if r.memories:
        t = Table([Column("memory"), Column("min", ">"), Column("max", ">"), Column("flags"), Column("imported / exported")])
        for m in r.memories:
            flags = ", ".join(x for x, on in (("shared", m.shared), ("64-bit", m.is64)) if on) or "-"
            mx = "none" if m.max_pages is None or m.max_bytes is None else f"{fmt_int(m.max_pages)} p ({human_bytes(m.max_bytes)})"
            where = ", ".join(filter(None, [f"from {m.imported_from}" if m.imported_from else "", *(f"as {x!r}" for x in m.exported_as)]))
            t.add(m.index, f"{fmt_int(m.min_pages)} p ({human_bytes(m.min_bytes)})", mx, flags, where or "-")
        lines.extend(t.render(style))
    else:
        lines.append("  no memory")
    if r.tables:
        t = Table([Column("table"), Column("element"), Column("min", ">"), Column("max", ">"), Column("imported / exported")])
        for tb in r.tables:
            where = ", ".join(filter(None, [f"from {tb.imported_from}" if tb.imported_from else "", *(f"as {x!r}" for x in tb.exported_as)]))
            t.add(tb.index, tb.element + (" (64-bit)" if tb.is64 else ""), fmt_int(tb.min), "none" if tb.max is None else fmt_int(tb.max), where or "-")
        lines.append("")
        lines.extend(t.render(style))
    g = r.globals
    n_imp = sum(1 for x in g if x.imported_from)
    n_mut = sum(1 for x in g if x.mutable)
    n_exp = sum(1 for x in g if x.exported_as)
    lines.append("")
    lines.append(
        f"  globals: {fmt_int(len(g))} ({fmt_int(n_imp)} imported, {fmt_int(n_mut)} mutable, {fmt_int(n_exp)} exported)"
        + (f"; tags: {r.tags}" if r.tags else "")
    )
    if g and (details or len(g) <= 8):
        t = Table([Column("global", ">"), Column("type"), Column("init / import", max_width=NAME_WIDTH), Column("name / exported as", max_width=NAME_WIDTH)])
        for x in g:
            label = ", ".join(filter(None, [x.name or "", *(f"as {e!r}" for e in x.exported_as)]))
            t.add(x.index, ("mut " if x.mutable else "") + x.type, x.init if x.imported_from is None else f"from {x.imported_from}", label)
        lines.extend(t.render(style, indent=4))


def _render_data(r: InspectReport, style: Style, lines: list[str], details: bool) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int, human_bytes, percent

    d = r.data
    _heading(lines, style, "Data and start")
    lines.append(
        f"  data segments: {fmt_int(d.count)}, {human_bytes(d.total_bytes)} ({percent(d.total_bytes, r.size)} of the file); "
        f"{fmt_int(d.active)} active, {fmt_int(d.passive)} passive; element segments: {fmt_int(r.elements)}"
    )
    if d.segments and (details or d.count <= 8):
        t = Table([Column("segment", ">"), Column("mode"), Column("memory", ">"), Column("offset", max_width=NAME_WIDTH), Column("size", ">"), Column("name")])
        for s in d.segments:
            t.add(s.index, s.mode, s.memory, s.offset or "-", fmt_int(s.size), s.name or "")
        lines.extend(t.render(style, indent=4))
        if d.truncated:
            lines.append(style.dim(f"    ... {d.count - len(d.segments)} more (--section-details lists them all)"))
    if r.start is None:
        lines.append("  start function: none")
    else:
        idx, name = r.start
        lines.append(f"  start function: {idx}" + (f" ({name})" if name else ""))
    if r.linking is not None:
        lk = r.linking
        needed = f"; needs {', '.join(lk.needed)}" if lk.needed else ""
        lines.append(
            f"  dynamic linking ({lk.format}): {human_bytes(lk.memory_size)} of data (align 2^{lk.memory_align}), "
            f"{fmt_int(lk.table_size)} table slots{needed}"
        )


def _render_producers(r: InspectReport, style: Style, lines: list[str]) -> None:
    from wasmscope.cli.render import Column, Table

    _heading(lines, style, "Producers")
    if not r.producers:
        lines.append("  no producers section")
        return
    t = Table([Column("field"), Column("values", max_width=120)])
    for fld, values in r.producers.items():
        t.add(fld, ", ".join(f"{n} {v}".strip() for n, v in values))
    lines.extend(t.render(style))


def _render_features(r: InspectReport, style: Style, lines: list[str]) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int, shorten

    fr = r.features
    how = (
        f"instructions ({fmt_int(fr.instructions or 0)} in {fmt_int(fr.functions_scanned or 0)} functions) and structure"
        if fr.deep
        else "structure only; --deep also scans every instruction"
    )
    _heading(lines, style, f"Features used ({how})")
    if not fr.used:
        lines.append("  none beyond WebAssembly 1.0 (MVP)" + ("" if fr.deep else " in the module's structure"))
    else:
        t = Table([Column("feature"), Column("found in"), Column("evidence")])
        for u in fr.used:
            t.add(u.name, ", ".join(u.sources), shorten("; ".join(u.evidence), CAPABILITY_NAMES_WIDTH))
        lines.extend(t.render(style))
    if fr.declared:
        lines.append(f"  target_features section declares: {' '.join(p + n for p, n in fr.declared)}")


def _render_top(r: InspectReport, style: Style, lines: list[str], top: int) -> None:
    from wasmscope.cli.render import Column, Table, human_bytes, percent

    if top <= 0:
        return
    _heading(lines, style, f"Top {len(r.top_functions)} functions by body size (code: {human_bytes(r.functions.code_bytes)})")
    if not r.top_functions:
        lines.append("  no function bodies")
        return
    t = Table([Column("function", ">"), Column("size", ">"), Column("% code", ">"), Column("% file", ">"), Column("name", max_width=100)])
    for f in r.top_functions:
        name = f.name or "(no name)"
        if f.module:
            name += f"  [{f.module.replace('core module ', 'module ')}]"
        t.add(f.index, human_bytes(f.size), percent(f.percent_of_code, 100), percent(f.percent_of_file, 100), name)
    lines.extend(t.render(style))


def _render_debug(r: InspectReport, style: Style, lines: list[str]) -> None:
    from wasmscope.cli.render import fmt_int, human_bytes

    d = r.debug
    _heading(lines, style, "Debug info")
    if not d.present:
        lines.append("  none (no name section, DWARF or source map)")
    if d.name_section:
        parts = [f"{fmt_int(d.function_names)} function names"]
        if d.local_names:
            parts.append(f"locals named in {fmt_int(d.local_names)} functions")
        if d.other_names:
            parts.append("also " + ", ".join(d.other_names))
        mod = f"module {d.module_name!r}; " if d.module_name else ""
        lines.append(f"  name section: {mod}{'; '.join(parts)}")
    if d.dwarf_sections:
        lines.append(f"  DWARF: {len(d.dwarf_sections)} sections, {human_bytes(d.dwarf_bytes)} ({', '.join(n for n, _ in d.dwarf_sections)})")
    if d.source_map_url:
        lines.append(f"  source map: {d.source_map_url}")
    if d.external_debug_info:
        lines.append(f"  external debug info: {d.external_debug_info}")
    if d.build_id:
        lines.append(f"  build id: {d.build_id}")


def _render_warnings(r: InspectReport, style: Style, lines: list[str]) -> None:
    if not r.warnings:
        return
    _heading(lines, style, style.yellow(f"Warnings ({len(r.warnings)})"))
    lines.extend(f"  {style.yellow('!')} {w}" for w in r.warnings)


def _render_module(r: InspectReport, style: Style, details: bool, top: int, lines: list[str]) -> None:
    _render_summary(r, style, lines)
    _render_sections(r, style, lines, aggregate=False)
    _render_capabilities(r, style, lines)
    if details:
        _render_imports(r, style, lines, details)
    _render_exports(r, style, lines, details)
    _render_storage(r, style, lines, details)
    _render_data(r, style, lines, details)
    _render_producers(r, style, lines)
    _render_features(r, style, lines)
    _render_top(r, style, lines, top)
    _render_debug(r, style, lines)
    _render_warnings(r, style, lines)


def _render_component(r: InspectReport, style: Style, details: bool, top: int, lines: list[str]) -> None:
    from wasmscope.cli.render import Column, Table, fmt_int, human_bytes, percent

    info = r.component
    assert info is not None
    _render_summary(r, style, lines)
    _kv(
        lines,
        style,
        "contains",
        f"{_plural(len(info.core_modules), 'core module')}, {_plural(info.components, 'nested component')}; "
        + ", ".join(f"{fmt_int(n)} {k}" for k, n in info.section_counts.items() if k not in ("core module", "component")),
    )
    _render_sections(r, style, lines, aggregate=not details)
    _render_capabilities(r, style, lines)
    _heading(lines, style, f"Imports ({len(r.imports)})")
    if r.imports:
        t = Table([Column("name", max_width=NAME_WIDTH), Column("kind"), Column("capability")])
        for i in r.imports:
            t.add(i.name, i.kind, i.capability)
        lines.extend(t.render(style))
    else:
        lines.append("  none")
    _heading(lines, style, f"Exports ({len(r.exports)})")
    if r.exports:
        t = Table([Column("name", max_width=NAME_WIDTH), Column("kind"), Column("index", ">")])
        for e in r.exports:
            t.add(e.name, e.kind, e.index)
        lines.extend(t.render(style))
    else:
        lines.append("  none")
    _heading(lines, style, f"Core modules ({len(info.core_modules)})")
    t = Table(
        [Column("module"), Column("size", ">"), Column("%", ">"), Column("functions", ">"), Column("imports", ">"),
         Column("memories", ">"), Column("toolchain")]
    )
    for m in info.core_modules:
        label = (m.label or "").replace("core module ", "")
        t.add(label, human_bytes(m.size), percent(m.size, r.size), fmt_int(m.functions.defined), len(m.imports), len(m.memories), m.toolchain.name)
    lines.extend(t.render(style))
    _render_producers(r, style, lines)
    _render_features(r, style, lines)
    _render_top(r, style, lines, top)
    _render_debug(r, style, lines)
    _render_warnings(r, style, lines)
    if details:
        for m in info.core_modules:
            lines.append("")
            lines.append(style.bold("=" * 72))
            sub: list[str] = []
            _render_module(m, style, details, top, sub)
            lines.extend(sub)
