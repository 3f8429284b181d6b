"""What each Wasm function of one profiled invocation costs: its share of the samples,
times the invocation's cost.

::

    from wasmscope.cost.attribution import function_costs, invocation_cost
    from wasmscope.cost.prices import load_price_sheet

    record, prof = wasmscope.profile("app.wasm")
    usd = invocation_cost(load_price_sheet("aws-lambda-x86"), record, memory_mb=128)
    for row in function_costs(prof, usd)[:10]:
        print(row.name, row.calls, f"{100 * row.share:.1f}%", row.usd)

How the cost is split (one rule, so that the shares always sum to 1):

- A sample is charged to its innermost frame (self time): the function that was
  running. Callers get nothing from it; a flame graph shows the inclusive view.
- An imported (host) function is a row of its own (``host=True``), named
  ``module.name``: the thread sampler sees the guest inside the host call, and
  that time is billed like any other. The epoch sampler cannot see inside host
  calls: there, their time is charged to the calling guest function.
- A sample deeper than the shadow stack's ring has lost its outer frames, never its
  innermost one: it is charged to its innermost function like any other. A row
  ``[outer frames lost]`` appears only if a profile holds a stack made of the lost
  marker alone (never the sampler's).
- Samples with no function on the stack (the guest before its entry or after its
  exit) are billed time too: they are the row ``[outside any function]``.
- Torn reads the sampler dropped are left out: they fall at random, so they change
  no share.
- The parts of the cost that no sample sees (the request fee, loading and
  instantiating, the billing rounding) are spread in the same proportions: a row's
  ``usd`` is its share of the whole invocation's cost.
- A run too short for a single sample has one row, ``[not sampled]``, with all of it.

A share from ``n`` samples is an estimate: :attr:`FunctionCost.share_error` is the
half-width of its 95% interval (binomial, ``1.96 * sqrt(p (1 - p) / n)``), and
:func:`attribution_warning` says when the profile has fewer than
:data:`MIN_SAMPLES` samples (sample faster with ``--rate``, or run longer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wasmscope.errors import UsageError

if TYPE_CHECKING:
    from wasmscope.cost.prices import PriceSheet
    from wasmscope.profile.model import Profile
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "MIN_SAMPLES",
    "NOT_SAMPLED",
    "OUTSIDE",
    "FunctionCost",
    "attribution_warning",
    "function_costs",
    "invocation_cost",
]

MIN_SAMPLES = 100
"""Below this many samples, :func:`attribution_warning` warns: a 10% share is then
known to about +-6 percentage points."""

OUTSIDE = "[outside any function]"
NOT_SAMPLED = "[not sampled]"
_Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class FunctionCost:
    """One function's part of one invocation's cost.

    ``share``: of the invocation's samples (0..1); ``usd``: ``share`` times the
    invocation's cost; ``calls``: exact, from the module's counters (0 for the
    buckets); ``self_samples``: samples with this function innermost.
    ``index``: the original function index (``None`` for the buckets);
    ``host``: an imported function; ``share_error``: the half-width of the 95%
    interval of ``share``."""

    name: str
    share: float
    usd: float
    calls: int
    self_samples: int
    index: int | None = None
    host: bool = False
    share_error: float = 0.0


def function_costs(profile: Profile, invocation_cost_usd: float) -> list[FunctionCost]:
    """Every function sampled or called in ``profile`` with its share of the samples and
    of ``invocation_cost_usd`` (see the module docstring for the rules), most costly
    first (then by calls, then by name). The shares sum to 1 and the ``usd`` to
    ``invocation_cost_usd``, to float rounding.

    Raises :class:`~wasmscope.errors.UsageError` for a cost that is negative or not
    a finite number."""
    cost = float(invocation_cost_usd)
    if not math.isfinite(cost) or cost < 0:
        raise UsageError(f"the invocation's cost must be a finite number of USD >= 0, not {invocation_cost_usd!r}")
    selfs = profile.self_samples()
    outside = profile.empty_samples
    n = sum(selfs.values()) + outside
    from wasmscope.runtime.guest_counters import unique_names

    unique = unique_names(profile.names)  # one name per index, as the profile's table has them
    if n == 0:
        rows = [FunctionCost(NOT_SAMPLED, 1.0, cost, 0, 0, share_error=1.0)]
        rows += [_row(profile, i, 0, 0, 0.0, unique) for i, c in enumerate(profile.counts) if c]
        return _sorted(rows)
    indices = set(selfs) | {i for i, c in enumerate(profile.counts) if c}
    rows = [_row(profile, i, selfs.get(i, 0), n, cost, unique) for i in indices]
    if outside:
        p = outside / n
        rows.append(FunctionCost(OUTSIDE, p, p * cost, 0, outside, share_error=_error(p, n)))
    return _sorted(rows)


def _row(profile: Profile, i: int, k: int, n: int, cost: float, unique: list[str]) -> FunctionCost:
    p = k / n if n else 0.0
    return FunctionCost(
        name=profile.unique_name(i, unique),
        share=p,
        usd=p * cost,
        calls=profile.counts[i] if 0 <= i < len(profile.counts) else 0,
        self_samples=k,
        index=i if i >= 0 else None,
        host=0 <= i < profile.n_imported,
        share_error=_error(p, n),
    )


def _error(p: float, n: int) -> float:
    return _Z95 * math.sqrt(p * (1.0 - p) / n) if n else 1.0


def _sorted(rows: list[FunctionCost]) -> list[FunctionCost]:
    return sorted(rows, key=lambda r: (-r.usd, -r.self_samples, -r.calls, r.name))


def attribution_warning(profile: Profile, min_samples: int = MIN_SAMPLES) -> str | None:
    """A sentence for the user when ``profile`` has too few samples for its shares to
    mean much (fewer than ``min_samples``), else ``None``."""
    n = profile.sampled + profile.empty_samples
    if n >= min_samples:
        return None
    if n == 0:
        return "no samples: the run was shorter than one sampling interval, so no function can be charged"
    return (
        f"only {n} samples (fewer than {min_samples}): a share is known to about "
        f"+-{100 * _error(0.5, n):.0f} percentage points; sample faster (--rate) or run longer"
    )


def invocation_cost(
    sheet: PriceSheet, record: InvocationRecord, *, memory_mb: float | None = None, concurrency: float = 1.0
) -> float:
    """The USD ``sheet`` bills for ``record``'s invocation: its wall time (start to end),
    CPU time and peak memory (NaN when unknown), at ``memory_mb`` configured for the
    sheets that bill configured memory. Raises :class:`~wasmscope.errors.UsageError`
    when numpy is missing and for what the sheet refuses."""
    try:
        import numpy as np
    except ImportError:
        raise UsageError("wasmscope cost needs numpy: pip install 'wasmscope[cost]'") from None
    nan = float("nan")
    wall = np.array([max(0, record.end_ns - record.start_ns) / 1e9], dtype=np.float64)
    cpu = np.array([record.cpu_seconds if record.cpu_seconds is not None else nan], dtype=np.float64)
    peak = np.array([float(record.peak_memory) if record.peak_memory is not None else nan], dtype=np.float64)
    costs = sheet.invocation_costs(wall, cpu, peak, memory_mb=memory_mb, concurrency=concurrency)
    usd = float(costs[0])
    if not math.isfinite(usd):
        needs = {"cpu-time": "CPU time", "observed-memory-time": "peak memory"}.get(sheet.meter, "wall time")
        raise UsageError(
            f"price sheet {sheet.name}: its {sheet.meter} meter needs the invocation's {needs}, "
            "which this run's record does not have"
        )
    return usd
