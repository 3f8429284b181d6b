"""Price sheets: what a host charges for one invocation, read from TOML.

::

    from wasmscope.cost.prices import load_price_sheet, SHEETS
    sheet = load_price_sheet("aws-lambda-x86")           # a shipped sheet, or a .toml path
    usd = sheet.invocation_costs(wall_s, cpu_s, peak_memory, memory_mb=1024)
    sheet.bill(usd, monthly_invocations=60e6).per_month

A sheet has one of three meters:

- ``memory-time``: the configured memory (and, where priced, vCPU) times the wall time,
  rounded per the sheet (AWS Lambda, Cloud Run, Azure Flex Consumption);
- ``cpu-time``: the CPU time only (Cloudflare Workers, Fastly Compute);
- ``observed-memory-time``: the memory the invocation used, rounded up to a bucket,
  times the wall time (Azure Functions Consumption).

Every sheet adds its per-request fee. Free tiers, monthly fees and volume tiers apply to
a month's total, so only :meth:`PriceSheet.bill` applies them, and the free tier only
when asked. The shipped sheets (``data/prices/*.toml``) are dated and name their source;
a user's own sheet is a TOML file of the same form (the reference is ``docs/cost.md``).
Every mistake in a sheet is a :class:`~wasmscope.errors.UsageError` naming the file,
the key and what is expected.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from wasmscope._files import read_file
from wasmscope.errors import UsageError

try:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray
except ImportError as _missing:  # numpy is the cost extra
    raise UsageError("wasmscope cost needs numpy: pip install 'wasmscope[cost]'") from _missing

__all__ = [
    "METERS",
    "SHEETS",
    "Bill",
    "FreeTier",
    "PriceSheet",
    "Tier",
    "load_price_sheet",
    "parse_price_sheet",
]

Meter = Literal["memory-time", "cpu-time", "observed-memory-time"]
METERS: Final[tuple[str, ...]] = ("memory-time", "cpu-time", "observed-memory-time")

# The shipped sheets, in the order the docs list them.
SHEETS: Final[tuple[str, ...]] = (
    "aws-lambda-x86",
    "aws-lambda-arm64",
    "cloudflare-workers",
    "fastly-compute",
    "cloud-run",
    "azure-consumption",
    "azure-flex",
)

MB: Final = 1024 * 1024  # providers' "MB" and "GB" are binary (1 GB = 1024 MB)
SECONDS_PER_MONTH: Final = 30 * 86400

# The keys of a sheet, by section ("" is the top level), and what each must be.
_KEYS: Final[Mapping[str, Mapping[str, str]]] = {
    "": {
        "name": "a string",
        "provider": "a string",
        "date": "a date (2026-12-04)",
        "source": "a URL string",
        "meter": "one of " + ", ".join(METERS),
        "notes": "a string",
    },
    "duration": {
        "rounding_ms": "a number of milliseconds >= 0 (0: not rounded)",
        "minimum_ms": "a number of milliseconds >= 0",
        "scope": '"invocation" or "instance"',
    },
    "memory": {
        "steps_mb": "a list of sizes in MB, or a table {min, max, step}",
        "mb_per_vcpu": "a number of MB > 0",
        "bucket_mb": "a number of MB > 0",
        "minimum_mb": "a number of MB >= 0",
        "maximum_mb": "a number of MB > 0",
    },
    "instance": {"vcpus": "a number of vCPUs > 0"},
    "price": {
        "gb_second": "USD per GB-second, >= 0",
        "vcpu_second": "USD per vCPU-second, >= 0",
        "cpu_ms_per_million": "USD per million CPU milliseconds, >= 0",
        "requests_per_million": "USD per million requests, >= 0",
    },
    "free_tier": {
        "requests": "requests per month, >= 0",
        "gb_seconds": "GB-seconds per month, >= 0",
        "vcpu_seconds": "vCPU-seconds per month, >= 0",
        "cpu_ms": "CPU milliseconds per month, >= 0",
        "monthly_fee": "USD per month, >= 0",
    },
    "tiers": {
        "up_to_gb_seconds": "GB-seconds per month > 0, increasing",
        "gb_second": "USD per GB-second, >= 0",
    },
}

# Keys that only some meters use; a sheet of another meter that sets one is refused.
_ONLY_FOR: Final[Mapping[str, tuple[str, ...]]] = {
    "price.gb_second": ("memory-time", "observed-memory-time"),
    "price.vcpu_second": ("memory-time",),
    "price.cpu_ms_per_million": ("cpu-time",),
    "instance.vcpus": ("memory-time",),
    "memory.bucket_mb": ("observed-memory-time",),
    "memory.minimum_mb": ("observed-memory-time",),
    "memory.maximum_mb": ("observed-memory-time",),
    "free_tier.gb_seconds": ("memory-time", "observed-memory-time"),
    "free_tier.vcpu_seconds": ("memory-time",),
    "free_tier.cpu_ms": ("cpu-time",),
}

# Keys each meter cannot do without.
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "memory-time": ("price.gb_second", "memory.steps_mb"),
    "cpu-time": ("price.cpu_ms_per_million",),
    "observed-memory-time": ("price.gb_second", "memory.bucket_mb"),
}


@dataclass(frozen=True, slots=True)
class Tier:
    """A volume tier: the price of each GB-second of the month up to ``up_to_gb_seconds``
    (None: all the rest) beyond the previous tier."""

    up_to_gb_seconds: float | None
    gb_second: float


@dataclass(frozen=True, slots=True)
class FreeTier:
    """What a month includes for free (and the fee that comes with it), applied by
    :meth:`PriceSheet.bill` only when asked."""

    requests: float = 0.0
    gb_seconds: float = 0.0
    vcpu_seconds: float = 0.0
    cpu_ms: float = 0.0
    monthly_fee: float = 0.0


@dataclass(frozen=True, slots=True)
class Bill:
    """The cost of a set of invocations: per invocation and per million at the sheet's
    unit prices (no free tier, no volume tier), and per month at a monthly rate, with
    the sheet's volume tiers and, when ``free_tier``, its free allowances and fee.

    ``per_month`` (and its parts) is None when no rate was given or observed.
    ``unpriced`` counts the costs that were NaN (an input the meter needs was
    unknown): they are left out of the mean."""

    sheet: str
    invocations: float
    per_invocation: float
    per_million: float
    per_month: float | None
    monthly_invocations: float | None
    compute_per_month: float | None
    requests_per_month: float | None
    fee_per_month: float | None
    free_tier: bool
    unpriced: int


@dataclass(frozen=True, slots=True)
class PriceSheet:
    """One host's prices and how it meters an invocation (see the module docstring).

    ``memory_steps_mb`` are the memory sizes one can configure (None where memory is not
    configured); ``cpu_per_mb`` the vCPUs per MB where CPU grows with memory (Lambda:
    1/1769), else None. ``rounding_scope`` says what the rounding applies to: each
    invocation (``"invocation"``) or each period an instance is busy (``"instance"``:
    Cloud Run, Azure Flex, which bill instance time shared by concurrent requests)."""

    name: str
    provider: str
    date: str
    source: str
    meter: Meter
    memory_steps_mb: tuple[int, ...] | None = field(repr=False)
    cpu_per_mb: float | None
    rounding_ms: float
    minimum_ms: float
    rounding_scope: Literal["invocation", "instance"]
    gb_second: float
    vcpu_second: float
    vcpus: float
    cpu_ms_price: float  # USD per CPU millisecond
    request_price: float  # USD per request
    bucket_mb: float
    minimum_mb: float
    maximum_mb: float | None
    free: FreeTier
    tiers: tuple[Tier, ...]
    notes: str = ""
    path: str = ""

    # -- per invocation ---------------------------------------------------------------

    def invocation_costs(
        self,
        wall_s: ArrayLike,
        cpu_s: ArrayLike,
        peak_memory: ArrayLike,
        *,
        memory_mb: ArrayLike | None = None,
        concurrency: ArrayLike = 1.0,
        steady: bool = False,
    ) -> NDArray[np.float64]:
        """USD per invocation (compute and request fee, no free tier), vectorised over
        equal-length float arrays (scalars broadcast): ``wall_s`` and ``cpu_s`` in
        seconds, ``peak_memory`` in bytes.

        ``memory_mb`` is the configured size, which memory-time meters need (one of
        :attr:`memory_steps_mb`). ``concurrency`` is how many requests share an
        instance's billed time (memory-time meters) or a process's memory (observed
        memory). Rounding is applied per invocation; for hosts that round an
        instance's busy periods (``rounding_scope == "instance"``), ``steady=True``
        says the instance stays busy, so that rounding is negligible and not applied.
        An input the meter needs that is NaN gives a NaN cost."""
        wall, cpu, peak, conc = _columns(
            self, wall_s=wall_s, cpu_s=cpu_s, peak_memory=peak_memory, concurrency=concurrency
        )
        if np.any(conc <= 0) or np.any(np.isnan(conc)):
            raise UsageError(f"price sheet {self.name}: concurrency must be > 0")
        if self.meter == "cpu-time":
            compute = _rounded(cpu, self.rounding_ms, self.minimum_ms) * 1000 * self.cpu_ms_price
        elif self.meter == "memory-time":
            memory = self._configured(memory_mb, wall.shape)
            billed = self._billed_seconds(wall, steady)
            per_second = memory / 1024 * self.gb_second + self.vcpus * self.vcpu_second
            compute = billed * per_second / conc
        else:
            shared = self._bucketed(peak / MB * conc) / conc
            compute = self._billed_seconds(wall, steady) * shared / 1024 * self.gb_second
        result: NDArray[np.float64] = compute + self.request_price
        return result

    def _billed_seconds(self, wall: NDArray[np.float64], steady: bool) -> NDArray[np.float64]:
        if steady and self.rounding_scope == "instance":
            return wall
        return _rounded(wall, self.rounding_ms, self.minimum_ms)

    def _bucketed(self, mb: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.ceil(np.round(mb / self.bucket_mb, 6)) * self.bucket_mb
        out = np.maximum(out, self.minimum_mb)
        if self.maximum_mb is not None:
            out = np.minimum(out, self.maximum_mb)
        return out

    def _configured(
        self, memory_mb: ArrayLike | None, shape: tuple[int, ...]
    ) -> NDArray[np.float64]:
        steps = self.memory_steps_mb or ()
        if memory_mb is None:
            raise UsageError(
                f"price sheet {self.name}: the memory-time meter needs memory_mb, the configured "
                f"memory size ({_describe_steps(steps)})"
            )
        try:
            raw = np.asarray(memory_mb, dtype=np.float64)
            memory = np.broadcast_to(raw, shape)
        except (TypeError, ValueError) as e:
            raise UsageError(
                f"price sheet {self.name}: memory_mb must be a number or one per invocation ({e})"
            ) from None
        # Check each distinct size once: a scalar or a column of a few sizes.
        distinct = np.unique(raw) if raw.size > 1 else raw.reshape(-1)
        wrong = distinct[~np.isin(distinct, _allowed(steps))]
        if wrong.size:
            raise UsageError(
                f"price sheet {self.name}: memory_mb "
                f"{', '.join(f'{m:g}' for m in wrong[:3].tolist())} cannot "
                f"be configured (expected {_describe_steps(steps)})"
            )
        return memory

    def memory_step_for(self, mb: float) -> int | None:
        """The smallest memory size one can configure that holds ``mb`` MB, or None when
        none does (or memory is not configured on this host)."""
        steps = self.memory_steps_mb
        if not steps or not mb <= steps[-1]:
            return None
        allowed = _allowed(steps)
        return int(allowed[int(np.searchsorted(allowed, mb - 1e-9, side="left"))])

    # -- per month --------------------------------------------------------------------

    @property
    def free_compute_usd(self) -> float:
        """The free tier's compute allowance in USD at the first tier's prices."""
        f = self.free
        return (
            f.gb_seconds * self.gb_second
            + f.vcpu_seconds * self.vcpu_second
            + f.cpu_ms * self.cpu_ms_price
        )

    def bill(
        self,
        costs: ArrayLike,
        *,
        invocations: float | None = None,
        seconds_observed: float | None = None,
        monthly_invocations: float | None = None,
        free_tier: bool = False,
    ) -> Bill:
        """What ``costs`` (from :meth:`invocation_costs`) come to: the mean per
        invocation, per million, and per month at ``monthly_invocations``, else at the
        observed rate (``invocations``, default ``len(costs)``, over
        ``seconds_observed``) scaled to 30 days. ``free_tier`` subtracts the month's free
        allowances and adds the fee they come with (Workers' $5 plan).

        The free allowances are per meter and prices are per meter, so a sheet whose
        compute has two prices (Cloud Run: vCPU and memory) applies its allowance as
        USD at those prices ("a spending based discount", as Google puts it)."""
        values = np.asarray(costs, dtype=np.float64).reshape(-1)
        finite = values[np.isfinite(values)]
        unpriced = int(values.size - finite.size)
        count = float(values.size if invocations is None else invocations)
        _check_number(self.name, "invocations", count)
        mean = float(finite.mean()) if finite.size else math.nan
        monthly = self._monthly_rate(count, seconds_observed, monthly_invocations)
        if monthly is None:
            parts: tuple[float | None, float | None, float | None] = (None, None, None)
        else:
            parts = self._month(mean, monthly, free_tier)
        total = None if parts[0] is None else sum(p for p in parts if p is not None)
        return Bill(
            sheet=self.name,
            invocations=count,
            per_invocation=mean,
            per_million=mean * 1e6,
            per_month=total,
            monthly_invocations=monthly,
            compute_per_month=parts[0],
            requests_per_month=parts[1],
            fee_per_month=parts[2],
            free_tier=free_tier,
            unpriced=unpriced,
        )

    def _monthly_rate(
        self, count: float, seconds: float | None, monthly: float | None
    ) -> float | None:
        if monthly is not None:
            _check_number(self.name, "monthly_invocations", monthly)
            return float(monthly)
        if seconds is None:
            return None
        if not (isinstance(seconds, int | float) and seconds > 0 and math.isfinite(seconds)):
            raise UsageError(
                f"price sheet {self.name}: seconds_observed must be > 0, not {seconds!r}"
            )
        return count / float(seconds) * SECONDS_PER_MONTH

    def _month(self, mean: float, monthly: float, free_tier: bool) -> tuple[float, float, float]:
        compute = max(mean - self.request_price, 0.0) * monthly
        if self.tiers:
            units = compute / self.gb_second if self.gb_second else 0.0
            if free_tier:
                units = max(units - self.free.gb_seconds, 0.0)
            compute = _tiered(units, self.tiers)
        elif free_tier:
            compute = max(compute - self.free_compute_usd, 0.0)
        billable = max(monthly - self.free.requests, 0.0) if free_tier else monthly
        fee = self.free.monthly_fee if free_tier else 0.0
        return compute, billable * self.request_price, fee


# -- loading ----------------------------------------------------------------------------


def load_price_sheet(name_or_path: str | Path) -> PriceSheet:
    """A shipped sheet by name (one of :data:`SHEETS`) or a user's sheet from a path."""
    if isinstance(name_or_path, str) and name_or_path in SHEETS:
        return _shipped(name_or_path)
    path = Path(name_or_path)
    if not path.suffix == ".toml" and not path.exists():
        raise UsageError(
            f"unknown price sheet {str(name_or_path)!r}: expected one of {', '.join(SHEETS)} "
            "or the path of a .toml price sheet"
        )
    return _parse_bytes(read_file(path, "price sheet"), str(path))


@cache
def _shipped(name: str) -> PriceSheet:
    raw = resources.files("wasmscope.cost").joinpath("data", "prices", f"{name}.toml").read_bytes()
    return _parse_bytes(raw, f"{name}.toml")


def _parse_bytes(raw: bytes, where: str) -> PriceSheet:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where}: not valid TOML: {e}") from None
    return parse_price_sheet(data, where)


def parse_price_sheet(data: Mapping[str, Any], where: str = "price sheet") -> PriceSheet:
    """A sheet from a parsed TOML table; ``where`` names it in errors."""
    _check_keys(data, where)
    meter = data.get("meter")
    if meter is None:
        raise UsageError(f"{where}: `meter` is missing: expected one of {', '.join(METERS)}")
    if meter not in METERS:
        raise UsageError(
            f"{where}: `meter` = {meter!r} is unknown: expected one of {', '.join(METERS)}"
        )
    for key in _REQUIRED[meter]:
        if _get(data, key) is None:
            section, name = key.split(".")
            raise UsageError(
                f"{where}: `{key}` is missing: the {meter} meter needs it ({_KEYS[section][name]})"
            )
    for key, meters in _ONLY_FOR.items():
        if _get(data, key) is not None and meter not in meters:
            raise UsageError(
                f"{where}: `{key}` is not used by the {meter} meter (only by {', '.join(meters)})"
            )
    price = data.get("price", {})
    if "requests_per_million" not in price:
        raise UsageError(
            f"{where}: `price.requests_per_million` is missing: expected USD per million "
            "requests (0 where requests are free)"
        )
    duration = data.get("duration", {})
    memory = data.get("memory", {})
    free = data.get("free_tier", {})
    gb_second = _num(price, "gb_second", where, "price", default=0.0)
    vcpu_second = _num(price, "vcpu_second", where, "price", default=0.0)
    vcpus = _num(data.get("instance", {}), "vcpus", where, "instance", default=1.0, positive=True)
    if "vcpu_second" in price and "vcpus" not in data.get("instance", {}):
        raise UsageError(
            f"{where}: `instance.vcpus` is missing: price.vcpu_second needs the configured vCPUs"
        )
    mb_per_vcpu = memory.get("mb_per_vcpu")
    if mb_per_vcpu is not None:
        mb_per_vcpu = _num(memory, "mb_per_vcpu", where, "memory", positive=True)
    scope = duration.get("scope", "invocation")
    if scope not in ("invocation", "instance"):
        raise UsageError(
            f"{where}: `duration.scope` = {scope!r}: expected {_KEYS['duration']['scope']}"
        )
    sheet = PriceSheet(
        name=_text(data, "name", where),
        provider=_text(data, "provider", where),
        date=_date(data, where),
        source=_text(data, "source", where),
        meter=meter,
        memory_steps_mb=_steps(memory.get("steps_mb"), where),
        cpu_per_mb=None if mb_per_vcpu is None else 1.0 / mb_per_vcpu,
        rounding_ms=_num(duration, "rounding_ms", where, "duration", default=0.0),
        minimum_ms=_num(duration, "minimum_ms", where, "duration", default=0.0),
        rounding_scope=scope,
        gb_second=gb_second,
        vcpu_second=vcpu_second,
        vcpus=vcpus,
        cpu_ms_price=_num(price, "cpu_ms_per_million", where, "price", default=0.0) / 1e6,
        request_price=_num(price, "requests_per_million", where, "price") / 1e6,
        bucket_mb=_num(memory, "bucket_mb", where, "memory", default=1.0, positive=True),
        minimum_mb=_num(memory, "minimum_mb", where, "memory", default=0.0),
        maximum_mb=(
            _num(memory, "maximum_mb", where, "memory", positive=True)
            if "maximum_mb" in memory
            else None
        ),
        free=FreeTier(**{k: _num(free, k, where, "free_tier") for k in free}),
        tiers=_tiers(data.get("tiers"), where, meter, gb_second, "vcpu_second" in price),
        notes=str(data.get("notes", "")),
        path=where,
    )
    return sheet


def _check_keys(data: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        if key in _KEYS[""]:
            if key != "date" and not isinstance(value, str):
                raise UsageError(f"{where}: `{key}` must be {_KEYS[''][key]}, not {value!r}")
            continue
        if key not in _KEYS:
            tables = [f"[[{s}]]" if s == "tiers" else f"[{s}]" for s in _KEYS if s]
            known = [*sorted(_KEYS[""]), *tables]
            raise UsageError(f"{where}: unknown key `{key}`: expected one of {', '.join(known)}")
        tables = value if key == "tiers" else [value]
        if key == "tiers" and not isinstance(value, list):
            raise UsageError(f"{where}: `tiers` must be an array of tables ([[tiers]])")
        for table in tables:
            if not isinstance(table, dict):
                raise UsageError(f"{where}: `{key}` must be a table ([{key}])")
            for sub in table:
                if sub not in _KEYS[key]:
                    raise UsageError(
                        f"{where}: unknown key `{key}.{sub}`: expected one of "
                        f"{', '.join(sorted(_KEYS[key]))}"
                    )


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    section, key = dotted.split(".")
    table = data.get(section)
    return table.get(key) if isinstance(table, dict) else None


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: `{key}` is missing: expected {_KEYS[''][key]}")
    return value


def _date(data: Mapping[str, Any], where: str) -> str:
    value = data.get("date")
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None:
        raise UsageError(
            f"{where}: `date` is missing: expected the date the prices were read, as a TOML date (2026-12-04)"
        )
    raise UsageError(f"{where}: `date` must be a TOML date (2026-12-04, unquoted), not {value!r}")


def _num(
    table: Mapping[str, Any],
    key: str,
    where: str,
    section: str,
    *,
    default: float | None = None,
    positive: bool = False,
) -> float:
    value = table.get(key, default)
    expected = _KEYS[section][key]
    if value is None:
        raise UsageError(f"{where}: `{section}.{key}` is missing: expected {expected}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{where}: `{section}.{key}` must be {expected}, not {value!r}")
    if value < 0 or (positive and value == 0):
        raise UsageError(f"{where}: `{section}.{key}` = {value!r}: expected {expected}")
    return float(value)


def _steps(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    expected = _KEYS["memory"]["steps_mb"]
    if isinstance(value, dict):
        unknown = set(value) - {"min", "max", "step"}
        if unknown or not {"min", "max"} <= set(value):
            raise UsageError(f"{where}: `memory.steps_mb` must be {expected}, not {value!r}")
        lo, hi, step = value["min"], value["max"], value.get("step", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, step)) or not (
            0 < lo <= hi and step > 0
        ):
            raise UsageError(
                f"{where}: `memory.steps_mb` = {value!r}: expected whole MB with 0 < min <= max "
                "and step > 0"
            )
        return tuple(range(lo, hi + 1, step))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return tuple(sorted(set(value)))
    raise UsageError(f"{where}: `memory.steps_mb` must be {expected} (whole MB > 0), not {value!r}")


def _tiers(
    value: Any, where: str, meter: str, gb_second: float, has_vcpu: bool
) -> tuple[Tier, ...]:
    if value is None:
        return ()
    if meter == "cpu-time" or has_vcpu:
        raise UsageError(
            f"{where}: `tiers` price GB-seconds, so they need a meter with one GB-second "
            "price (no price.vcpu_second, not cpu-time)"
        )
    tiers: list[Tier] = []
    for i, table in enumerate(value):
        last = i == len(value) - 1
        up_to = table.get("up_to_gb_seconds")
        if up_to is None and not last:
            raise UsageError(
                f"{where}: `tiers` {i + 1} lacks `up_to_gb_seconds` (only the last tier may)"
            )
        if up_to is not None:
            up_to = _num(table, "up_to_gb_seconds", where, "tiers", positive=True)
            if (
                tiers
                and tiers[-1].up_to_gb_seconds is not None
                and up_to <= tiers[-1].up_to_gb_seconds
            ):
                raise UsageError(f"{where}: `tiers` {i + 1}: `up_to_gb_seconds` must increase")
        tiers.append(Tier(up_to, _num(table, "gb_second", where, "tiers")))
    if tiers and not math.isclose(tiers[0].gb_second, gb_second, rel_tol=1e-9):
        raise UsageError(
            f"{where}: the first of `tiers` must have the price of `price.gb_second` "
            f"({gb_second!r}), not {tiers[0].gb_second!r}"
        )
    return tuple(tiers)


# -- arithmetic -------------------------------------------------------------------------


def _columns(sheet: PriceSheet, **columns: ArrayLike) -> list[NDArray[np.float64]]:
    arrays: list[NDArray[np.float64]] = []
    for name, value in columns.items():
        try:
            arrays.append(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise UsageError(f"price sheet {sheet.name}: {name} must be numbers") from None
    try:
        out = [np.atleast_1d(a) for a in np.broadcast_arrays(*arrays)]
    except ValueError:
        sizes = ", ".join(f"{n} {np.shape(a)}" for n, a in zip(columns, arrays, strict=True))
        raise UsageError(
            f"price sheet {sheet.name}: the columns differ in length ({sizes})"
        ) from None
    for name, a in zip(columns, out, strict=True):
        if np.any(a < 0):
            raise UsageError(f"price sheet {sheet.name}: {name} has negative values")
    return out


def _rounded(
    values: NDArray[np.float64], rounding_ms: float, minimum_ms: float
) -> NDArray[np.float64]:
    """Seconds rounded up to whole ``rounding_ms``, at least ``minimum_ms``.

    The quotient is rounded to 1e-6 before ``ceil`` so that 0.028 s in 1 ms steps
    stays 28 ms (0.028 / 0.001 is 28.000000000000004 in binary)."""
    out = values
    if rounding_ms > 0:
        step = rounding_ms / 1000
        out = np.ceil(np.round(out / step, 6)) * step
    if minimum_ms > 0:
        out = np.maximum(out, minimum_ms / 1000)
    return out


def _tiered(units: float, tiers: tuple[Tier, ...]) -> float:
    total, below = 0.0, 0.0
    for tier in tiers:
        top = math.inf if tier.up_to_gb_seconds is None else tier.up_to_gb_seconds
        if units <= below:
            break
        total += (min(units, top) - below) * tier.gb_second
        below = top
    if units > below:  # past the last tier's ceiling: at the last price
        total += (units - below) * tiers[-1].gb_second
    return total


@cache
def _allowed(steps: tuple[int, ...]) -> NDArray[np.float64]:
    return np.asarray(steps, dtype=np.float64)


def _check_number(name: str, key: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise UsageError(f"price sheet {name}: {key} must be a number >= 0, not {value!r}")


def _describe_steps(steps: tuple[int, ...]) -> str:
    if not steps:
        return "no sizes"
    if len(steps) > 6:
        step = steps[1] - steps[0]
        if all(b - a == step for a, b in itertools.pairwise(steps)):
            return f"{steps[0]} to {steps[-1]} MB in steps of {step} MB"
    return "one of " + ", ".join(map(str, steps)) + " MB"
