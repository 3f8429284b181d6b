"""Which Wasm features a module actually uses.

Two sources:

* **structure**, read without decoding a function body: 64-bit or shared
  memories, several memories or tables, tags, GC and typed-reference types,
  mutable globals crossing the boundary, multi-result functions, passive
  segments, extended constant expressions, ``v128`` in signatures;
* **instructions** (``deep=True``): every function body is decoded, its
  opcodes counted, and the counts folded into features through
  :data:`wasmscope.binary.opcodes.FEATURES`. Locals and block types add
  ``simd``, reference types and ``multi-value``.

The ``target_features`` section (what the linker was told, not what the code
does) is reported next to them as ``declared``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from wasmscope.binary import opcodes
from wasmscope.binary.instructions import Instruction
from wasmscope.binary.module import Module
from wasmscope.binary.sections import SectionId
from wasmscope.binary.types import (
    ANYREF,
    ARRAYREF,
    EQREF,
    EXNREF,
    EXTERNREF,
    I31REF,
    NULLEXNREF,
    NULLEXTERNREF,
    NULLFUNCREF,
    NULLREF,
    STRUCTREF,
    V128,
    ArrayType,
    ExternKind,
    FuncType,
    GlobalType,
    RefType,
    StructType,
    SubType,
    ValType,
    valtype_name,
)

__all__ = [
    "FEATURE_ORDER",
    "FeatureReport",
    "FeatureUse",
    "declared_name",
    "module_features",
    "scan_instructions",
]

# Canonical names (those of opcodes.FEATURES, plus the structural ones), in
# the order reports list them.
FEATURE_ORDER = (
    "sign-extension",
    "saturating-float-to-int",
    "multi-value",
    "mutable-globals",
    "bulk-memory",
    "reference-types",
    "simd",
    "relaxed-simd",
    "threads",
    "tail-call",
    "extended-const",
    "exceptions",
    "legacy-exceptions",
    "function-references",
    "gc",
    "memory64",
    "multi-memory",
    "component-model",
)

# LLVM's target_features names -> ours.
_LLVM_NAMES = {
    "sign-ext": "sign-extension",
    "nontrapping-fptoint": "saturating-float-to-int",
    "multivalue": "multi-value",
    "mutable-globals": "mutable-globals",
    "bulk-memory": "bulk-memory",
    "bulk-memory-opt": "bulk-memory",
    "reference-types": "reference-types",
    "simd128": "simd",
    "relaxed-simd": "relaxed-simd",
    "atomics": "threads",
    "shared-mem": "threads",
    "tail-call": "tail-call",
    "extended-const": "extended-const",
    "exception-handling": "exceptions",
    "memory64": "memory64",
    "multimemory": "multi-memory",
    "gc": "gc",
}

_GC_HEAPS = frozenset(
    h - 0x80 for h in (ANYREF, EQREF, I31REF, STRUCTREF, ARRAYREF, NULLREF)
)
_GC_SHORTHANDS = frozenset((ANYREF, EQREF, I31REF, STRUCTREF, ARRAYREF, NULLREF))
_REF_SHORTHANDS = frozenset((EXTERNREF, NULLEXTERNREF, NULLFUNCREF))
_EXN_SHORTHANDS = frozenset((EXNREF, NULLEXNREF))
_EXTENDED_CONST_OPS = frozenset((0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E))  # i32/i64 add sub mul
_BLOCK_OPS = frozenset((opcodes.BLOCK, opcodes.LOOP, opcodes.IF, opcodes.TRY, opcodes.TRY_TABLE))


def declared_name(llvm_name: str) -> str:
    """Our name for one of LLVM's ``target_features`` names."""
    return _LLVM_NAMES.get(llvm_name, llvm_name)


@dataclass(slots=True)
class FeatureUse:
    name: str
    sources: list[str] = field(default_factory=list)  # "structure", "instructions"
    evidence: list[str] = field(default_factory=list)
    instructions: int = 0  # instructions of this feature seen (deep scans)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "sources": list(self.sources),
            "evidence": list(self.evidence),
            "instructions": self.instructions,
        }


@dataclass(slots=True)
class FeatureReport:
    used: list[FeatureUse] = field(default_factory=list)
    deep: bool = False
    declared: list[tuple[str, str]] = field(default_factory=list)  # (prefix, LLVM's name) from target_features
    instructions: int | None = None  # instructions decoded (deep)
    functions_scanned: int | None = None
    opcode_counts: dict[str, int] = field(default_factory=dict)  # opcode name -> count (deep)

    @property
    def names(self) -> list[str]:
        return [u.name for u in self.used]

    def get(self, name: str) -> FeatureUse | None:
        for u in self.used:
            if u.name == name:
                return u
        return None

    def to_json(self) -> dict[str, object]:
        return {
            "deep": self.deep,
            "used": [u.to_json() for u in self.used],
            "names": self.names,
            "declared": [{"prefix": p, "name": declared_name(n), "llvm_name": n} for p, n in self.declared],
            "instructions": self.instructions,
            "functions_scanned": self.functions_scanned,
            "opcode_counts": dict(self.opcode_counts),
        }


class _Acc:
    def __init__(self) -> None:
        self.uses: dict[str, FeatureUse] = {}

    def add(self, name: str, source: str, evidence: str | None = None, count: int = 0) -> None:
        u = self.uses.setdefault(name, FeatureUse(name))
        if source not in u.sources:
            u.sources.append(source)
        if evidence is not None and evidence not in u.evidence and len(u.evidence) < 5:
            u.evidence.append(evidence)
        u.instructions += count

    def report(self) -> list[FeatureUse]:
        order = {n: i for i, n in enumerate(FEATURE_ORDER)}
        return sorted(self.uses.values(), key=lambda u: (order.get(u.name, len(order)), u.name))


def _valtype_features(vt: ValType) -> Iterable[str]:
    if isinstance(vt, RefType):
        yield "function-references"  # typed or non-nullable references
        if vt.heap in _GC_HEAPS:
            yield "gc"
        elif vt.heap in (EXNREF - 0x80, NULLEXNREF - 0x80):
            yield "exceptions"
        return
    if vt == V128:
        yield "simd"
    elif vt in _GC_SHORTHANDS:
        yield "gc"
    elif vt in _REF_SHORTHANDS:
        yield "reference-types"
    elif vt in _EXN_SHORTHANDS:
        yield "exceptions"


def _subtype_features(t: SubType) -> Iterable[tuple[str, str]]:
    comp = t.comp
    if isinstance(comp, StructType | ArrayType):
        yield "gc", "struct and array types"
    if not t.final or t.supertypes:
        yield "gc", "subtypes (non-final or with supertypes)"
    if isinstance(comp, FuncType):
        if len(comp.results) > 1:
            yield "multi-value", "function types with several results"
        for vt in (*comp.params, *comp.results):
            for f in _valtype_features(vt):
                yield f, f"{_vt(vt)} in function signatures"
    elif isinstance(comp, StructType):
        for fld in comp.fields:
            for f in _valtype_features(fld.storage):
                yield f, f"{_vt(fld.storage)} struct fields"
    else:
        for f in _valtype_features(comp.field.storage):
            yield f, f"{_vt(comp.field.storage)} array elements"


def _expr_ops(expr: Iterable[Instruction] | None) -> Iterable[int]:
    if expr is None:
        return ()
    return (ins[0] for ins in expr)


def _structure(m: Module, acc: _Acc) -> None:
    S = "structure"
    # memories and tables
    mems = m.memory_types()
    for i, mt in enumerate(mems):
        if mt.limits.is64:
            acc.add("memory64", S, f"memory {i} has 64-bit limits")
        if mt.limits.shared:
            acc.add("threads", S, f"memory {i} is shared")
    if len(mems) > 1:
        acc.add("multi-memory", S, f"{len(mems)} memories")
    tables = m.table_types()
    for i, tt in enumerate(tables):
        if tt.limits.is64:
            acc.add("memory64", S, f"table {i} has 64-bit limits (table64)")
        for f in _valtype_features(tt.elem):
            acc.add(f, S, f"table {i} holds {_vt(tt.elem)}")
    if len(tables) > 1:
        acc.add("reference-types", S, f"{len(tables)} tables")
    for tbl in m.tables:
        if tbl.init is not None:
            acc.add("function-references", S, "table with an initialiser expression")
    # tags
    tags = len(m.tags) + len(m.imported(ExternKind.TAG))
    if tags:
        acc.add("exceptions", S, f"{tags} exception tag(s)")
    # types
    for group in m.rec_groups:
        if group.explicit and len(group.types) > 1:
            acc.add("gc", S, "recursive type groups")
        for sub in group.types:
            for name, why in _subtype_features(sub):
                acc.add(name, S, why)
    # globals
    for imp in m.imports:
        if imp.kind == ExternKind.GLOBAL and isinstance(imp.type, GlobalType):
            if imp.type.mutable:
                acc.add("mutable-globals", S, f"imports mutable global {imp.module}.{imp.name}")
            for f in _valtype_features(imp.type.valtype):
                acc.add(f, S, f"imported {_vt(imp.type.valtype)} global")
        if imp.kind == ExternKind.TAG:
            acc.add("exceptions", S, f"imports tag {imp.module}.{imp.name}")
    n_imported_globals = len(m.imported(ExternKind.GLOBAL))
    gtypes = m.global_types()
    for exp in m.exports:
        if exp.kind == ExternKind.GLOBAL and exp.index < len(gtypes) and gtypes[exp.index].mutable:
            acc.add("mutable-globals", S, f"exports mutable global {exp.name!r}")
        if exp.kind == ExternKind.TAG:
            acc.add("exceptions", S, f"exports tag {exp.name!r}")
    for i, g in enumerate(m.globals):
        for f in _valtype_features(g.type.valtype):
            acc.add(f, S, f"{_vt(g.type.valtype)} global")
        if any(op in _EXTENDED_CONST_OPS for op in _expr_ops(g.init)):
            acc.add("extended-const", S, f"global {n_imported_globals + i} initialiser uses arithmetic")
    # segments
    if m.has_data_count:
        acc.add("bulk-memory", S, "data count section")
    passive = 0
    for i, d in enumerate(m.data_segments):
        if d.mode == "passive":
            passive += 1
        if d.memory != 0:
            acc.add("multi-memory", S, f"data segment {i} targets memory {d.memory}")
        if any(op in _EXTENDED_CONST_OPS for op in _expr_ops(d.offset)):
            acc.add("extended-const", S, f"data segment {i} offset uses arithmetic")
    if passive:
        acc.add("bulk-memory", S, f"{passive} passive data segment(s)")
    for i, e in enumerate(m.elements):
        if e.mode != "active":
            acc.add("bulk-memory" if e.mode == "passive" else "reference-types", S, f"{e.mode} element segment {i}")
        if e.flags & 4:
            acc.add("reference-types", S, f"element segment {i} holds expressions")
        if e.table != 0:
            acc.add("reference-types", S, f"element segment {i} targets table {e.table}")
        for f in _valtype_features(e.type):
            acc.add(f, S, f"element segment {i} of {_vt(e.type)}")
        if any(op in _EXTENDED_CONST_OPS for op in _expr_ops(e.offset)):
            acc.add("extended-const", S, f"element segment {i} offset uses arithmetic")


def _vt(vt: ValType) -> str:
    return valtype_name(vt)


def scan_instructions(
    m: Module, progress: Callable[[int, int], None] | None = None
) -> tuple[Counter[int], set[str]]:
    """Decode every function body: (opcode -> count, features seen in locals
    and block types). ``progress(done_bytes, total_bytes)`` as bodies are read."""
    counts: Counter[int] = Counter()
    extra: set[str] = set()
    code = m.code
    sec = m.section(SectionId.CODE)
    base = sec.start if sec is not None else 0
    total = sec.size if sec is not None else 0
    step = max(total // 200, 1)
    next_report = 0
    types = m.types
    op0 = itemgetter(0)
    block_ops = _BLOCK_OPS
    for body in code:
        locals_, instrs = body.decode()
        counts.update(map(op0, instrs))
        for _n, vt in locals_:
            if not (isinstance(vt, int) and vt in (0x7F, 0x7E, 0x7D, 0x7C)):
                extra.update(_valtype_features(vt))
        # Block types that name a type index: multi-value (params or >1 result).
        for ins in instrs:
            if ins[0] in block_ops:
                bt = ins[1]
                if isinstance(bt, int) and bt >= 0 and bt < len(types):
                    comp = types[bt].comp
                    if isinstance(comp, FuncType) and (comp.params or len(comp.results) > 1):
                        extra.add("multi-value")
                elif isinstance(bt, RefType):
                    extra.update(_valtype_features(bt))
        if progress is not None and body.end - base >= next_report:
            progress(body.end - base, total)
            next_report = body.end - base + step
    if progress is not None:
        progress(total, total)
    return counts, extra


def module_features(
    m: Module,
    *,
    deep: bool = False,
    declared: Iterable[tuple[str, str]] = (),
    progress: Callable[[int, int], None] | None = None,
) -> FeatureReport:
    """Features of ``m`` from its structure, plus its instructions if ``deep``."""
    acc = _Acc()
    _structure(m, acc)
    report = FeatureReport(deep=deep, declared=list(declared))
    if deep:
        counts, extra = scan_instructions(m, progress)
        # Constant expressions outside the code section count for features too.
        all_ops = Counter(counts)
        for g in m.globals:
            all_ops.update(_expr_ops(g.init))
        for d in m.data_segments:
            all_ops.update(_expr_ops(d.offset))
        for e in m.elements:
            all_ops.update(_expr_ops(e.offset))
            if e.flags & 4:
                for item in e.items:
                    all_ops.update(_expr_ops(item))  # type: ignore[arg-type]
        per_feature: Counter[str] = Counter()
        for op, n in all_ops.items():
            feat = opcodes.FEATURES.get(op)
            if feat is not None and feat != "mvp":
                per_feature[feat] += n
        for feat, n in per_feature.items():
            top = sorted(
                ((c, op) for op, c in all_ops.items() if opcodes.FEATURES.get(op) == feat), reverse=True
            )[:3]
            shown = ", ".join(f"{opcodes.NAMES.get(op, hex(op))} x{c:,}" for c, op in top)
            acc.add(feat, "instructions", f"{n:,} instruction(s): {shown}", n)
        for feat in sorted(extra):
            acc.add(feat, "instructions", "locals or block types")
        report.instructions = sum(counts.values())
        report.functions_scanned = len(m.code)
        report.opcode_counts = {
            opcodes.NAMES.get(op, hex(op)): n for op, n in sorted(counts.items(), key=lambda kv: -kv[1])
        }
    report.used = acc.report()
    return report
