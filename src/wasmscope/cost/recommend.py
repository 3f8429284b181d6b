"""Right-sizing: the memory, fuel limit and timeout each function should run with.

::

    from wasmscope.cost.recommend import recommend
    for rec in recommend(table, load_price_sheet("aws-lambda-x86"), headroom=0.2):
        rec.finding, rec.memory_mb, rec.saving_per_million, rec.reasons

From a :class:`~wasmscope.cost.records.UsageTable` and a price sheet, per function:

- **memory**: the largest observed peak (linear memory, all invocations) with
  ``headroom``, rounded up to a MiB (``memory_limit``, for ``wasmscope run
  --memory-limit``) and to the host's memory steps (``memory_mb``). Never below an
  observed peak. A larger size is recommended only where it is predicted to be
  cheaper by more than :data:`TIE` (1%): CPU that grows with memory can make it so.
  (A CPU-bound function costs about the same at every size up to one vCPU.) The model
  errs at small shares: the sweep measured runs under a CPU quota of 0.29 vCPU or less
  12-16% slower than predicted, at 0.58 or more 1-3%, on an otherwise idle machine.
  The memory is the guest's: a host that counts its own runtime's memory against the
  size needs that on top.
- **fuel limit**: fuel is deterministic for one input, so the largest fuel observed
  with ``headroom`` bounds the inputs seen; ``fuel_inputs`` counts the distinct fuel
  values (input classes) it was learned from.
- **timeout**: the slowest invocation (predicted at the recommended memory) with
  ``headroom``, rounded up to a millisecond; p95 and p99 are given beside it.

Each comes with Compute Optimizer's finding for memory, with the numbers behind it:
``MemoryUnderprovisioned`` (an invocation ran out of memory, or the peak with headroom
does not fit the configured limit), ``MemoryOverprovisioned`` (the recommended size is
at least 10% below the configured one; the saving per million requests is given), ``Optimized``
(neither: a size within :data:`OVER_MARGIN`, 10%, of the configured one counts as
right), or ``Unavailable`` (no configured limit in the records and none given).

Duration at other memory sizes, for hosts where CPU grows with memory
(``sheet.cpu_per_mb``; Lambda: one vCPU at 1,769 MB). The model, per invocation::

    share(m)  = min(1, m * cpu_per_mb)            # a guest runs on one thread: 1 vCPU at most
    wall(m)   = cpu_s * measured_share / share(m) + max(0, wall_s - cpu_s)

CPU-bound time (``cpu_s``, the guest's CPU time, host calls' CPU included) scales
with the inverse of the vCPU share below one vCPU; the rest of the wall time (waiting
in host calls and I/O, and the runtime's own load and instantiate steps, which the
records do not split from waiting) does not. ``measured_share`` is the share the
records were measured at: 1.0 for ``wasmscope run`` on an unthrottled machine.
CPU time itself is taken as unchanged, and this machine's CPU as the host's vCPU.
On hosts without ``cpu_per_mb`` the duration does not depend on memory.
:mod:`wasmscope.cost.sweep` checks the prediction against runs at each size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from wasmscope.errors import UsageError

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as _missing:  # numpy is the cost extra
    raise UsageError("wasmscope cost needs numpy: pip install 'wasmscope[cost]'") from _missing

if TYPE_CHECKING:
    from wasmscope.cost.prices import PriceSheet
    from wasmscope.cost.records import UsageTable

__all__ = [
    "CURVE_MB",
    "FINDINGS",
    "MIB",
    "OVER_MARGIN",
    "PAGE",
    "TIE",
    "Recommendation",
    "SizeCost",
    "predict_wall",
    "recommend",
    "recommend_function",
    "vcpu_share",
]

MIB: Final = 1024 * 1024  # hosts' "MB" are binary (as in prices.py)
PAGE: Final = 65536  # a Wasm page
TIE: Final = 0.01  # a larger size must be predicted this much cheaper to be recommended
OVER_MARGIN: Final = 0.1  # over-provisioned: the recommended size is this much below the configured
CURVE_MB: Final = (128, 256, 512, 1024, 1536, 1769, 2048, 3008, 4096, 10240)
FINDINGS: Final = ("Optimized", "MemoryOverprovisioned", "MemoryUnderprovisioned", "Unavailable")
_CANDIDATES: Final = 96  # sizes priced when a host has more steps than that


@dataclass(frozen=True, slots=True)
class SizeCost:
    """The predicted mean duration and cost of a function at one memory size."""

    memory_mb: int
    vcpu_share: float | None
    wall_s: float
    usd_per_million: float


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What one function should run with, the finding and the numbers behind it.

    Sizes in bytes unless the name says MB; costs in USD per million invocations at the
    sheet's unit prices (no free tier), at the durations the model predicts."""

    function: str
    invocations: int
    sheet: str
    headroom: float
    finding: str
    reasons: tuple[str, ...]
    # memory
    peak_memory_max: float | None
    peak_memory_p95: float | None
    memory_limit_configured: float | None
    out_of_memory: int
    configured_mb: int | None
    memory_mb: int | None
    memory_limit: int | None
    # cost at the configured and the recommended size
    usd_per_million_configured: float | None
    usd_per_million_recommended: float | None
    saving_per_million: float | None
    saving_fraction: float | None
    wall_s_configured: float | None
    wall_s_recommended: float | None
    # fuel
    fuel_max: float | None
    fuel_inputs: int
    fuel_limit: int | None
    out_of_fuel: int
    # timeout
    wall_p95: float | None
    wall_p99: float | None
    wall_max: float | None
    timeout_s: float | None
    timeouts: int
    risks: tuple[str, ...] = ()
    curve: tuple[SizeCost, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        out["risks"] = list(self.risks)
        return out


def vcpu_share(memory_mb: Any, cpu_per_mb: float | None) -> NDArray[np.float64]:
    """The vCPU share at ``memory_mb`` (at most 1: a guest runs on one thread)."""
    m = np.asarray(memory_mb, dtype=np.float64)
    if cpu_per_mb is None:
        return np.ones_like(m)
    out: NDArray[np.float64] = np.minimum(1.0, m * cpu_per_mb)
    return out


def predict_wall(
    wall_s: NDArray[np.float64],
    cpu_s: NDArray[np.float64],
    memory_mb: float,
    cpu_per_mb: float | None,
    *,
    measured_share: float = 1.0,
) -> NDArray[np.float64]:
    """Each invocation's wall time at ``memory_mb`` under the module docstring's model
    (an unknown CPU time: the wall time is taken as is)."""
    if cpu_per_mb is None:
        return wall_s
    share = float(vcpu_share(memory_mb, cpu_per_mb))
    cpu = np.where(np.isnan(cpu_s), 0.0, np.minimum(cpu_s, wall_s))
    out: NDArray[np.float64] = cpu * (measured_share / share) + (wall_s - cpu)
    return out


def _finite(a: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = a[np.isfinite(a)]
    return out


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / MIB:.1f} MiB" if n_bytes < 10 * 1024 * MIB else f"{n_bytes / MIB / 1024:.1f} GiB"


def _usd(x: float) -> str:
    return f"${x:,.4f}" if abs(x) < 1 else f"${x:,.2f}"


def _steps(sheet: PriceSheet) -> NDArray[np.int64] | None:
    steps = sheet.memory_steps_mb
    return None if not steps else np.asarray(sorted(steps), dtype=np.int64)


def _step_at_least(steps: NDArray[np.int64] | None, mb: float) -> int | None:
    """The smallest configurable size >= ``mb`` (no steps: ``mb`` rounded up), None if
    even the largest is too small."""
    if steps is None:
        return max(1, math.ceil(mb - 1e-9))
    i = int(np.searchsorted(steps, mb - 1e-9, side="left"))
    return None if i >= len(steps) else int(steps[i])


def _memory_metered(sheet: PriceSheet) -> bool:
    return sheet.meter == "memory-time"


def _mean_cost(
    sheet: PriceSheet,
    wall: NDArray[np.float64],
    cpu: NDArray[np.float64],
    peak: NDArray[np.float64],
    memory_mb: int | None,
) -> float:
    mb = memory_mb if _memory_metered(sheet) else None
    costs = sheet.invocation_costs(wall, cpu, peak, memory_mb=mb)
    good = costs[np.isfinite(costs)]
    return float(good.mean()) if good.size else math.nan


def _candidates(steps: NDArray[np.int64] | None, floor_mb: int, extra: Sequence[int]) -> list[int]:
    """The sizes to price: every step from ``floor_mb`` up when there are few, else a
    geometric selection of them plus ``extra`` (the knee, the configured size)."""
    if steps is None:
        return sorted({floor_mb, *(e for e in extra if e >= floor_mb)})
    above = steps[steps >= floor_mb]
    if len(above) <= _CANDIDATES:
        chosen = {int(s) for s in above}
    else:
        picks = np.geomspace(float(above[0]), float(above[-1]), _CANDIDATES)
        idx = np.unique(np.clip(np.searchsorted(above, picks), 0, len(above) - 1))
        chosen = {int(above[i]) for i in idx} | {int(above[0])}
    for e in extra:
        s = _step_at_least(steps, e)
        if s is not None and s >= floor_mb:
            chosen.add(s)
    return sorted(chosen)


def recommend_function(
    name: str,
    table: UsageTable,
    sheet: PriceSheet,
    *,
    headroom: float = 0.2,
    configured_mb: int | None = None,
    measured_share: float = 1.0,
) -> Recommendation:
    """The recommendation for the rows of ``table`` (one function's invocations).

    ``configured_mb``: the size the function runs with when the records carry no
    memory limit (a limit in the records wins: it is what the runs had)."""
    if not (headroom >= 0 and math.isfinite(headroom)):
        raise UsageError(f"--headroom must be a number >= 0 (0.2 is 20%), not {headroom}")
    n = len(table)
    if n == 0:
        raise UsageError(f"no invocations of {name} to recommend from")
    wall = np.asarray(table.wall_s, dtype=np.float64)
    cpu = np.asarray(table.cpu_s, dtype=np.float64)
    peak = np.asarray(table.peak_memory, dtype=np.float64)
    fuel = np.asarray(table.fuel, dtype=np.float64)
    limits = _finite(np.asarray(table.memory_limit, dtype=np.float64))
    outcome = np.asarray(table.outcome).astype(str)
    oom = int(np.count_nonzero(outcome == "out_of_memory"))
    oof = int(np.count_nonzero(outcome == "out_of_fuel"))
    timeouts = int(np.count_nonzero(outcome == "timeout"))
    steps = _steps(sheet)
    cpu_per_mb = sheet.cpu_per_mb
    reasons: list[str] = []
    risks: list[str] = []

    # The configured size: the records' memory limit (the largest), else the caller's.
    limit_bytes = float(limits.max()) if limits.size else None
    configured: int | None
    if limit_bytes is not None:
        cfg = _step_at_least(steps, limit_bytes / MIB)
        configured = cfg if cfg is not None else math.ceil(limit_bytes / MIB)
    else:
        configured = configured_mb

    # Memory: the observed peak with headroom, never below it.
    peaks = _finite(peak)
    peak_max = float(peaks.max()) if peaks.size else None
    peak_p95 = float(np.percentile(peaks, 95)) if peaks.size else None
    need = peak_max
    if oom and limit_bytes is not None:
        # Runs that were refused memory needed more than the limit: a floor, not a need.
        need = max(need or 0.0, limit_bytes)
    memory_limit: int | None = None
    memory_mb: int | None = None
    if need is not None:
        want = need * (1.0 + headroom)
        memory_limit = max(MIB, math.ceil(want / MIB - 1e-9) * MIB)
        floor = _step_at_least(steps, memory_limit / MIB)
        if floor is None:
            assert steps is not None
            memory_mb = int(steps[-1])
            risks.append(
                f"the peak with headroom ({_mb(want)}) is above the largest size the host offers "
                f"({memory_mb} MB)"
            )
        else:
            memory_mb = floor

    # Price the candidate sizes; a larger one wins only if clearly cheaper.
    curve: list[SizeCost] = []
    chosen_cost: float | None = None
    chosen_wall: float | None = None
    if memory_mb is not None and _memory_metered(sheet):
        knee = [] if cpu_per_mb is None else [math.ceil(1.0 / cpu_per_mb)]
        extra = knee + ([configured] if configured is not None else [])
        priced: dict[int, tuple[float, float]] = {}
        for m in _candidates(steps, memory_mb, extra):
            w = predict_wall(wall, cpu, m, cpu_per_mb, measured_share=measured_share)
            priced[m] = (_mean_cost(sheet, w, cpu, peak, m), float(np.nanmean(w)))
        floor_cost = priced[memory_mb][0]
        best = min(priced, key=lambda m: (priced[m][0], m))
        if priced[best][0] < floor_cost * (1.0 - TIE):
            reasons.append(
                f"{best} MB rather than the {memory_mb} MB its memory needs: predicted "
                f"{1 - priced[best][0] / floor_cost:.0%} cheaper, as it runs faster with the CPU that "
                "comes with memory"
            )
            memory_mb = best
        chosen_cost, chosen_wall = priced[memory_mb]
    elif memory_mb is not None:
        w = predict_wall(wall, cpu, memory_mb, cpu_per_mb, measured_share=measured_share)
        chosen_cost, chosen_wall = _mean_cost(sheet, w, cpu, peak, memory_mb), float(np.nanmean(w))

    # The configured size's cost, at the same model.
    cfg_cost: float | None = None
    cfg_wall: float | None = None
    if configured is not None and (not _memory_metered(sheet) or steps is None or configured in set(steps.tolist())):
        w = predict_wall(wall, cpu, configured, cpu_per_mb, measured_share=measured_share)
        cfg_cost, cfg_wall = _mean_cost(sheet, w, cpu, peak, configured), float(np.nanmean(w))

    # The curve: a few common sizes, the configured and the recommended one.
    if _memory_metered(sheet) or cpu_per_mb is not None:
        shown = {s for s in (_step_at_least(steps, c) for c in CURVE_MB) if s is not None}
        shown |= {s for s in (configured, memory_mb) if s is not None}
        for m in sorted(shown):
            if need is not None and m * MIB < need:
                continue
            w = predict_wall(wall, cpu, m, cpu_per_mb, measured_share=measured_share)
            share = None if cpu_per_mb is None else float(vcpu_share(m, cpu_per_mb))
            curve.append(SizeCost(m, share, float(np.nanmean(w)), _mean_cost(sheet, w, cpu, peak, m) * 1e6))

    # The finding.
    saving = saving_fraction = None
    if cfg_cost is not None and chosen_cost is not None and math.isfinite(cfg_cost) and math.isfinite(chosen_cost):
        saving = (cfg_cost - chosen_cost) * 1e6
        saving_fraction = (cfg_cost - chosen_cost) / cfg_cost if cfg_cost > 0 else 0.0
    if peak_max is None:
        finding = "Unavailable"
        reasons.append("the records have no peak memory")
    elif configured is None:
        finding = "Unavailable"
        reasons.append(
            f"peak {_mb(peak_max)}; the records have no memory limit, so there is nothing to compare "
            "with (give the configured size)"
        )
    else:
        cfg_bytes = limit_bytes if limit_bytes is not None else configured * MIB
        if oom:
            finding = "MemoryUnderprovisioned"
            reasons.insert(
                0,
                f"{oom} of {n} invocations ran out of memory at the {_mb(cfg_bytes)} limit: it needs more "
                f"than that (at least {memory_mb} MB with {headroom:.0%} headroom; run it once without a "
                "memory limit to measure its peak)",
            )
        elif peak_max * (1.0 + headroom) > cfg_bytes:
            finding = "MemoryUnderprovisioned"
            reasons.insert(
                0,
                f"peak {_mb(peak_max)} is {peak_max / cfg_bytes:.0%} of the {_mb(cfg_bytes)} limit: less "
                f"than {headroom:.0%} headroom",
            )
        elif memory_mb is not None and memory_mb <= configured * (1.0 - OVER_MARGIN):
            finding = "MemoryOverprovisioned"
            tail = ""
            if saving is not None:
                tail = f"; saves {_usd(saving)} per million requests ({saving_fraction or 0.0:.0%})"
                if cpu_per_mb is not None and saving_fraction is not None and saving_fraction < 0.02:
                    tail += ", little: its time is CPU-bound and a smaller size gets less CPU"
            reasons.insert(
                0,
                f"peak {_mb(peak_max)} is {peak_max / cfg_bytes:.0%} of the {configured} MB configured; "
                f"{memory_mb} MB holds it with {headroom:.0%} headroom{tail}",
            )
        else:
            finding = "Optimized"
            reasons.insert(0, f"peak {_mb(peak_max)} of {configured} MB configured ({peak_max / cfg_bytes:.0%})")

    # Fuel: the largest observed, with headroom.
    fuels = _finite(fuel)
    fuel_max = float(fuels.max()) if fuels.size else None
    fuel_limit = None if fuel_max is None else math.ceil(fuel_max * (1.0 + headroom))
    fuel_inputs = int(np.unique(fuels).size)
    if oof:
        risks.append(
            f"{oof} of {n} invocations ran out of fuel: their input needs more than the limit they had, "
            "so the fuel limit above is a floor"
        )

    # Timeout: the slowest invocation at the recommended size, with headroom.
    at = memory_mb if memory_mb is not None else configured
    w_at = wall if at is None else predict_wall(wall, cpu, at, cpu_per_mb, measured_share=measured_share)
    walls = _finite(w_at)
    wall_max = float(walls.max()) if walls.size else None
    timeout = None if wall_max is None else math.ceil(wall_max * (1.0 + headroom) * 1000) / 1000
    if timeouts:
        risks.append(f"{timeouts} of {n} invocations timed out: the timeout above is a floor")
    if fuel_max is None:
        risks.append("no fuel was metered (run with --fuel): no fuel limit can be learned")

    return Recommendation(
        function=name,
        invocations=n,
        sheet=sheet.name,
        headroom=headroom,
        finding=finding,
        reasons=tuple(reasons),
        peak_memory_max=peak_max,
        peak_memory_p95=peak_p95,
        memory_limit_configured=limit_bytes,
        out_of_memory=oom,
        configured_mb=configured,
        memory_mb=memory_mb,
        memory_limit=memory_limit,
        usd_per_million_configured=None if cfg_cost is None else cfg_cost * 1e6,
        usd_per_million_recommended=None if chosen_cost is None else chosen_cost * 1e6,
        saving_per_million=saving,
        saving_fraction=saving_fraction,
        wall_s_configured=cfg_wall,
        wall_s_recommended=chosen_wall,
        fuel_max=fuel_max,
        fuel_inputs=fuel_inputs,
        fuel_limit=fuel_limit,
        out_of_fuel=oof,
        wall_p95=float(np.percentile(walls, 95)) if walls.size else None,
        wall_p99=float(np.percentile(walls, 99)) if walls.size else None,
        wall_max=wall_max,
        timeout_s=timeout,
        timeouts=timeouts,
        risks=tuple(risks),
        curve=tuple(curve),
    )


def recommend(
    table: UsageTable,
    sheet: PriceSheet,
    *,
    headroom: float = 0.2,
    configured_mb: int | None = None,
    measured_share: float = 1.0,
) -> list[Recommendation]:
    """One :class:`Recommendation` per function of ``table``, by function name."""
    if len(table) == 0:
        raise UsageError("no invocations to recommend from")
    if not 0 < measured_share <= 1:
        raise UsageError(f"measured_share must be in (0, 1], not {measured_share}")
    names = np.asarray(table.function).astype(str)
    out = []
    for name in sorted(set(names.tolist())):
        rows = table.where(names == name)
        out.append(
            recommend_function(
                name, rows, sheet, headroom=headroom, configured_mb=configured_mb, measured_share=measured_share
            )
        )
    return out
