"""What a host-call audit is asked to do and what it records: the contract between
the audit pass and runtime (which record), and :mod:`wasmscope.guard` (which decides).

A guest run with :class:`AuditSettings` has each WASI preview 1 import it calls
routed through a thunk in the module (see ``wasmscope.instrument.wasi_audit``). The
thunk counts the call, and when ``record`` is on appends a :class:`HostCall` to a
ring the host reads; it applies each function's :class:`Action` and the
:class:`Budgets` itself, from tables the host writes into the module's audit memory
before the guest runs. Only ``Action.CHECK`` calls come back to Python (a
``check`` callback on the guest's thread), so that paths can be matched against
globs; every other decision is taken in Wasm.

The run's :class:`AuditLog` lands in ``InvocationRecord.audit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

__all__ = [
    "ERRNO_NOTCAPABLE", "Action", "AuditLog", "AuditSettings", "Budgets", "CallColumns", "HostCall",
    "RecordedCalls",
]  # fmt: skip

ERRNO_NOTCAPABLE = 76
"""WASI preview 1 ``errno::notcapable``: what a denied call returns, as a missing
capability would."""


class Action(IntEnum):
    """What the thunk does with one call of a function (values are the table bytes)."""

    ALLOW = 0  # call the import
    DENY = 1  # do not call it; return ``deny_errno`` (the guest sees a missing capability)
    KILL = 2  # trap the instance (``unreachable``)
    CHECK = 3  # ask ``AuditSettings.check`` first (path-bearing calls under path globs)


@dataclass(frozen=True, slots=True)
class Budgets:
    """Per-invocation ceilings the thunks keep; None is no ceiling. A call that would
    cross one gets ``AuditSettings.over_budget`` and is marked ``over_budget``."""

    host_calls: int | None = None  # WASI calls of any kind
    random_bytes: int | None = None  # sum of random_get buf_len
    output_bytes: int | None = None  # bytes written to fds 1 and 2 (fd_write iovec lengths)
    open_fds: int | None = None  # descriptors open at once (path_open/sock_accept minus fd_close)


@dataclass(slots=True)
class HostCall:
    """One WASI call as the guest made it.

    ``func`` is the preview 1 name (``path_open``). ``args`` maps each parameter
    name of the WASI signature to its value (integers as passed; pointers stay
    pointers). ``path`` is the path argument's bytes decoded as UTF-8 with
    surrogateescape (NUL bytes kept), cut at ``AuditSettings.max_path`` bytes
    (``path_truncated``); for fd_write/fd_pwrite, ``nbytes`` is the sum of the iovec
    lengths asked for, for random_get the bytes asked for. ``errno`` is the value
    the guest got (0 is success; None when the call trapped or the instance was
    killed). ``result`` is what the call wrote to its last out-pointer when it
    returned 0 (the opened fd, bytes written or read), else None. ``duration_ns`` is
    the wall time of the call where the module lets the thunk read a clock, else
    None. ``denied`` is True when the thunk did not call the import (DENY, a
    failed CHECK or a budget)."""

    seq: int
    func: str
    args: dict[str, int]
    errno: int | None
    result: int | None = None
    path: str | None = None
    path_truncated: bool = False
    nbytes: int | None = None
    duration_ns: int | None = None
    denied: bool = False
    over_budget: bool = False
    killed: bool = False


class RecordedCalls(Protocol):
    """Recorded calls not yet decoded (the audit's copy of its ring): an
    :class:`AuditLog` decodes them when first asked, so a run whose records nobody
    reads pays for one copy only."""

    def __len__(self) -> int: ...

    def columns(self) -> CallColumns:
        """Each record's function, flags and first argument, without decoding it."""
        ...

    def flagged(self) -> bool:
        """Whether any record has the denied, killed or over-budget flag."""
        ...

    def decode(self, indices: Iterable[int] | None = None) -> list[HostCall]:
        """The records at ``indices`` (None: all), in order."""
        ...


@dataclass(frozen=True, slots=True)
class CallColumns:
    """One entry per recorded call, in order: the function and its first argument (the
    descriptor of every ``fd_*`` call); ``flagged``: whether the thunk denied, killed
    or found over a budget any of them."""

    func: list[str]
    first_arg: Sequence[int | None]
    flagged: bool

    @classmethod
    def of(cls, calls: Sequence[HostCall]) -> CallColumns:
        return cls(
            [c.func for c in calls],
            [next(iter(c.args.values()), None) for c in calls],
            any(c.denied or c.over_budget or c.killed for c in calls),
        )


class AuditLog:
    """One invocation's host calls. ``counts`` is exact for every call the thunks saw
    (``func -> calls``), ``calls`` holds the recorded ones in order (empty in
    count-only mode); ``dropped`` is how many records the ring could not keep
    (counted, never silent); ``totals`` has the budgets' running sums at the end
    (``host_calls``, ``random_bytes``, ``output_bytes``, ``open_fds_peak``).

    ``records``: the recorded calls still undecoded (what an audited run gives);
    ``calls`` decodes them all on first use, :meth:`calls_at` only those asked for."""

    __slots__ = ("_calls", "_records", "counts", "dropped", "totals")

    def __init__(
        self,
        counts: dict[str, int] | None = None,
        calls: list[HostCall] | None = None,
        dropped: int = 0,
        totals: dict[str, int] | None = None,
        *,
        records: RecordedCalls | None = None,
    ) -> None:
        self.counts: dict[str, int] = {} if counts is None else counts
        self.dropped = dropped
        self.totals: dict[str, int] = {} if totals is None else totals
        self._calls = calls if calls is not None or records is not None else []
        self._records = records

    @property
    def calls(self) -> list[HostCall]:
        if self._calls is None:
            assert self._records is not None
            self._calls = self._records.decode()
        return self._calls

    @calls.setter
    def calls(self, calls: list[HostCall]) -> None:
        self._calls, self._records = calls, None

    @property
    def recorded(self) -> int:
        """How many calls were recorded (without decoding them)."""
        return len(self._calls) if self._calls is not None else len(self._records or ())

    def columns(self) -> CallColumns:
        if self._calls is None and self._records is not None:
            return self._records.columns()
        return CallColumns.of(self.calls)

    def flagged(self) -> bool:
        """Whether the thunks denied, killed or found over a budget any recorded call."""
        if self._calls is None and self._records is not None:
            return self._records.flagged()
        return any(c.denied or c.over_budget or c.killed for c in self.calls)

    def calls_at(self, indices: Sequence[int]) -> list[HostCall]:
        """The recorded calls at ``indices`` (ascending), decoding only those."""
        if self._calls is None and self._records is not None:
            return self._records.decode(indices)
        calls = self.calls
        return [calls[i] for i in indices]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuditLog):
            return NotImplemented
        return (self.counts, self.calls, self.dropped, self.totals) == (
            other.counts, other.calls, other.dropped, other.totals,
        )  # fmt: skip

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"AuditLog(counts={self.counts!r}, calls={self.calls!r}, dropped={self.dropped!r}, "
            f"totals={self.totals!r})"
        )


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """``record=False`` is count-only (no ring). ``actions`` by preview 1 function
    name (absent: ALLOW). ``check(call) -> bool`` decides CHECK calls (True: allow);
    it gets a HostCall with ``func``, ``args`` and ``path`` filled; a call it refuses
    gets ``check_refused`` (DENY, or KILL to trap the instance). ``ring_records``
    is the ring's size in records (a power of two); the host drains it while the
    guest runs, so only a burst faster than the drain drops records."""

    record: bool = True
    actions: Mapping[str, Action] = field(default_factory=dict)
    budgets: Budgets = Budgets()
    over_budget: Action = Action.DENY
    deny_errno: int = ERRNO_NOTCAPABLE
    check: Callable[[HostCall], bool] | None = None
    check_refused: Action = Action.DENY
    ring_records: int = 4096
    max_path: int = 256
