"""The profile of one run: sampled stacks, exact call counts, and the formats people
read them in.

:class:`Profile` holds what the sampler saw (stack -> samples, outermost frame
first, original function indices) and what the module's counters say (exact calls
per function, imports included), with a display name per function (the name
section's; imports as ``module.name``; ``func[N]`` without a name).

Formats (all stdlib):

- :meth:`Profile.top`: the table of ``wasmscope profile`` (calls, self %, total %);
- :meth:`Profile.to_speedscope`: speedscope's JSON file format (``"sampled"`` profile,
  https://www.speedscope.app/file-format-schema.json);
- :meth:`Profile.to_pprof`: gzip'd ``perftools.profiles.Profile`` protobuf (pprof's
  profile.proto, on which OpenTelemetry's profiling signal builds), encoded here;
- :meth:`Profile.to_collapsed`: Brendan Gregg's folded stacks (``flamegraph.pl``);
- :meth:`Profile.to_svg`: a self-contained flame graph (hover a frame for its numbers).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from wasmscope.binary.leb128 import uleb
from wasmscope.profile.sampler import LOST

if TYPE_CHECKING:
    from wasmscope.profile.sampler import Sampler
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.telemetry.pipeline import SpanNode

__all__ = ["FORMATS", "LOST_NAME", "Profile", "TopRow"]

FORMATS = ("speedscope", "pprof", "collapsed")
LOST_NAME = "[outer frames lost]"
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


@dataclass(frozen=True, slots=True)
class TopRow:
    """One line of :meth:`Profile.top`. ``total_*`` counts a function once per sample
    even when it is on the stack several times (recursion)."""

    index: int
    name: str
    calls: int
    self_samples: int
    total_samples: int
    self_pct: float
    total_pct: float
    host: bool  # an imported (host) function


@dataclass
class Profile:
    """One profiled run (see the module docstring)."""

    module: str
    sha256: str
    names: list[str]  # display name per original function index
    n_imported: int
    counts: list[int]  # exact calls per original function index
    samples: dict[tuple[int, ...], int]  # stack (outermost first) -> samples
    duration_ns: int  # from the sampler's start to its stop (the guest call)
    rate: float  # requested samples per second
    mode: str = "thread"
    start_unix_ns: int = 0
    empty_samples: int = 0  # the guest between calls (depth 0)
    bad_samples: int = 0  # torn reads, dropped
    lost_samples: int = 0  # deeper than the shadow stack's ring: outer frames unknown
    spans: list[SpanNode] = field(default_factory=list)  # span mode: inferred long calls

    @classmethod
    def from_run(cls, record: InvocationRecord, sampler: Sampler) -> Profile:
        books = sampler.books
        counts: list[int] = []
        if books is not None and record.call_counts is not None:
            # The counters as the record has them, back to indices.
            by_name = {**(record.call_counts or {}), **(record.host_calls or {})}
            from wasmscope.runtime.guest_counters import unique_names

            counts = [by_name.get(n, 0) for n in unique_names(sampler.names)]
        return cls(
            module=record.module.name,
            sha256=record.module.sha256,
            names=list(sampler.names),
            n_imported=sampler.n_imported,
            counts=counts,
            samples=dict(sampler.samples),
            duration_ns=sampler.duration_ns,
            rate=sampler.rate,
            mode=sampler.mode,
            start_unix_ns=sampler.start_unix_ns,
            empty_samples=sampler.empty,
            bad_samples=sampler.bad,
            lost_samples=sampler.lost,
        )

    # -- basic facts ---------------------------------------------------------------------------
    @property
    def sampled(self) -> int:
        """Samples with a stack (what the percentages are of)."""
        return sum(self.samples.values())

    @property
    def total_samples(self) -> int:
        return self.sampled + self.empty_samples

    @property
    def interval_ns(self) -> float:
        """The measured mean time between samples (the nominal one when none)."""
        n = self.total_samples
        if n and self.duration_ns:
            return self.duration_ns / n
        return 1e9 / self.rate

    def name(self, index: int) -> str:
        if index == LOST:
            return LOST_NAME
        if 0 <= index < len(self.names):
            return self.names[index]
        return f"func[{index}]"

    def _unique(self) -> list[str]:
        from wasmscope.runtime.guest_counters import unique_names

        return unique_names(self.names)

    def unique_name(self, index: int, unique: list[str] | None = None) -> str:
        if index == LOST:
            return LOST_NAME
        names = unique if unique is not None else self._unique()
        return names[index] if 0 <= index < len(names) else f"func[{index}]"

    @property
    def calls(self) -> dict[str, int]:
        """Exact calls per defined function that was called (name -> count, most
        called first; a name shared by several functions gets ``#index``)."""
        u = self._unique()
        found = [(u[i], c) for i, c in enumerate(self.counts) if c and i >= self.n_imported]
        return dict(sorted(found, key=lambda kv: -kv[1]))

    @property
    def host_calls(self) -> dict[str, int]:
        """Exact calls per imported function called directly (``module.name`` -> count,
        most called first)."""
        u = self._unique()
        found = [(u[i], c) for i, c in enumerate(self.counts[: self.n_imported]) if c]
        return dict(sorted(found, key=lambda kv: -kv[1]))

    def self_samples(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for stack, n in self.samples.items():
            if stack:
                out[stack[-1]] = out.get(stack[-1], 0) + n
        return out

    def total_samples_by_function(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for stack, n in self.samples.items():
            for f in set(stack):
                out[f] = out.get(f, 0) + n
        return out

    # -- the table ---------------------------------------------------------------------------------
    def top(self, n: int = 20) -> list[TopRow]:
        """The ``n`` functions with the most self samples (then total, then calls); a
        function called but never sampled comes after every sampled one."""
        selfs = self.self_samples()
        totals = self.total_samples_by_function()
        denom = self.sampled or 1
        candidates = set(selfs) | set(totals) | {i for i, c in enumerate(self.counts) if c}
        candidates.discard(LOST)
        u = self._unique()
        rows = [
            TopRow(
                index=i,
                name=self.unique_name(i, u),
                calls=self.counts[i] if 0 <= i < len(self.counts) else 0,
                self_samples=selfs.get(i, 0),
                total_samples=totals.get(i, 0),
                self_pct=100.0 * selfs.get(i, 0) / denom,
                total_pct=100.0 * totals.get(i, 0) / denom,
                host=0 <= i < self.n_imported,
            )
            for i in candidates
        ]
        rows.sort(key=lambda r: (-r.self_samples, -r.total_samples, -r.calls, r.name))
        return rows[: max(0, n)]

    # -- speedscope --------------------------------------------------------------------------------
    def _sorted_stacks(self, names: list[str]) -> list[tuple[tuple[int, ...], int]]:
        return sorted(self.samples.items(), key=lambda kv: [names[i] if i >= 0 else "" for i in kv[0]])

    def to_speedscope(self) -> dict[str, Any]:
        """A speedscope file (JSON-ready dict): one ``"sampled"`` profile whose weights
        are nanoseconds (samples x the mean interval)."""
        frames: list[dict[str, Any]] = []
        index: dict[int, int] = {}

        def frame(i: int) -> int:
            k = index.get(i)
            if k is None:
                k = index[i] = len(frames)
                frames.append({"name": self.name(i)})
            return k

        interval = self.interval_ns
        samples: list[list[int]] = []
        weights: list[int] = []
        for stack, n in self._sorted_stacks(self.names):
            samples.append([frame(i) for i in stack])
            weights.append(round(n * interval))
        total = sum(weights)
        return {
            "$schema": SPEEDSCOPE_SCHEMA,
            "shared": {"frames": frames},
            "profiles": [
                {
                    "type": "sampled",
                    "name": f"{self.module} ({self.mode} sampler, {self.rate:g} Hz)",
                    "unit": "nanoseconds",
                    "startValue": 0,
                    "endValue": total,
                    "samples": samples,
                    "weights": weights,
                }
            ],
            "name": self.module,
            "activeProfileIndex": 0,
            "exporter": f"wasmscope {_version()}",
        }

    # -- pprof -------------------------------------------------------------------------------------
    def to_pprof(self) -> bytes:
        """A gzip'd pprof ``Profile`` message: sample types ``samples/count`` and
        ``cpu/nanoseconds``, one mapping (the module; build id: its sha256), one
        location and one function per function seen, leaf first in each sample."""
        strings: list[str] = [""]
        string_ids: dict[str, int] = {"": 0}

        def sid(s: str) -> int:
            k = string_ids.get(s)
            if k is None:
                k = string_ids[s] = len(strings)
                strings.append(s)
            return k

        def value_type(type_: str, unit: str) -> bytes:
            return _pb_int(1, sid(type_)) + _pb_int(2, sid(unit))

        out = bytearray()
        out += _pb_bytes(1, value_type("samples", "count"))
        out += _pb_bytes(1, value_type("cpu", "nanoseconds"))
        interval = self.interval_ns
        seen: dict[int, int] = {}  # function index -> location / function id

        def loc(i: int) -> int:
            k = seen.get(i)
            if k is None:
                k = seen[i] = len(seen) + 1
            return k

        for stack, n in self._sorted_stacks(self.names):
            ids = [loc(i) for i in reversed(stack)]
            out += _pb_bytes(2, _pb_packed(1, ids) + _pb_packed(2, [n, round(n * interval)]))
        module_id = sid(self.module)
        out += _pb_bytes(
            3, _pb_int(1, 1) + _pb_int(5, module_id) + _pb_int(6, sid(self.sha256)) + _pb_int(7, 1)
        )
        for i, k in seen.items():
            line = _pb_int(1, k)
            out += _pb_bytes(4, _pb_int(1, k) + _pb_int(2, 1) + _pb_int(3, max(i, 0)) + _pb_bytes(4, line))
        for i, k in seen.items():
            name = sid(self.name(i))
            out += _pb_bytes(5, _pb_int(1, k) + _pb_int(2, name) + _pb_int(3, name) + _pb_int(4, module_id))
        comment = sid(f"wasmscope profile: {self.mode} sampler at {self.rate:g} Hz; exact call counts in the record")
        for s in strings:
            out += _pb_bytes(6, s.encode("utf-8"))
        out += _pb_int(9, self.start_unix_ns)
        out += _pb_int(10, self.duration_ns)
        out += _pb_bytes(11, value_type("cpu", "nanoseconds"))
        out += _pb_int(12, round(interval))
        out += _pb_packed(13, [comment])
        out += _pb_int(14, sid("cpu"))
        return gzip.compress(bytes(out), mtime=0)

    # -- folded stacks -----------------------------------------------------------------------------
    def to_collapsed(self) -> str:
        """One line per distinct stack: ``outer;...;leaf COUNT`` (``;`` in a name
        becomes ``:``), sorted; the input of ``flamegraph.pl``."""
        u = self._unique()
        lines = []
        for stack, n in self.samples.items():
            frames = ";".join(_fold_name(self.unique_name(i, u)) for i in stack)
            lines.append(f"{frames} {n}")
        lines.sort()
        return "".join(line + "\n" for line in lines)

    # -- flame graph -------------------------------------------------------------------------------
    def flame_tree(self) -> FlameNode:
        """The samples merged into a tree: a node per distinct stack prefix (by
        function index), under a root ``all``."""
        root = FlameNode(None, 0)
        for stack, n in self.samples.items():
            node = root
            node.count += n
            for i in stack:
                child = node.children.get(i)
                if child is None:
                    child = node.children[i] = FlameNode(i, 0)
                child.count += n
                node = child
        return root

    def to_svg(
        self, *, width: int = 1200, min_width: float = 0.1, title: str | None = None, cost_usd: float | None = None
    ) -> str:
        """A flame graph as a standalone SVG document: the root (``all``) at the bottom,
        callees above callers, widths by samples; hover a frame for its name, samples
        and calls. Frames narrower than ``min_width`` pixels are left out (with their
        callees).

        ``cost_usd`` (the invocation's cost): colour by cost instead of by name: each
        frame by its function's self cost (its share of the samples, as
        :func:`wasmscope.cost.attribution.function_costs` has it), from pale yellow
        (nothing) to deep red (the costliest function); the tooltips add the USD of the
        frame with its callees and of the function's self time."""
        root = self.flame_tree()
        total = root.count or 1
        heat: dict[int, float] = {}
        self_usd: dict[int, float] = {}
        if cost_usd is not None:
            billed = self.total_samples or 1  # empty samples are billed time too
            selfs = self.self_samples()
            self_usd = {i: k / billed * cost_usd for i, k in selfs.items()}
            top_usd = max(self_usd.values(), default=0.0)
            heat = {i: (u / top_usd if top_usd > 0 else 0.0) for i, u in self_usd.items()}
        frame_h, pad_top, pad_bottom, margin = 17, 36, 24, 10
        usable = width - 2 * margin
        depth = root.height()
        height = pad_top + (depth + 1) * frame_h + pad_bottom
        parts: list[str] = []
        text_title = title or f"{self.module}: {self.sampled:,} samples ({self.mode} sampler, {self.rate:g} Hz)"
        info = "width = share of samples; exact call counts from the module's own counters"
        if cost_usd is not None:
            if title is None:
                text_title += f", {usd_text(cost_usd)} per invocation"
            info = (
                "colour = the function's self cost (pale: none, deep red: the costliest); "
                "width = share of samples, and of the cost"
            )
        parts.append(
            '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="background-color:#f8f8f8">\n'
            "<style>text{font-family:Verdana,Helvetica,sans-serif;font-size:11px;fill:#000}"
            ".frame:hover rect{stroke:#000;stroke-width:0.8}"
            "#title{font-size:15px}#info{font-size:11px;fill:#555}</style>\n"
            f'<text id="title" x="{width / 2:.0f}" y="22" text-anchor="middle">{escape(text_title)}</text>\n'
            f'<text id="info" x="{margin}" y="{height - 8}">hover a frame for its samples and calls; '
            f"{escape(info)}</text>\n"
        )
        counts = self.counts

        todo: list[tuple[FlameNode, float, int]] = [(root, float(margin), 0)]
        while todo:
            node, x, level = todo.pop()
            w = node.count / total * usable
            if w < min_width:
                continue
            y = height - pad_bottom - (level + 1) * frame_h
            if node.index is None:
                name = "all"
                tip = f"all: {node.count:,} samples (100%)"
            else:
                name = self.name(node.index)
                pct = 100.0 * node.count / total
                tip = f"{name}: {node.count:,} samples ({pct:.2f}%)"
                if 0 <= node.index < len(counts) and counts[node.index]:
                    tip += f", {counts[node.index]:,} calls in the run"
            if cost_usd is not None:
                billed_share = node.count / (self.total_samples or 1)
                tip += f"; {usd_text(billed_share * cost_usd)} with its callees"
                if node.index is not None:
                    tip += f", {usd_text(self_usd.get(node.index, 0.0))} self (the whole function)"
                fill = _heat(heat.get(node.index, 0.0)) if node.index is not None else "rgb(200,200,200)"
            else:
                fill = _color(name, node.index, self.n_imported)
            label = _fit(name, w)
            parts.append(
                f'<g class="frame"><title>{escape(tip)}</title>'
                f'<rect x="{x:.2f}" y="{y}" width="{max(w - 0.5, 0.1):.2f}" height="{frame_h - 1}" fill="{fill}" rx="2" ry="2"/>'
            )
            if label:
                dark = cost_usd is not None and node.index is not None and heat.get(node.index, 0.0) > 0.5
                ink = ' style="fill:#fff"' if dark else ""  # white on the deep reds
                parts.append(f'<text x="{x + 3:.2f}" y="{y + frame_h - 5}"{ink}>{escape(label)}</text>')
            parts.append("</g>\n")
            cx = x
            for child in sorted(node.children.values(), key=lambda c: self.name(c.index if c.index is not None else LOST)):
                todo.append((child, cx, level + 1))
                cx += child.count / total * usable
        parts.append("</svg>\n")
        return "".join(parts)

    # -- files -------------------------------------------------------------------------------------
    def dumps(self, fmt: str) -> bytes:
        """The profile in one of :data:`FORMATS`, as bytes ready to write."""
        if fmt == "speedscope":
            return json.dumps(self.to_speedscope(), separators=(",", ":")).encode()
        if fmt == "pprof":
            return self.to_pprof()
        if fmt == "collapsed":
            return self.to_collapsed().encode()
        raise ValueError(f"unknown profile format {fmt!r} (one of {', '.join(FORMATS)})")


@dataclass(slots=True)
class FlameNode:
    index: int | None  # function index; None for the root
    count: int
    children: dict[int, FlameNode] = field(default_factory=dict)

    def height(self) -> int:
        """Levels below this node (0 for a leaf), without recursion."""
        best = 0
        todo: list[tuple[FlameNode, int]] = [(self, 0)]
        while todo:
            node, d = todo.pop()
            best = max(best, d)
            todo.extend((c, d + 1) for c in node.children.values())
        return best

    def nodes(self) -> int:
        n = 0
        todo = [self]
        while todo:
            node = todo.pop()
            n += 1
            todo.extend(node.children.values())
        return n


def _fold_name(name: str) -> str:
    return name.replace(";", ":").replace("\n", " ").replace("\r", " ")


def _fit(name: str, width: float) -> str:
    chars = int((width - 6) / 6.6)
    if chars < 3:
        return ""
    return name if len(name) <= chars else name[: chars - 2] + ".."


def _color(name: str, index: int | None, n_imported: int) -> str:
    h = zlib.crc32(name.encode("utf-8", "replace"))
    if index is None:
        return "rgb(200,200,200)"
    if index == LOST:
        return "rgb(170,170,170)"
    if index < n_imported:  # host calls: blue-ish, apart from the guest's warm colours
        return f"rgb({80 + h % 40},{140 + (h >> 8) % 50},{210 + (h >> 16) % 40})"
    return f"rgb({205 + h % 50},{(h >> 8) % 230},{(h >> 16) % 55})"


def _heat(t: float) -> str:
    """Pale yellow (0) to deep red (1), on a square-root scale so that small costs
    still show."""
    t = min(1.0, max(0.0, t)) ** 0.5
    r = round(255 - 55 * t)
    g = round(240 - 220 * t)
    b = round(190 - 175 * t)
    return f"rgb({r},{g},{b})"


def usd_text(x: float) -> str:
    """USD to three significant digits, without exponents: ``$0.00000104``."""
    if x == 0:
        return "$0"
    if abs(x) >= 1:
        return f"${x:,.2f}"
    digits = max(2, 2 - math.floor(math.log10(abs(x))))
    return f"${x:.{digits}f}"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("wasmscope")
    except Exception:
        return "0+unknown"


# -- protobuf, by hand (only what profile.proto needs) -----------------------------------------


def _varint(value: int) -> bytes:
    # protobuf varints are LEB128; int64 goes as its two's complement, 10 bytes
    return uleb(value + (1 << 64) if value < 0 else value)


def _pb_int(field_no: int, value: int) -> bytes:
    """A varint field (left out at 0, as proto3 does)."""
    if not value:
        return b""
    return _varint(field_no << 3) + _varint(value)


def _pb_bytes(field_no: int, payload: bytes) -> bytes:
    return _varint((field_no << 3) | 2) + _varint(len(payload)) + payload


def _pb_packed(field_no: int, values: Iterable[int]) -> bytes:
    body = b"".join(_varint(v) for v in values)
    return _pb_bytes(field_no, body) if body else b""
