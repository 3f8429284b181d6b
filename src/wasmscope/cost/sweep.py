"""A measured sweep: a module run at several memory sizes, against the prediction.

::

    from wasmscope.cost.sweep import sweep
    result = sweep("app.wasm", ["arg"], sheet, [128, 256, 1024, 1769], base=table, repeat=3)
    for p in result.points:
        p.memory_mb, p.wall_s, p.wall_s_predicted, p.usd_per_million, p.outcome

Each size is run ``repeat`` times, round robin over the sizes (the median is kept), with the guest's memory limit
at that size and, where the sheet's CPU grows with memory (``cpu_per_mb``), at that
size's vCPU share by a CPU quota (:mod:`wasmscope.cost._throttle`, which needs a
writable cgroup: root). Where no quota can be had, ``emulated`` is False: the runs are
at a whole CPU, so they check the memory limits and the CPU time, and the share stays
modelled. The prediction at each size is :func:`wasmscope.cost.recommend.predict_wall`
applied to the ``base`` records (the recorded runs the recommendation came from).
This is the AWS Lambda Power Tuning method (run at every size, price each), on this
machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from wasmscope.cost.recommend import MIB, predict_wall, vcpu_share
from wasmscope.errors import UsageError

try:
    import numpy as np
except ImportError as _missing:  # numpy is the cost extra
    raise UsageError("wasmscope cost needs numpy: pip install 'wasmscope[cost]'") from _missing

if TYPE_CHECKING:
    from wasmscope.cost._measure import Measurer
    from wasmscope.cost.prices import PriceSheet
    from wasmscope.cost.records import UsageTable

__all__ = ["SweepPoint", "SweepResult", "sweep"]


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One size: measured (medians of the runs) and predicted."""

    memory_mb: int
    vcpu_share: float
    runs: int
    outcome: str  # the outcome of the runs ("ok", or the first that was not)
    wall_s: float
    cpu_s: float
    peak_memory: float
    usd_per_million: float  # priced from the measured runs
    wall_s_predicted: float | None
    usd_per_million_predicted: float | None

    @property
    def error(self) -> float | None:
        """Measured wall over predicted, minus one (0.05: 5% slower than predicted)."""
        if self.wall_s_predicted is None or not self.wall_s_predicted > 0:
            return None
        return self.wall_s / self.wall_s_predicted - 1.0


@dataclass(frozen=True, slots=True)
class SweepResult:
    path: str
    args: tuple[str, ...]
    sheet: str
    emulated: bool  # the CPU share was applied (a CPU quota), not only modelled
    points: tuple[SweepPoint, ...]

    @property
    def runs(self) -> int:
        return sum(p.runs for p in self.points)

    def cheapest(self, among: Sequence[int] | None = None) -> SweepPoint | None:
        """The cheapest size whose runs finished (of the sizes ``among``, or all)."""
        good = [p for p in self.points if p.outcome in ("ok", "exit") and math.isfinite(p.usd_per_million)]
        if among is not None:
            good = [p for p in good if p.memory_mb in among]
        return min(good, key=lambda p: (p.usd_per_million, p.memory_mb)) if good else None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "args": list(self.args),
            "sheet": self.sheet,
            "emulated": self.emulated,
            "runs": self.runs,
            "points": [asdict(p) | {"error": p.error} for p in self.points],
        }


def _price(sheet: PriceSheet, wall: float, cpu: float, peak: float, mb: int) -> float:
    memory = mb if sheet.meter == "memory-time" else None
    cost = sheet.invocation_costs(np.array([wall]), np.array([cpu]), np.array([peak]), memory_mb=memory)
    return float(cost[0]) * 1e6


def sweep(
    path: str,
    args: Sequence[str],
    sheet: PriceSheet,
    sizes_mb: Sequence[int],
    *,
    base: UsageTable | None = None,
    repeat: int = 3,
    measurer: Measurer | None = None,
    measured_share: float = 1.0,
) -> SweepResult:
    """Run ``path`` at each of ``sizes_mb`` (``repeat`` runs each) and price each size."""
    from wasmscope.cost._measure import Measurer

    if repeat < 1:
        raise UsageError(f"repeat must be 1 or more, not {repeat}")
    if not sizes_mb:
        raise UsageError("the sweep needs at least one memory size")
    steps = set(sheet.memory_steps_mb or ())
    for mb in sizes_mb:
        if not mb > 0:
            raise UsageError(f"sweep size {mb} MB: expected a size above 0")
        if sheet.meter == "memory-time" and steps and mb not in steps:
            raise UsageError(f"sweep size {mb} MB cannot be configured on {sheet.name}")
    own = measurer is None
    m = Measurer() if measurer is None else measurer
    sizes = sorted(set(sizes_mb))
    shares = {mb: float(vcpu_share(mb, sheet.cpu_per_mb)) for mb in sizes}
    recs: dict[int, list[dict[str, Any]]] = {mb: [] for mb in sizes}
    try:
        # Round robin over the sizes, so that a machine's load drifting during the
        # sweep falls on every size alike.
        for _ in range(repeat):
            for mb in sizes:
                recs[mb].append(m.run(path, args, memory_limit=mb * MIB, share=shares[mb]))
        emulated = m.emulated
    finally:
        if own:
            m.close()
    points = []
    for mb in sizes:
        runs = recs[mb]
        bad = [r["outcome"] for r in runs if r["outcome"] not in ("ok", "exit")]
        wall = statistics.median(float(r["duration_seconds"]) for r in runs)
        cpu = statistics.median(float(r.get("cpu_seconds") or 0.0) for r in runs)
        peak = max(float(r.get("peak_memory") or 0.0) for r in runs)
        pred_wall = pred_usd = None
        if base is not None and len(base):
            bw = np.asarray(base.wall_s, dtype=np.float64)
            bc = np.asarray(base.cpu_s, dtype=np.float64)
            bp = np.asarray(base.peak_memory, dtype=np.float64)
            w = predict_wall(bw, bc, mb, sheet.cpu_per_mb, measured_share=measured_share)
            pred_wall = float(np.nanmean(w))
            memory = mb if sheet.meter == "memory-time" else None
            pred_usd = float(np.nanmean(sheet.invocation_costs(w, bc, bp, memory_mb=memory))) * 1e6
        points.append(
            SweepPoint(mb, shares[mb], repeat, bad[0] if bad else "ok", wall, cpu, peak,
                       _price(sheet, wall, cpu, peak, mb), pred_wall, pred_usd)
        )  # fmt: skip
    return SweepResult(str(path), tuple(args), sheet.name, emulated, tuple(points))
