"""The ``inspect`` report: one dataclass tree built from a core module or a
component, printable by the CLI and serialisable with :meth:`InspectReport.to_json`.

Building a report never decodes a function body unless ``deep=True``: sizes
come from the code section's index and names from the name section, so a
69 MB module is reported in a fraction of a second.

A malformed custom section (a broken ``name`` or ``producers`` section) is a
warning in the report, not a failure; a malformed known section raises
:class:`~wasmscope.errors.DecodeError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmscope.analysis.capabilities import CapabilityGroup, group_imports
from wasmscope.analysis.features import FeatureReport, FeatureUse, module_features
from wasmscope.analysis.sizes import (
    FunctionSize,
    SectionSize,
    function_sizes_total,
    section_sizes,
    top_functions,
)
from wasmscope.analysis.toolchain import Toolchain, ToolchainFacts, infer_toolchain
from wasmscope.binary import custom
from wasmscope.binary.component import Component, ComponentSectionId
from wasmscope.binary.component import decode as decode_binary
from wasmscope.binary.instructions import Instruction
from wasmscope.binary.module import Module
from wasmscope.binary.sections import SectionId
from wasmscope.binary.types import (
    ExternKind,
    FuncType,
    GlobalType,
    MemoryType,
    TableType,
    TagType,
    valtype_name,
)
from wasmscope.errors import DecodeError

__all__ = [
    "SCHEMA",
    "ComponentInfo",
    "DataSegmentInfo",
    "DataSummary",
    "DebugInfo",
    "ExportInfo",
    "FunctionCounts",
    "GlobalInfo",
    "Header",
    "ImportInfo",
    "InspectReport",
    "LinkingInfo",
    "MemoryInfo",
    "TableInfo",
    "build_report",
    "inspect_bytes",
    "inspect_path",
]

SCHEMA = "wasmscope.inspect/1"
PAGE = 65536
DATA_SEGMENTS_SHOWN = 20  # per report, unless section_details

Progress = Callable[[int, int], None]


# -- report items -----------------------------------------------------------------
@dataclass(slots=True)
class Header:
    kind: str  # "module" or "component"
    version: int  # 1 for modules, 0x0d for components
    layer: int  # 0 module, 1 component
    size: int

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "version": self.version, "layer": self.layer, "size": self.size}


@dataclass(slots=True)
class FunctionCounts:
    imported: int = 0
    defined: int = 0
    code_bytes: int = 0  # payload of the code section

    @property
    def total(self) -> int:
        return self.imported + self.defined

    def to_json(self) -> dict[str, object]:
        return {"imported": self.imported, "defined": self.defined, "total": self.total, "code_bytes": self.code_bytes}


@dataclass(slots=True)
class ImportInfo:
    module: str
    name: str
    kind: str  # func, table, memory, global, tag (components: instance, func, type...)
    type: str  # human description of the type
    capability: str  # capability key

    def to_json(self) -> dict[str, object]:
        return {"module": self.module, "name": self.name, "kind": self.kind, "type": self.type, "capability": self.capability}


@dataclass(slots=True)
class ExportInfo:
    name: str
    kind: str
    index: int
    type: str  # human description ("" when unknown)
    target: str | None = None  # the exported item's name from the name section

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "index": self.index, "type": self.type, "target": self.target}


@dataclass(slots=True)
class MemoryInfo:
    index: int
    imported_from: str | None  # "module.name" when imported
    min_pages: int
    max_pages: int | None
    shared: bool
    is64: bool
    exported_as: list[str] = field(default_factory=list)

    @property
    def min_bytes(self) -> int:
        return self.min_pages * PAGE

    @property
    def max_bytes(self) -> int | None:
        return None if self.max_pages is None else self.max_pages * PAGE

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "imported_from": self.imported_from,
            "min_pages": self.min_pages,
            "max_pages": self.max_pages,
            "min_bytes": self.min_bytes,
            "max_bytes": self.max_bytes,
            "shared": self.shared,
            "is64": self.is64,
            "exported_as": list(self.exported_as),
        }


@dataclass(slots=True)
class TableInfo:
    index: int
    imported_from: str | None
    element: str
    min: int
    max: int | None
    is64: bool
    exported_as: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "imported_from": self.imported_from,
            "element": self.element,
            "min": self.min,
            "max": self.max,
            "is64": self.is64,
            "exported_as": list(self.exported_as),
        }


@dataclass(slots=True)
class GlobalInfo:
    index: int
    imported_from: str | None
    type: str
    mutable: bool
    init: str | None  # the constant expression, e.g. "i32.const 1048576"
    name: str | None = None  # from the name section
    exported_as: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "imported_from": self.imported_from,
            "type": self.type,
            "mutable": self.mutable,
            "init": self.init,
            "name": self.name,
            "exported_as": list(self.exported_as),
        }


@dataclass(slots=True)
class DataSegmentInfo:
    index: int
    mode: str  # "active" or "passive"
    memory: int
    offset: str | None  # constant expression, e.g. "i32.const 1024"
    size: int
    name: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "mode": self.mode,
            "memory": self.memory,
            "offset": self.offset,
            "size": self.size,
            "name": self.name,
        }


@dataclass(slots=True)
class DataSummary:
    count: int = 0
    total_bytes: int = 0
    active: int = 0
    passive: int = 0
    segments: list[DataSegmentInfo] = field(default_factory=list)  # possibly only the first ones
    truncated: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "total_bytes": self.total_bytes,
            "active": self.active,
            "passive": self.passive,
            "segments": [s.to_json() for s in self.segments],
            "truncated": self.truncated,
        }


@dataclass(slots=True)
class DebugInfo:
    name_section: bool = False
    module_name: str | None = None
    function_names: int = 0
    local_names: int = 0  # functions with named locals
    other_names: list[str] = field(default_factory=list)  # other name subsections present
    dwarf_sections: list[tuple[str, int]] = field(default_factory=list)
    source_map_url: str | None = None
    external_debug_info: str | None = None
    build_id: str | None = None

    @property
    def dwarf_bytes(self) -> int:
        return sum(size for _n, size in self.dwarf_sections)

    @property
    def present(self) -> bool:
        return bool(self.name_section or self.dwarf_sections or self.source_map_url or self.external_debug_info)

    def to_json(self) -> dict[str, object]:
        return {
            "present": self.present,
            "name_section": self.name_section,
            "module_name": self.module_name,
            "function_names": self.function_names,
            "local_names": self.local_names,
            "other_names": list(self.other_names),
            "dwarf": bool(self.dwarf_sections),
            "dwarf_sections": [{"name": n, "size": s} for n, s in self.dwarf_sections],
            "dwarf_bytes": self.dwarf_bytes,
            "source_map_url": self.source_map_url,
            "external_debug_info": self.external_debug_info,
            "build_id": self.build_id,
        }


@dataclass(slots=True)
class LinkingInfo:
    """A dynamic library's ``dylink.0`` (or legacy ``dylink``) section."""

    format: str
    memory_size: int = 0
    memory_align: int = 0
    table_size: int = 0
    table_align: int = 0
    needed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "memory_size": self.memory_size,
            "memory_align": self.memory_align,
            "table_size": self.table_size,
            "table_align": self.table_align,
            "needed": list(self.needed),
        }


@dataclass(slots=True)
class ComponentInfo:
    """What only components have: their parts and their interfaces."""

    section_counts: dict[str, int] = field(default_factory=dict)
    core_modules: list[InspectReport] = field(default_factory=list)  # in order, nested ones included
    components: int = 0  # nested components, at any depth
    interfaces_imported: list[str] = field(default_factory=list)
    interfaces_exported: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "section_counts": dict(self.section_counts),
            "core_modules": [m.to_json() for m in self.core_modules],
            "components": self.components,
            "interfaces_imported": list(self.interfaces_imported),
            "interfaces_exported": list(self.interfaces_exported),
        }


@dataclass(slots=True)
class InspectReport:
    header: Header
    path: str | None = None
    offset: int = 0  # where it starts in the file (nested core modules)
    label: str | None = None  # "core module 3 (libc.so)" for nested modules
    sections: list[SectionSize] = field(default_factory=list)
    functions: FunctionCounts = field(default_factory=FunctionCounts)
    imports: list[ImportInfo] = field(default_factory=list)
    capabilities: list[CapabilityGroup] = field(default_factory=list)
    exports: list[ExportInfo] = field(default_factory=list)
    memories: list[MemoryInfo] = field(default_factory=list)
    tables: list[TableInfo] = field(default_factory=list)
    globals: list[GlobalInfo] = field(default_factory=list)
    tags: int = 0
    data: DataSummary = field(default_factory=DataSummary)
    elements: int = 0
    start: tuple[int, str | None] | None = None  # (function index, name)
    producers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    toolchain: Toolchain = field(default_factory=lambda: Toolchain("unknown", "none"))
    features: FeatureReport = field(default_factory=FeatureReport)
    top_functions: list[FunctionSize] = field(default_factory=list)
    debug: DebugInfo = field(default_factory=DebugInfo)
    linking: LinkingInfo | None = None
    warnings: list[str] = field(default_factory=list)
    component: ComponentInfo | None = None

    @property
    def kind(self) -> str:
        return self.header.kind

    @property
    def size(self) -> int:
        return self.header.size

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (``schema`` names its version)."""
        return {
            "schema": SCHEMA,
            "path": self.path,
            "kind": self.kind,
            "size": self.size,
            "offset": self.offset,
            "label": self.label,
            "header": self.header.to_json(),
            "sections": [s.to_json() for s in self.sections],
            "functions": self.functions.to_json(),
            "imports": [i.to_json() for i in self.imports],
            "capabilities": [c.to_json() for c in self.capabilities],
            "exports": [e.to_json() for e in self.exports],
            "memories": [m.to_json() for m in self.memories],
            "tables": [t.to_json() for t in self.tables],
            "globals": [g.to_json() for g in self.globals],
            "tags": self.tags,
            "data": self.data.to_json(),
            "elements": self.elements,
            "start": None if self.start is None else {"index": self.start[0], "name": self.start[1]},
            "producers": {k: [{"name": n, "version": v} for n, v in vals] for k, vals in self.producers.items()},
            "toolchain": self.toolchain.to_json(),
            "features": self.features.to_json(),
            "top_functions": [f.to_json() for f in self.top_functions],
            "debug": self.debug.to_json(),
            "linking": None if self.linking is None else self.linking.to_json(),
            "warnings": list(self.warnings),
            "component": None if self.component is None else self.component.to_json(),
        }


# -- helpers ----------------------------------------------------------------------
def _functype(ft: FuncType) -> str:
    params = ", ".join(valtype_name(t) for t in ft.params)
    results = ", ".join(valtype_name(t) for t in ft.results)
    if len(ft.results) > 1:
        results = f"({results})"
    return f"({params}) -> {results or '()'}"


def _limits(lo: int, hi: int | None) -> str:
    return f"{lo}" if hi is None else f"{lo}..{hi}"


def _expr(expr: Sequence[Instruction] | None, global_names: dict[int, str] | None = None) -> str | None:
    if expr is None:
        return None
    from wasmscope.binary.opcodes import END, GLOBAL_GET, NAMES

    parts = []
    for ins in expr:
        op = ins[0]
        if op == END:
            continue
        text = NAMES.get(op, hex(op))
        args = ins[1:]
        if op == GLOBAL_GET and global_names and args and args[0] in global_names:
            text += f" {args[0]} ({global_names[args[0]]})"
        elif args:
            text += " " + " ".join(str(a) for a in args)
        parts.append(text)
    return "; ".join(parts)


class _Names:
    """What the name section gave, or empty maps if it is absent or broken."""

    def __init__(self) -> None:
        self.section: custom.NameSection | None = None

    @property
    def functions(self) -> dict[int, str]:
        return self.section.functions if self.section else {}

    @property
    def globals(self) -> dict[int, str]:
        return self.section.globals if self.section else {}

    @property
    def datas(self) -> dict[int, str]:
        return self.section.datas if self.section else {}


def _custom(m: Module, name: str, warnings: list[str], where: str) -> object | None:
    """The first custom section ``name`` decoded, or None (absent or broken)."""
    secs = m.custom_sections(name)
    if not secs:
        return None
    sec = secs[0]
    try:
        return custom.decode_custom(name, m.data, sec.content_start, sec.end)
    except DecodeError as exc:
        warnings.append(f"{where}custom section {name!r} is malformed and was ignored: {exc}")
    except (ValueError, IndexError, UnicodeDecodeError) as exc:  # defensive: never fail on a custom section
        warnings.append(f"{where}custom section {name!r} is malformed and was ignored: {exc}")
    return None


# -- modules ----------------------------------------------------------------------
def _module_report(
    m: Module,
    *,
    deep: bool,
    top: int,
    section_details: bool,
    progress: Progress | None,
    path: str | None,
    label: str | None = None,
) -> InspectReport:
    warnings: list[str] = []
    where = ""
    report = InspectReport(Header("module", 1, 0, m.size), path=path, offset=m.offset, label=label)
    report.sections = section_sizes(m)

    # custom sections first: names feed everything else
    names = _Names()
    ns = _custom(m, "name", warnings, where)
    if isinstance(ns, custom.NameSection):
        names.section = ns
    prod = _custom(m, "producers", warnings, where)
    if isinstance(prod, custom.Producers):
        report.producers = {k: list(v) for k, v in prod.fields.items()}
    tf = _custom(m, "target_features", warnings, where)
    declared = tf.features if isinstance(tf, custom.TargetFeatures) else []
    for dl_name in ("dylink.0", "dylink"):
        dl = _custom(m, dl_name, warnings, where)
        if isinstance(dl, custom.DylinkInfo):
            mi = dl.mem_info or custom.DylinkMemInfo()
            report.linking = LinkingInfo(
                dl_name, mi.memory_size, mi.memory_align, mi.table_size, mi.table_align, list(dl.needed)
            )
            break

    # functions
    imports = m.imports
    n_imp = m.num_imported_functions
    code = m.code
    if len(m.functions) != len(code):
        sec = m.section(SectionId.CODE) or m.section(SectionId.FUNCTION)
        raise DecodeError("function and code section have inconsistent lengths", sec.offset if sec else m.offset)
    report.functions = FunctionCounts(n_imp, len(code), function_sizes_total(m))

    # exports, indexed by (kind, index) for the other tables
    exports = m.exports
    exported: dict[tuple[int, int], list[str]] = {}
    for e in exports:
        exported.setdefault((e.kind, e.index), []).append(e.name)

    # imports and capabilities
    types = m.types

    def functype_of_typeidx(idx: int) -> str:
        if 0 <= idx < len(types) and isinstance(types[idx].comp, FuncType):
            comp = types[idx].comp
            assert isinstance(comp, FuncType)
            return _functype(comp)
        return f"type {idx}"

    groups = group_imports((i.module, i.name, ExternKind.NAMES[i.kind]) for i in imports)
    key_of = {(ref.module, ref.name): g.key for g in groups for ref in g.imports}
    for imp in imports:
        t = imp.type
        if isinstance(t, int):
            desc = functype_of_typeidx(t)
        elif isinstance(t, TableType):
            desc = f"{valtype_name(t.elem)} {_limits(t.limits.min, t.limits.max)}"
        elif isinstance(t, MemoryType):
            desc = f"{_limits(t.limits.min, t.limits.max)} pages" + (" shared" if t.limits.shared else "") + (" i64" if t.limits.is64 else "")
        elif isinstance(t, GlobalType):
            desc = ("mut " if t.mutable else "") + valtype_name(t.valtype)
        elif isinstance(t, TagType):
            desc = f"tag {functype_of_typeidx(t.type)}"
        else:  # pragma: no cover
            desc = ""
        report.imports.append(
            ImportInfo(imp.module, imp.name, ExternKind.NAMES[imp.kind], desc, key_of.get((imp.module, imp.name), ""))
        )
    report.capabilities = groups

    # exports
    gtypes = m.global_types()
    for e in exports:
        desc = ""
        target = None
        if e.kind == ExternKind.FUNC:
            try:
                desc = _functype(m.function_type(e.index))
            except (DecodeError, IndexError):
                desc = "?"
            target = names.functions.get(e.index)
        elif e.kind == ExternKind.GLOBAL and e.index < len(gtypes):
            gt = gtypes[e.index]
            desc = ("mut " if gt.mutable else "") + valtype_name(gt.valtype)
            target = names.globals.get(e.index)
        report.exports.append(ExportInfo(e.name, ExternKind.NAMES[e.kind], e.index, desc, target))

    # memories, tables, globals
    idx = 0
    for imp in imports:
        if imp.kind == ExternKind.MEMORY and isinstance(imp.type, MemoryType):
            lim = imp.type.limits
            report.memories.append(
                MemoryInfo(idx, f"{imp.module}.{imp.name}", lim.min, lim.max, lim.shared, lim.is64, exported.get((ExternKind.MEMORY, idx), []))
            )
            idx += 1
    for mt in m.memories:
        lim = mt.limits
        report.memories.append(MemoryInfo(idx, None, lim.min, lim.max, lim.shared, lim.is64, exported.get((ExternKind.MEMORY, idx), [])))
        idx += 1
    idx = 0
    for imp in imports:
        if imp.kind == ExternKind.TABLE and isinstance(imp.type, TableType):
            lim = imp.type.limits
            report.tables.append(
                TableInfo(idx, f"{imp.module}.{imp.name}", valtype_name(imp.type.elem), lim.min, lim.max, lim.is64, exported.get((ExternKind.TABLE, idx), []))
            )
            idx += 1
    for tbl in m.tables:
        lim = tbl.type.limits
        report.tables.append(TableInfo(idx, None, valtype_name(tbl.type.elem), lim.min, lim.max, lim.is64, exported.get((ExternKind.TABLE, idx), [])))
        idx += 1
    # global names for constant expressions: the name section's, else the import's
    gnames = dict(names.globals)
    for i, imp in enumerate(m.imported(ExternKind.GLOBAL)):
        gnames.setdefault(i, f"{imp.module}.{imp.name}")
    idx = 0
    for imp in imports:
        if imp.kind == ExternKind.GLOBAL and isinstance(imp.type, GlobalType):
            report.globals.append(
                GlobalInfo(idx, f"{imp.module}.{imp.name}", valtype_name(imp.type.valtype), imp.type.mutable, None, names.globals.get(idx), exported.get((ExternKind.GLOBAL, idx), []))
            )
            idx += 1
    for g in m.globals:
        report.globals.append(
            GlobalInfo(idx, None, valtype_name(g.type.valtype), g.type.mutable, _expr(g.init, gnames), names.globals.get(idx), exported.get((ExternKind.GLOBAL, idx), []))
        )
        idx += 1
    report.tags = len(m.tags) + len(m.imported(ExternKind.TAG))

    # data and elements
    segs = m.data_segments
    data = DataSummary(count=len(segs))
    shown = len(segs) if section_details else DATA_SEGMENTS_SHOWN
    for i, d in enumerate(segs):
        size = len(d.init)
        data.total_bytes += size
        if d.mode == "passive":
            data.passive += 1
        else:
            data.active += 1
        if i < shown:
            data.segments.append(DataSegmentInfo(i, d.mode, d.memory, _expr(d.offset, gnames), size, names.datas.get(i)))
    data.truncated = len(data.segments) < len(segs)
    report.data = data
    report.elements = len(m.elements)

    # start
    start = m.start_function
    if start is not None:
        report.start = (start, names.functions.get(start))

    # debug info
    dbg = DebugInfo()
    if names.section is not None:
        nsec = names.section
        dbg.name_section = True
        dbg.module_name = nsec.module
        dbg.function_names = len(nsec.functions)
        dbg.local_names = sum(1 for v in nsec.locals.values() if v)
        dbg.other_names = [
            label_
            for label_, value in (
                ("labels", nsec.labels), ("types", nsec.types), ("tables", nsec.tables),
                ("memories", nsec.memories), ("globals", nsec.globals), ("elems", nsec.elems),
                ("datas", nsec.datas), ("fields", nsec.fields), ("tags", nsec.tags),
            )
            if value
        ]
    elif m.custom_sections("name"):
        dbg.name_section = True  # present but unreadable: see warnings
    for s in m.custom_sections():
        assert s.name is not None
        if s.name.startswith(".debug_"):
            dbg.dwarf_sections.append((s.name, s.end - s.content_start))
    smu = _custom(m, "sourceMappingURL", warnings, where)
    if isinstance(smu, custom.SourceMappingURL):
        dbg.source_map_url = smu.url
    ext = m.custom_sections("external_debug_info")
    if ext:
        try:
            from wasmscope.binary.reader import Reader

            dbg.external_debug_info = Reader(m.data, ext[0].content_start, ext[0].end).name()
        except DecodeError as exc:
            warnings.append(f"custom section 'external_debug_info' is malformed and was ignored: {exc}")
    bid = _custom(m, "build_id", warnings, where)
    if isinstance(bid, custom.BuildId):
        dbg.build_id = bytes(bid.id).hex()
    report.debug = dbg

    # toolchain
    facts = ToolchainFacts(
        producers=report.producers,
        imports=[(i.module, i.name) for i in imports],
        exports=[e.name for e in exports],
        custom_sections=[s.name or "" for s in m.custom_sections()],
        function_names=names.functions.values(),
        module_name=names.section.module if names.section else None,
    )
    report.toolchain = infer_toolchain(facts)

    # features, sizes
    report.features = module_features(m, deep=deep, declared=declared, progress=progress)
    # Like twiggy: without a name section, an export names its function.
    fnames = {e.index: e.name for e in m.exports if e.kind == ExternKind.FUNC}
    fnames.update(names.functions)
    report.top_functions = top_functions(m, fnames, top)
    report.warnings = warnings
    return report


# -- components -------------------------------------------------------------------
def _walk_modules(c: Component, prefix: str = "") -> list[tuple[str, Module]]:
    """(label, module) for every core module, nested components included."""
    out: list[tuple[str, Module]] = []
    mods = iter(c.core_modules)
    comps = iter(c.components)
    n_mod = n_comp = 0
    for s in c.sections:
        if s.id == ComponentSectionId.CORE_MODULE:
            out.append((f"{prefix}{n_mod}", next(mods)))
            n_mod += 1
        elif s.id == ComponentSectionId.COMPONENT:
            out.extend(_walk_modules(next(comps), f"{prefix}c{n_comp}/"))
            n_comp += 1
    return out


def _count_components(c: Component) -> int:
    return sum(1 + _count_components(sub) for sub in c.components)


def _component_report(
    c: Component,
    *,
    deep: bool,
    top: int,
    section_details: bool,
    progress: Progress | None,
    path: str | None,
) -> InspectReport:
    warnings: list[str] = []
    report = InspectReport(Header("component", 0x0D, 1, c.size), path=path, offset=c.offset)
    total = c.size or 1
    for i, s in enumerate(c.sections):
        report.sections.append(
            SectionSize(i, s.id, s.name, s.custom_name, s.offset, s.total_size, s.size, 100.0 * s.total_size / total, s.count)
        )
    try:
        prod = c.producers
    except DecodeError as exc:
        prod = None
        warnings.append(f"custom section 'producers' is malformed and was ignored: {exc}")
    if prod is not None:
        report.producers = {k: list(v) for k, v in prod.fields.items()}

    imports = c.imports
    exports = c.exports
    report.imports = [ImportInfo("", i.name, i.kind, "" if i.type_index is None else f"type {i.type_index}", "") for i in imports]
    report.exports = [ExportInfo(e.name, e.kind, e.index, "" if e.type_index is None else f"type {e.type_index}") for e in exports]

    # core modules: each gets its own report, sharing one progress bar
    walked = _walk_modules(c)
    big_total = sum(m.size for _l, m in walked) or 1
    done_before = 0
    modules: list[InspectReport] = []
    for label, m in walked:

        def sub_progress(done: int, tot: int, base: int = done_before, size: int = m.size) -> None:
            if progress is not None:
                share = done / tot if tot else 1.0
                progress(base + int(share * size), big_total)

        sub = _module_report(
            m,
            deep=deep,
            top=top,
            section_details=section_details,
            progress=sub_progress if progress is not None else None,
            path=None,
            label=f"core module {label}",
        )
        if sub.debug.module_name:
            sub.label = f"core module {label} ({sub.debug.module_name})"
        modules.append(sub)
        warnings.extend(f"{sub.label}: {w}" for w in sub.warnings)
        done_before += m.size
    if progress is not None:
        progress(big_total, big_total)

    info = ComponentInfo(
        section_counts=c.section_counts,
        core_modules=modules,
        components=_count_components(c),
        interfaces_imported=c.interfaces_imported(),
        interfaces_exported=c.interfaces_exported(),
    )
    report.component = info

    # capabilities: the component's own interface imports; core imports
    # of wasi interfaces only restate them
    other_imports = [(i.name, "", i.kind) for i in imports if i.kind != "instance"]
    report.capabilities = group_imports(interfaces=info.interfaces_imported)
    if other_imports:
        report.capabilities += [g for g in group_imports(interfaces=[n for n, _, _ in other_imports]) if g.key not in {x.key for x in report.capabilities}]
    key_of = {iface: g.key for g in report.capabilities for iface in g.interfaces}
    for ii in report.imports:
        ii.capability = key_of.get(ii.name, "")

    # functions, tags, features, sizes: summed over core modules
    report.functions = FunctionCounts(
        sum(r.functions.imported for r in modules),
        sum(r.functions.defined for r in modules),
        sum(r.functions.code_bytes for r in modules),
    )
    feats = FeatureReport(deep=deep)
    uses: dict[str, FeatureUse] = {"component-model": FeatureUse("component-model", ["structure"], ["a component (layer 1)"])}
    for r in modules:
        for u in r.features.used:
            acc = uses.setdefault(u.name, FeatureUse(u.name))
            for src in u.sources:
                if src not in acc.sources:
                    acc.sources.append(src)
            if len(acc.evidence) < 5:
                acc.evidence.extend(f"{r.label}: {e}" for e in u.evidence[: 5 - len(acc.evidence)])
            acc.instructions += u.instructions
    from wasmscope.analysis.features import FEATURE_ORDER

    order = {n: i for i, n in enumerate(FEATURE_ORDER)}
    feats.used = sorted(uses.values(), key=lambda u: (order.get(u.name, len(order)), u.name))
    if deep:
        feats.instructions = sum(r.features.instructions or 0 for r in modules)
        feats.functions_scanned = sum(r.features.functions_scanned or 0 for r in modules)
    report.features = feats

    # the biggest functions across all core modules
    ranked: list[tuple[int, str, FunctionSize]] = []
    for r in modules:
        for f in r.top_functions:
            ranked.append((f.size, r.label or "", f))
    ranked.sort(key=lambda t: -t[0])
    for _size, lbl, f in ranked[:top]:
        report.top_functions.append(
            FunctionSize(f.index, f.name, f.size, 100.0 * f.size / (report.functions.code_bytes or 1), 100.0 * f.size / total, lbl)
        )

    # debug: any core module's
    dbg = DebugInfo()
    for r in modules:
        d = r.debug
        dbg.name_section = dbg.name_section or d.name_section
        dbg.function_names += d.function_names
        dbg.local_names += d.local_names
        dbg.dwarf_sections.extend((f"{r.label}: {n}", s) for n, s in d.dwarf_sections)
        dbg.source_map_url = dbg.source_map_url or d.source_map_url
        dbg.external_debug_info = dbg.external_debug_info or d.external_debug_info
    report.debug = dbg

    # toolchain
    core_names = [r.debug.module_name or "" for r in modules]
    facts = ToolchainFacts(
        producers=report.producers,
        imports=[(i.name, "") for i in imports],
        exports=[e.name for e in exports],
        custom_sections=[s.custom_name or "" for s in c.sections if s.id == ComponentSectionId.CUSTOM],
        core_module_names=[n for n in core_names if n],
        core_toolchains=[(r.toolchain.name, r.size, r.label or "") for r in modules],
        is_component=True,
    )
    report.toolchain = infer_toolchain(facts)
    report.warnings = warnings
    return report


# -- entry points -----------------------------------------------------------------
def build_report(
    obj: Module | Component,
    *,
    deep: bool = False,
    top: int = 10,
    section_details: bool = False,
    progress: Progress | None = None,
    path: str | None = None,
) -> InspectReport:
    """The inspect report of a decoded module or component.

    ``deep`` decodes every function body to find the features its instructions
    use; ``progress(done_bytes, total_bytes)`` is called meanwhile.
    ``section_details`` keeps every data segment instead of the first 20."""
    if isinstance(obj, Component):
        return _component_report(obj, deep=deep, top=top, section_details=section_details, progress=progress, path=path)
    return _module_report(obj, deep=deep, top=top, section_details=section_details, progress=progress, path=path)


def inspect_bytes(
    data: bytes,
    *,
    deep: bool = False,
    top: int = 10,
    section_details: bool = False,
    progress: Progress | None = None,
    path: str | None = None,
) -> InspectReport:
    return build_report(decode_binary(data), deep=deep, top=top, section_details=section_details, progress=progress, path=path)


def inspect_path(
    path: str | Path,
    *,
    deep: bool = False,
    top: int = 10,
    section_details: bool = False,
    progress: Progress | None = None,
) -> InspectReport:
    p = Path(path)
    return inspect_bytes(p.read_bytes(), deep=deep, top=top, section_details=section_details, progress=progress, path=str(p))
