"""Calibration: CPU time against fuel and host calls, per module, so fuel becomes a cost unit.

::

    from wasmscope.cost.calibrate import calibrate
    for fit in calibrate(table):
        fit.module, fit.r2, fit.seconds_per_gigafuel, fit.poor, fit.verdict

Fuel counts the guest's Wasm work exactly and the same on every machine; CPU time is
what hosts bill. Per module, a least-squares fit over its invocations::

    cpu_s = a + b * fuel + c * host_calls

gives ``b`` (CPU seconds per unit of fuel on this machine) and ``c`` (per host call),
with R² and the residuals' spread (their standard deviation, absolute and relative to
the mean CPU time). Where the fit is good, the fuel of a run predicts its CPU time on
this machine, and a run measured elsewhere converts through its own ``b``.

A fit is **poor** when R² < :data:`POOR_R2` (0.9): then fuel and host calls do not
explain the CPU time (the host does work that fuel does not count: large copies in a
host call, page faults on fresh memory, or a noisy machine), and fuel is not a good
cost unit for that module. A module whose fuel does not vary (one input class) cannot
be fitted: its verdict says so. ``host_calls`` enters the fit only where it is known
and varies independently of fuel; otherwise the fit is ``cpu_s = a + b * fuel``.
Invocations that did not end ``ok`` or ``exit`` are left out (a trap's CPU time is
that of a partial run).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from wasmscope.errors import UsageError

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as _missing:  # numpy is the cost extra
    raise UsageError("wasmscope cost needs numpy: pip install 'wasmscope[cost]'") from _missing

if TYPE_CHECKING:
    from wasmscope.cost.records import UsageTable

__all__ = ["MIN_INVOCATIONS", "POOR_R2", "Calibration", "calibrate", "fit_module"]

POOR_R2: Final = 0.9
MIN_INVOCATIONS: Final = 3


@dataclass(frozen=True, slots=True)
class Calibration:
    """The fit of one module. ``status``: ``"good"``, ``"poor"`` (R² < POOR_R2) or
    ``"insufficient"`` (too few invocations, no fuel, or fuel that does not vary)."""

    module: str
    invocations: int  # used in the fit
    status: str
    verdict: str
    terms: tuple[str, ...]  # "fuel", "host_calls": what the fit used
    a: float | None  # seconds
    b: float | None  # seconds per unit of fuel
    c: float | None  # seconds per host call
    r2: float | None
    residual_std_s: float | None
    residual_rel: float | None  # residual std / mean CPU time
    fuel_min: float | None
    fuel_max: float | None
    functions: tuple[str, ...] = ()  # the functions of the module seen in the records

    @property
    def poor(self) -> bool:
        return self.status != "good"

    @property
    def seconds_per_gigafuel(self) -> float | None:
        """CPU seconds per 10^9 units of fuel on the measuring machine."""
        return None if self.b is None else self.b * 1e9

    def predict(self, fuel: float, host_calls: float = 0.0) -> float | None:
        """CPU seconds the fit predicts for a run of ``fuel`` (and ``host_calls``)."""
        if self.a is None or self.b is None:
            return None
        return self.a + self.b * fuel + (self.c or 0.0) * host_calls

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["terms"] = list(self.terms)
        out["functions"] = list(self.functions)
        out["poor"] = self.poor
        out["seconds_per_gigafuel"] = self.seconds_per_gigafuel
        return out


def _insufficient(module: str, n: int, verdict: str, fuel: NDArray[np.float64]) -> Calibration:
    f = fuel[np.isfinite(fuel)]
    return Calibration(
        module, n, "insufficient", verdict, (), None, None, None, None, None, None,
        float(f.min()) if f.size else None, float(f.max()) if f.size else None,
    )  # fmt: skip


def fit_module(
    module: str,
    cpu_s: NDArray[np.float64],
    fuel: NDArray[np.float64],
    host_calls: NDArray[np.float64],
) -> Calibration:
    """The fit over equal-length columns of one module's finished invocations."""
    cpu = np.asarray(cpu_s, dtype=np.float64)
    fu = np.asarray(fuel, dtype=np.float64)
    hc = np.asarray(host_calls, dtype=np.float64)
    ok = np.isfinite(cpu) & np.isfinite(fu)
    n = int(np.count_nonzero(ok))
    if not np.any(np.isfinite(fu)):
        return _insufficient(module, n, "no fuel was metered (run with --fuel): nothing to fit", fu)
    if n < MIN_INVOCATIONS:
        return _insufficient(module, n, f"{n} invocations with CPU time and fuel: the fit needs at least {MIN_INVOCATIONS}", fu)
    cpu, fu, hc = cpu[ok], fu[ok], hc[ok]
    if float(fu.max() - fu.min()) <= 0.0:
        return _insufficient(
            module, n, f"fuel is {fu[0]:,.0f} in every invocation (one input class): runs with different inputs are needed", fu
        )
    use_calls = bool(np.all(np.isfinite(hc))) and float(hc.max() - hc.min()) > 0.0
    columns = [np.ones(n), fu] + ([hc] if use_calls else [])
    x = np.column_stack(columns)
    # Fuel and calls can be collinear (one call per unit of work): then calls add nothing.
    if use_calls and np.linalg.matrix_rank(x) < 3:
        use_calls = False
        x = x[:, :2]
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    coef, *_ = np.linalg.lstsq(x / scale, cpu, rcond=None)
    coef = coef / scale
    resid = cpu - x @ coef
    ss_res = float(resid @ resid)
    centred = cpu - cpu.mean()
    ss_tot = float(centred @ centred)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    dof = max(1, n - x.shape[1])
    std = math.sqrt(ss_res / dof)
    mean_cpu = float(cpu.mean())
    rel = std / mean_cpu if mean_cpu > 0 else None
    terms = ("fuel", "host_calls") if use_calls else ("fuel",)
    b = float(coef[1])
    if r2 < POOR_R2:
        status = "poor"
        verdict = (
            f"poor fit: R² {r2:.2f} < {POOR_R2} over {n} invocations; "
            f"{'fuel and host calls do' if use_calls else 'fuel does'} not explain this module's CPU time "
            "(work outside the guest, or a noisy machine): do not use fuel as its cost unit"
        )
    else:
        status = "good"
        verdict = (
            f"good fit: R² {r2:.4f} over {n} invocations, {b * 1e9:.3g} CPU s per 10^9 fuel, "
            f"residuals {std * 1e3:.3g} ms ({(rel or 0.0):.0%} of the mean CPU time)"
        )
    return Calibration(
        module=module,
        invocations=n,
        status=status,
        verdict=verdict,
        terms=terms,
        a=float(coef[0]),
        b=b,
        c=float(coef[2]) if use_calls else None,
        r2=r2,
        residual_std_s=std,
        residual_rel=rel,
        fuel_min=float(fu.min()),
        fuel_max=float(fu.max()),
    )


def calibrate(table: UsageTable) -> list[Calibration]:
    """One :class:`Calibration` per module of ``table``, by module."""
    if len(table) == 0:
        raise UsageError("no invocations to calibrate from")
    modules = np.asarray(table.module).astype(str)
    functions = np.asarray(table.function).astype(str)
    outcome = np.asarray(table.outcome).astype(str)
    finished = (outcome == "ok") | (outcome == "exit")
    cpu = np.asarray(table.cpu_s, dtype=np.float64)
    fuel = np.asarray(table.fuel, dtype=np.float64)
    calls = np.asarray(table.host_calls, dtype=np.float64)
    out = []
    for module in sorted(set(modules.tolist())):
        rows = (modules == module) & finished
        fit = fit_module(module, cpu[rows], fuel[rows], calls[rows])
        names = sorted(set(functions[modules == module].tolist()))
        out.append(replace(fit, functions=tuple(names)))
    return out
