"""Decoders and encoders for the custom sections toolchains emit.

Every decoder takes ``(data, pos, end)``: the absolute span of a custom
section's payload after its name, and returns a dataclass. Every encoder
returns that payload (without section id, size or name). Canonical input
round-trips byte for byte: subsection order and unknown subsections are kept.

Sections covered: ``name`` (with the extended-name-section subsections),
``producers``, ``target_features``, ``dylink.0`` and the legacy ``dylink``,
``sourceMappingURL`` and ``build_id``. DWARF (``.debug_*``,
``external_debug_info``) and ``component-type*`` sections are kept raw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wasmscope.binary.leb128 import uleb
from wasmscope.binary.reader import Reader
from wasmscope.errors import DecodeError, EncodeError

__all__ = [
    "DYLINK_EXPORT_INFO",
    "DYLINK_IMPORT_INFO",
    "DYLINK_MEM_INFO",
    "DYLINK_NEEDED",
    "DYLINK_RUNTIME_PATH",
    "ENCODERS",
    "KNOWN",
    "NAME_MODULE",
    "BuildId",
    "DylinkInfo",
    "DylinkMemInfo",
    "NameSection",
    "Producers",
    "SourceMappingURL",
    "TargetFeatures",
    "decode_build_id",
    "decode_custom",
    "decode_dylink",
    "decode_dylink0",
    "decode_name",
    "decode_producers",
    "decode_source_mapping_url",
    "decode_target_features",
    "encode_build_id",
    "encode_custom",
    "encode_dylink",
    "encode_dylink0",
    "encode_name",
    "encode_producers",
    "encode_source_mapping_url",
    "encode_target_features",
    "is_component_type_section",
    "is_debug_section",
]

_U32_MAX = 0xFFFF_FFFF


# -- low-level helpers ----------------------------------------------------------


def _check_span(data: bytes, pos: int, end: int) -> None:
    # Slicing never raises, so a span past the buffer would silently shorten.
    if not 0 <= pos <= end <= len(data):
        raise DecodeError("custom section payload out of bounds", max(pos, 0))


def _u32(data: bytes, p: int, end: int) -> tuple[int, int]:
    """(value, next position) of an unsigned LEB128 u32 at ``p``."""
    result = 0
    shift = 0
    for i in range(5):
        if p >= end:
            raise DecodeError("unexpected end", p)
        b = data[p]
        p += 1
        if i == 4:
            if b & 0x80:
                raise DecodeError("integer representation too long", p - 1)
            if b & 0x70:
                raise DecodeError("integer too large", p - 1)
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, p
        shift += 7
    raise AssertionError("unreachable")  # pragma: no cover


def _count(data: bytes, p: int, end: int, min_item_size: int) -> tuple[int, int]:
    start = p
    n, p = _u32(data, p, end)
    if n * min_item_size > end - p:
        raise DecodeError("length out of bounds", start)
    return n, p


def _name(data: bytes, p: int, end: int) -> tuple[str, int]:
    n, p = _count(data, p, end, 1)
    q = p + n
    try:
        return data[p:q].decode("utf-8"), q
    except UnicodeDecodeError as exc:
        raise DecodeError("malformed UTF-8 encoding", p + exc.start) from None


def _expect_end(p: int, end: int, what: str) -> None:
    if p != end:
        raise DecodeError(f"{what}: size mismatch", p)


def _enc_u32(value: int) -> bytes:
    if not 0 <= value <= _U32_MAX:
        raise EncodeError(f"{value} does not fit in a u32")
    return uleb(value)


def _enc_name(s: str) -> bytes:
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"name is not valid Unicode: {s!r}") from exc
    return uleb(len(b)) + b


def _enc_names(items: list[str]) -> bytes:
    return uleb(len(items)) + b"".join(_enc_name(s) for s in items)


def _read_subsections(
    data: bytes, pos: int, end: int, what: str
) -> list[tuple[int, int, int, int]]:
    """(id, header offset, content start, content end) of each subsection."""
    out = []
    p = pos
    while p < end:
        start = p
        sid = data[p]
        size, p = _u32(data, p + 1, end)
        if size > end - p:
            raise DecodeError(f"{what} subsection out of bounds", start)
        out.append((sid, start, p, p + size))
        p += size
    return out


def _write_subsections(
    order: list[int],
    known: dict[int, tuple[bytes | None, bool]],
    unknown: list[tuple[int, bytes]],
) -> bytes:
    """Subsections in ``order`` first (so decoded input re-encodes exactly),
    then known non-empty ones not listed, by id, then unlisted unknown ones.

    ``known`` maps id to (payload or None when absent, non-empty)."""
    for sid, _ in unknown:
        if sid in known:
            raise EncodeError(f"subsection {sid} is known; it cannot be kept raw")
    out: list[bytes] = []
    done: set[int] = set()
    ui = 0

    def put(sid: int, payload: bytes) -> None:
        if not 0 <= sid <= 0xFF:
            raise EncodeError(f"subsection id {sid} does not fit in a byte")
        out.append(bytes((sid,)))
        out.append(uleb(len(payload)))
        out.append(payload)

    for sid in order:
        if sid in known:
            if sid in done:
                continue
            done.add(sid)
            payload = known[sid][0]
            if payload is not None:
                put(sid, payload)
        elif ui < len(unknown) and unknown[ui][0] == sid:
            put(sid, unknown[ui][1])
            ui += 1
    for sid in sorted(known):
        payload, nonempty = known[sid]
        if sid not in done and nonempty and payload is not None:
            put(sid, payload)
    for sid, raw in unknown[ui:]:
        put(sid, raw)
    return b"".join(out)


# -- name section ---------------------------------------------------------------

NAME_MODULE = 0
# Subsection id -> NameSection attribute; direct maps are index -> name.
_NAME_MAPS = {
    1: "functions",
    4: "types",
    5: "tables",
    6: "memories",
    7: "globals",
    8: "elems",
    9: "datas",
    11: "tags",
}
# Indirect maps: outer index -> (inner index -> name).
_NAME_INDIRECT = {2: "locals", 3: "labels", 10: "fields"}
_NAME_KNOWN = {NAME_MODULE, *_NAME_MAPS, *_NAME_INDIRECT}


@dataclass(slots=True)
class NameSection:
    """The ``name`` custom section.

    ``order`` records the subsection ids as read so re-encoding is byte-exact.
    A map that repeats an index (wit-component 0.209 emits such function maps)
    keeps the first name; its subsection is then also kept in ``verbatim`` as
    (decoded value, raw payload) and written back raw while the value is
    unchanged. Both are layout, not content, and are left out of equality."""

    module: str | None = None
    functions: dict[int, str] = field(default_factory=dict)
    locals: dict[int, dict[int, str]] = field(default_factory=dict)
    labels: dict[int, dict[int, str]] = field(default_factory=dict)
    types: dict[int, str] = field(default_factory=dict)
    tables: dict[int, str] = field(default_factory=dict)
    memories: dict[int, str] = field(default_factory=dict)
    globals: dict[int, str] = field(default_factory=dict)
    elems: dict[int, str] = field(default_factory=dict)
    datas: dict[int, str] = field(default_factory=dict)
    fields: dict[int, dict[int, str]] = field(default_factory=dict)
    tags: dict[int, str] = field(default_factory=dict)
    unknown: list[tuple[int, bytes]] = field(default_factory=list)
    order: list[int] = field(default_factory=list, compare=False)
    verbatim: dict[int, tuple[object, bytes]] = field(
        default_factory=dict, compare=False, repr=False
    )


def _name_map(data: bytes, p: int, end: int) -> tuple[dict[int, str], int, bool]:
    """(map, next position, whether an index repeated). Hot: real modules
    name tens of thousands of functions, so LEB128 of 1 to 3 bytes and the
    names are read inline rather than through ``Reader``."""
    count, p = _count(data, p, end, 2)
    start = p
    out: dict[int, str] = {}
    try:
        for _ in range(count):
            if p >= end:
                raise DecodeError("unexpected end", p)
            b = data[p]
            if b < 0x80:
                idx = b
                p += 1
            elif p + 1 < end and data[p + 1] < 0x80:
                idx = (b & 0x7F) | (data[p + 1] << 7)
                p += 2
            elif p + 2 < end and data[p + 2] < 0x80:
                idx = (b & 0x7F) | ((data[p + 1] & 0x7F) << 7) | (data[p + 2] << 14)
                p += 3
            else:
                idx, p = _u32(data, p, end)
            at = p
            if p >= end:
                raise DecodeError("unexpected end", p)
            n = data[p]
            if n < 0x80:
                p += 1
            elif p + 1 < end and data[p + 1] < 0x80:
                n = (n & 0x7F) | (data[p + 1] << 7)
                p += 2
            else:
                n, p = _count(data, p, end, 1)
            q = p + n
            if q > end:
                raise DecodeError("length out of bounds", at)
            out[idx] = data[p:q].decode("utf-8")
            p = q
    except UnicodeDecodeError as exc:
        raise DecodeError("malformed UTF-8 encoding", p + exc.start) from None
    if len(out) == count:
        return out, p, False
    # Rare: an index repeats. Read again so that the first name wins.
    first: dict[int, str] = {}
    r = Reader(data, start, end)
    for _ in range(count):
        idx = r.u32()
        name = r.name()
        first.setdefault(idx, name)
    return first, p, True


def _indirect_map(data: bytes, p: int, end: int) -> tuple[dict[int, dict[int, str]], int, bool]:
    count, p = _count(data, p, end, 2)
    out: dict[int, dict[int, str]] = {}
    lossy = False
    for _ in range(count):
        idx, p = _u32(data, p, end)
        inner, p, dup = _name_map(data, p, end)
        if idx in out:
            dup = True
        else:
            out[idx] = inner
        lossy = lossy or dup
    return out, p, lossy


def decode_name(data: bytes, pos: int, end: int) -> NameSection:
    _check_span(data, pos, end)
    sec = NameSection()
    seen: set[int] = set()
    for sid, start, p, sub_end in _read_subsections(data, pos, end, "name"):
        sec.order.append(sid)
        if sid not in _NAME_KNOWN:
            sec.unknown.append((sid, data[p:sub_end]))
            continue
        if sid in seen:
            raise DecodeError(f"duplicate name subsection {sid}", start)
        seen.add(sid)
        content = p
        if sid == NAME_MODULE:
            sec.module, p = _name(data, p, sub_end)
        else:
            value: Any
            if sid in _NAME_MAPS:
                value, p, lossy = _name_map(data, p, sub_end)
                attr = _NAME_MAPS[sid]
            else:
                value, p, lossy = _indirect_map(data, p, sub_end)
                attr = _NAME_INDIRECT[sid]
            setattr(sec, attr, value)
            if lossy:
                sec.verbatim[sid] = (_copy_map(value), data[content:sub_end])
        _expect_end(p, sub_end, f"name subsection {sid}")
    return sec


def _copy_map(value: dict[int, Any]) -> dict[int, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in value.items()}


def _enc_name_map(names: dict[int, str]) -> bytes:
    buf = bytearray(uleb(len(names)))
    append = buf.append
    try:
        for idx, name in names.items():
            b = name.encode("utf-8")
            if 0 <= idx < 0x80:
                append(idx)
            elif 0x80 <= idx < 0x4000:
                buf += bytes(((idx & 0x7F) | 0x80, idx >> 7))
            else:
                buf += _enc_u32(idx)
            n = len(b)
            if n < 0x80:
                append(n)
            elif n < 0x4000:
                buf += bytes(((n & 0x7F) | 0x80, n >> 7))
            else:
                buf += uleb(n)
            buf += b
    except UnicodeEncodeError as exc:
        raise EncodeError(f"name is not valid Unicode: {exc.object!r}") from exc
    return bytes(buf)


def _enc_indirect_map(names: dict[int, dict[int, str]]) -> bytes:
    out = [uleb(len(names))]
    for idx, inner in names.items():
        out.append(_enc_u32(idx))
        out.append(_enc_name_map(inner))
    return b"".join(out)


def encode_name(sec: NameSection) -> bytes:
    known: dict[int, tuple[bytes | None, bool]] = {
        NAME_MODULE: (None if sec.module is None else _enc_name(sec.module), True)
    }
    for sid, attr in (*_NAME_MAPS.items(), *_NAME_INDIRECT.items()):
        value: dict[int, Any] = getattr(sec, attr)
        kept = sec.verbatim.get(sid)
        if kept is not None and kept[0] == value:
            known[sid] = (kept[1], bool(value))
        elif sid in _NAME_MAPS:
            known[sid] = (_enc_name_map(value), bool(value))
        else:
            known[sid] = (_enc_indirect_map(value), bool(value))
    return _write_subsections(sec.order, known, sec.unknown)


# -- producers ------------------------------------------------------------------


@dataclass(slots=True)
class Producers:
    """``producers``: field name ("language", "processed-by", "sdk", ...) ->
    (name, version) pairs, in the order read."""

    fields: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def decode_producers(data: bytes, pos: int, end: int) -> Producers:
    _check_span(data, pos, end)
    out: dict[str, list[tuple[str, str]]] = {}
    n, p = _count(data, pos, end, 2)
    for _ in range(n):
        at = p
        fname, p = _name(data, p, end)
        if fname in out:
            raise DecodeError(f"duplicate producers field {fname!r}", at)
        m, p = _count(data, p, end, 2)
        values: list[tuple[str, str]] = []
        for _ in range(m):
            name, p = _name(data, p, end)
            version, p = _name(data, p, end)
            values.append((name, version))
        out[fname] = values
    _expect_end(p, end, "producers")
    return Producers(out)


def encode_producers(prod: Producers) -> bytes:
    out = [uleb(len(prod.fields))]
    for fname, values in prod.fields.items():
        out.append(_enc_name(fname))
        out.append(uleb(len(values)))
        for name, version in values:
            out.append(_enc_name(name))
            out.append(_enc_name(version))
    return b"".join(out)


# -- target_features ------------------------------------------------------------

_FEATURE_PREFIXES = {0x2B: "+", 0x2D: "-", 0x3D: "="}


@dataclass(slots=True)
class TargetFeatures:
    """``target_features``: (prefix, feature) with prefix "+" used, "-" must
    not be used, or "=" required by every linked object."""

    features: list[tuple[str, str]] = field(default_factory=list)


def decode_target_features(data: bytes, pos: int, end: int) -> TargetFeatures:
    _check_span(data, pos, end)
    n, p = _count(data, pos, end, 2)
    out: list[tuple[str, str]] = []
    for _ in range(n):
        if p >= end:
            raise DecodeError("unexpected end", p)
        prefix = _FEATURE_PREFIXES.get(data[p])
        if prefix is None:
            raise DecodeError(f"unknown target feature prefix {data[p]:#04x}", p)
        name, p = _name(data, p + 1, end)
        out.append((prefix, name))
    _expect_end(p, end, "target_features")
    return TargetFeatures(out)


def encode_target_features(tf: TargetFeatures) -> bytes:
    out = [uleb(len(tf.features))]
    for prefix, name in tf.features:
        if prefix not in ("+", "-", "="):
            raise EncodeError(f"target feature prefix must be '+', '-' or '=', not {prefix!r}")
        out.append(prefix.encode("ascii"))
        out.append(_enc_name(name))
    return b"".join(out)


# -- dylink.0 and legacy dylink -------------------------------------------------

DYLINK_MEM_INFO = 1
DYLINK_NEEDED = 2
DYLINK_EXPORT_INFO = 3
DYLINK_IMPORT_INFO = 4
DYLINK_RUNTIME_PATH = 5
_DYLINK_KNOWN = {
    DYLINK_MEM_INFO,
    DYLINK_NEEDED,
    DYLINK_EXPORT_INFO,
    DYLINK_IMPORT_INFO,
    DYLINK_RUNTIME_PATH,
}


@dataclass(slots=True)
class DylinkMemInfo:
    """Alignments are log2 of bytes (memory) or elements (table)."""

    memory_size: int = 0
    memory_align: int = 0
    table_size: int = 0
    table_align: int = 0


@dataclass(slots=True)
class DylinkInfo:
    """``dylink.0`` (or the legacy ``dylink``, which has only ``mem_info`` and
    ``needed``). ``order`` is layout only, as in :class:`NameSection`."""

    mem_info: DylinkMemInfo | None = None
    needed: list[str] = field(default_factory=list)
    exports: list[tuple[str, int]] = field(default_factory=list)  # (name, WASM_SYM_* flags)
    imports: list[tuple[str, str, int]] = field(default_factory=list)  # (module, field, flags)
    runtime_path: list[str] = field(default_factory=list)
    unknown: list[tuple[int, bytes]] = field(default_factory=list)
    order: list[int] = field(default_factory=list, compare=False)


def _mem_info(data: bytes, p: int, end: int) -> tuple[DylinkMemInfo, int]:
    size, p = _u32(data, p, end)
    align, p = _u32(data, p, end)
    tsize, p = _u32(data, p, end)
    talign, p = _u32(data, p, end)
    return DylinkMemInfo(size, align, tsize, talign), p


def _names(data: bytes, p: int, end: int) -> tuple[list[str], int]:
    n, p = _count(data, p, end, 1)
    out: list[str] = []
    for _ in range(n):
        s, p = _name(data, p, end)
        out.append(s)
    return out, p


def decode_dylink0(data: bytes, pos: int, end: int) -> DylinkInfo:
    _check_span(data, pos, end)
    info = DylinkInfo()
    seen: set[int] = set()
    for sid, start, p, sub_end in _read_subsections(data, pos, end, "dylink.0"):
        info.order.append(sid)
        if sid not in _DYLINK_KNOWN:
            info.unknown.append((sid, data[p:sub_end]))
            continue
        if sid in seen:
            raise DecodeError(f"duplicate dylink.0 subsection {sid}", start)
        seen.add(sid)
        if sid == DYLINK_MEM_INFO:
            info.mem_info, p = _mem_info(data, p, sub_end)
        elif sid == DYLINK_NEEDED:
            info.needed, p = _names(data, p, sub_end)
        elif sid == DYLINK_RUNTIME_PATH:
            info.runtime_path, p = _names(data, p, sub_end)
        elif sid == DYLINK_EXPORT_INFO:
            n, p = _count(data, p, sub_end, 2)
            for _ in range(n):
                name, p = _name(data, p, sub_end)
                flags, p = _u32(data, p, sub_end)
                info.exports.append((name, flags))
        else:
            n, p = _count(data, p, sub_end, 3)
            for _ in range(n):
                module, p = _name(data, p, sub_end)
                name, p = _name(data, p, sub_end)
                flags, p = _u32(data, p, sub_end)
                info.imports.append((module, name, flags))
        _expect_end(p, sub_end, f"dylink.0 subsection {sid}")
    return info


def _enc_mem_info(m: DylinkMemInfo) -> bytes:
    return b"".join(
        _enc_u32(v) for v in (m.memory_size, m.memory_align, m.table_size, m.table_align)
    )


def encode_dylink0(info: DylinkInfo) -> bytes:
    exports = [uleb(len(info.exports))]
    for name, flags in info.exports:
        exports += (_enc_name(name), _enc_u32(flags))
    imports = [uleb(len(info.imports))]
    for module, name, flags in info.imports:
        imports += (_enc_name(module), _enc_name(name), _enc_u32(flags))
    known: dict[int, tuple[bytes | None, bool]] = {
        DYLINK_MEM_INFO: (None if info.mem_info is None else _enc_mem_info(info.mem_info), True),
        DYLINK_NEEDED: (_enc_names(info.needed), bool(info.needed)),
        DYLINK_EXPORT_INFO: (b"".join(exports), bool(info.exports)),
        DYLINK_IMPORT_INFO: (b"".join(imports), bool(info.imports)),
        DYLINK_RUNTIME_PATH: (_enc_names(info.runtime_path), bool(info.runtime_path)),
    }
    return _write_subsections(info.order, known, info.unknown)


def decode_dylink(data: bytes, pos: int, end: int) -> DylinkInfo:
    """The legacy ``dylink`` section: memory/table info then needed libraries."""
    _check_span(data, pos, end)
    mem, p = _mem_info(data, pos, end)
    needed, p = _names(data, p, end)
    _expect_end(p, end, "dylink")
    return DylinkInfo(mem_info=mem, needed=needed)


def encode_dylink(info: DylinkInfo) -> bytes:
    if info.mem_info is None:
        raise EncodeError("legacy dylink needs memory info")
    if info.exports or info.imports or info.runtime_path or info.unknown:
        raise EncodeError("legacy dylink holds only memory info and needed libraries")
    return _enc_mem_info(info.mem_info) + _enc_names(info.needed)


# -- sourceMappingURL, build_id -------------------------------------------------


@dataclass(slots=True)
class SourceMappingURL:
    url: str = ""


def decode_source_mapping_url(data: bytes, pos: int, end: int) -> SourceMappingURL:
    _check_span(data, pos, end)
    url, p = _name(data, pos, end)
    _expect_end(p, end, "sourceMappingURL")
    return SourceMappingURL(url)


def encode_source_mapping_url(s: SourceMappingURL) -> bytes:
    return _enc_name(s.url)


@dataclass(slots=True)
class BuildId:
    """``build_id``: arbitrary bytes (not UTF-8), usually a UUID."""

    id: bytes = b""


def decode_build_id(data: bytes, pos: int, end: int) -> BuildId:
    _check_span(data, pos, end)
    n, p = _count(data, pos, end, 1)
    _expect_end(p + n, end, "build_id")
    return BuildId(data[p : p + n])


def encode_build_id(b: BuildId) -> bytes:
    return uleb(len(b.id)) + bytes(b.id)


# -- sections kept raw ----------------------------------------------------------


def is_debug_section(name: str) -> bool:
    """DWARF sections and the pointer to split debug info; kept raw."""
    return name.startswith(".debug_") or name == "external_debug_info"


def is_component_type_section(name: str) -> bool:
    """``component-type:...`` sections (wit-bindgen's encoded worlds); kept raw."""
    return name.startswith("component-type")


# -- dispatch -------------------------------------------------------------------

Decoder = Callable[[bytes, int, int], Any]

KNOWN: dict[str, Decoder] = {
    "name": decode_name,
    "producers": decode_producers,
    "target_features": decode_target_features,
    "dylink.0": decode_dylink0,
    "dylink": decode_dylink,
    "sourceMappingURL": decode_source_mapping_url,
    "build_id": decode_build_id,
}

ENCODERS: dict[str, tuple[type, Callable[[Any], bytes]]] = {
    "name": (NameSection, encode_name),
    "producers": (Producers, encode_producers),
    "target_features": (TargetFeatures, encode_target_features),
    "dylink.0": (DylinkInfo, encode_dylink0),
    "dylink": (DylinkInfo, encode_dylink),
    "sourceMappingURL": (SourceMappingURL, encode_source_mapping_url),
    "build_id": (BuildId, encode_build_id),
}


def decode_custom(name: str, data: bytes, pos: int, end: int) -> object | None:
    """The decoded payload of custom section ``name``, or None if it is kept raw."""
    decoder = KNOWN.get(name)
    return None if decoder is None else decoder(data, pos, end)


def encode_custom(name: str, obj: object) -> bytes:
    """The payload of custom section ``name`` (without id, size and name)."""
    entry = ENCODERS.get(name)
    if entry is None:
        raise EncodeError(f"no encoder for custom section {name!r}; it is kept raw")
    cls, encoder = entry
    if not isinstance(obj, cls):
        raise EncodeError(
            f"custom section {name!r} needs a {cls.__name__}, not {type(obj).__name__}"
        )
    return encoder(obj)
