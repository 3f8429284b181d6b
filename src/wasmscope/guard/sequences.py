"""Host-call sequence anomalies: stide (Forrest, Hofmeyr et al.), the database of
the n-grams of host calls seen in normal runs, and what a new run has that it lacks.

A run's host calls, in order (``path_open, fd_read, fd_read, fd_close...``), are cut
into overlapping windows of ``window`` calls (6 by default). The run is framed by a
start and an end marker, so that a call added first or last, or a run that stops
early, also makes a window never seen. Learning adds every window to the database;
checking counts the windows it lacks (the mismatches) and the locality frame count,
the largest number of mismatches among any ``frame`` consecutive windows (Hofmeyr's
measure of how clustered they are). A run with ``lfc_threshold`` or more raises one
:class:`~wasmscope.guard.findings.Finding` carrying the foreign calls themselves.

The database only grows with behaviour the module has: a module makes a bounded set
of distinct windows, so the set is bounded by the module, and ``max_ngrams`` caps it
for a module that does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wasmscope.errors import UsageError
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity

if TYPE_CHECKING:
    from wasmscope.runtime.host_calls import AuditLog

__all__ = [
    "DEFAULT_WINDOW",
    "END",
    "START",
    "ForeignSpan",
    "NgramDatabase",
    "SequenceCheck",
    "SequenceSettings",
    "calls_of",
    "sequence_finding",
]

DEFAULT_WINDOW = 6
START = "<start>"
END = "<end>"
MAX_REPORTED_CALLS = 32  # the calls a finding carries per foreign span
MAX_REPORTED_SPANS = 8

Ngram = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SequenceSettings:
    """``window`` calls per n-gram; ``frame`` windows per locality frame; a run is
    reported when its locality frame count reaches ``lfc_threshold``; nothing is
    reported before ``warmup`` runs were learned for the function."""

    window: int = DEFAULT_WINDOW
    frame: int = 20
    lfc_threshold: int = 1
    warmup: int = 30
    max_ngrams: int = 100_000

    def __post_init__(self) -> None:
        for name in ("window", "frame", "lfc_threshold", "max_ngrams"):
            if getattr(self, name) < 1:
                raise UsageError(f"sequence {name} must be at least 1, not {getattr(self, name)}")
        if self.warmup < 0:
            raise UsageError(f"sequence warmup must be 0 or more, not {self.warmup}")


@dataclass(frozen=True, slots=True)
class ForeignSpan:
    """Calls of the run covered by adjacent foreign windows. ``position`` is the index
    of the first call in the run (0-based); ``calls`` stops at MAX_REPORTED_CALLS
    (``truncated``); ``at_start`` / ``at_end`` say the span touches the run's edge."""

    position: int
    calls: tuple[str, ...]
    length: int
    at_start: bool = False
    at_end: bool = False

    @property
    def truncated(self) -> bool:
        return self.length > len(self.calls)


@dataclass(frozen=True, slots=True)
class SequenceCheck:
    """What stide found in one run: ``mismatches`` of ``windows`` windows were not in
    the database; ``locality_frame_count`` is the most in any frame."""

    windows: int
    mismatches: int
    locality_frame_count: int
    spans: list[ForeignSpan] = field(default_factory=list)


def _framed(sequence: Sequence[str]) -> list[str]:
    return [START, *sequence, END]


def windows_of(sequence: Sequence[str], window: int) -> list[Ngram]:
    """The framed run's windows; a run shorter than the window is one window."""
    framed = _framed(sequence)
    if len(framed) <= window:
        return [tuple(framed)]
    return [tuple(framed[i : i + window]) for i in range(len(framed) - window + 1)]


class NgramDatabase:
    """The set of windows seen in normal runs of one function of one module."""

    def __init__(self, window: int = DEFAULT_WINDOW, ngrams: Iterable[Ngram] = ()) -> None:
        if window < 1:
            raise UsageError(f"the n-gram window must be at least 1 call, not {window}")
        self.window = window
        self.ngrams: set[Ngram] = set(ngrams)

    def __len__(self) -> int:
        return len(self.ngrams)

    def __contains__(self, ngram: object) -> bool:
        return ngram in self.ngrams

    def new_ngrams(self, sequence: Sequence[str]) -> set[Ngram]:
        """The run's windows this database lacks (what learning it would add)."""
        return {w for w in windows_of(sequence, self.window) if w not in self.ngrams}

    def learn(self, sequence: Sequence[str], max_ngrams: int | None = None) -> set[Ngram]:
        """Adds the run's windows; returns the ones that were new. With ``max_ngrams``,
        stops adding at that size (the rest of the run's new windows are not kept)."""
        new = self.new_ngrams(sequence)
        if max_ngrams is not None:
            room = max(0, max_ngrams - len(self.ngrams))
            new = set(sorted(new)[:room])
        self.ngrams |= new
        return new

    def check(self, sequence: Sequence[str], frame: int = 20) -> SequenceCheck:
        """Mismatches, locality frame count and the foreign spans of one run."""
        wins = windows_of(sequence, self.window)
        foreign = [i for i, w in enumerate(wins) if w not in self.ngrams]
        return SequenceCheck(
            windows=len(wins),
            mismatches=len(foreign),
            locality_frame_count=_locality_frame_count(foreign, frame),
            spans=_spans(sequence, foreign, self.window),
        )


def _locality_frame_count(foreign: list[int], frame: int) -> int:
    """The most foreign window indices within any ``frame`` consecutive windows."""
    best = 0
    lo = 0
    for hi, index in enumerate(foreign):
        while index - foreign[lo] >= frame:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _spans(sequence: Sequence[str], foreign: list[int], window: int) -> list[ForeignSpan]:
    """Merges overlapping foreign windows into spans of the run's own calls."""
    framed_len = len(sequence) + 2
    merged: list[list[int]] = []  # [start, end) in framed coordinates
    for i in foreign:
        end = min(i + window, framed_len)
        if merged and i < merged[-1][1]:
            merged[-1][1] = end
        else:
            merged.append([i, end])
    spans = []
    for start, end in merged:
        first = max(start - 1, 0)  # the start marker is framed index 0
        last = min(end - 1, len(sequence))
        calls = tuple(sequence[first : min(last, first + MAX_REPORTED_CALLS)])
        spans.append(
            ForeignSpan(
                position=first,
                calls=calls,
                length=last - first,
                at_start=start == 0,
                at_end=end == framed_len,
            )
        )
    return spans


def sequence_finding(
    check: SequenceCheck,
    settings: SequenceSettings,
    *,
    function: str = "",
    baseline_runs: int = 0,
) -> Finding | None:
    """The finding for a run whose locality frame count reaches the threshold."""
    if check.mismatches == 0 or check.locality_frame_count < settings.lfc_threshold:
        return None
    first = check.spans[0]
    shown = " ".join(first.calls) or "(no calls)"
    edge = (
        " (the start of the run)"
        if first.at_start
        else " (the end of the run)"
        if first.at_end
        else ""
    )
    more = f" ({len(check.spans)} foreign spans in all)" if len(check.spans) > 1 else ""
    spans = check.spans[:MAX_REPORTED_SPANS]
    return Finding(
        name=EventName.ANOMALY,
        rule="anomaly.sequence",
        severity=Severity.WARN,
        message=(
            f"host calls never seen in normal runs of {function or 'the module'}: "
            f"{shown} at call {first.position}{edge}; {check.mismatches} of "
            f"{check.windows} windows of {settings.window} are foreign{more}"
        ),
        category="sequence",
        outcome=Outcome.ALLOWED,
        target=shown,
        details={
            "function": function,
            "foreign_calls": list(first.calls),
            "foreign_position": first.position,
            "foreign_length": first.length,
            "foreign_positions": [s.position for s in spans],
            "foreign_spans": len(check.spans),
            "mismatches": check.mismatches,
            "windows": check.windows,
            "locality_frame_count": check.locality_frame_count,
            "locality_frame": settings.frame,
            "ngram_window": settings.window,
            "baseline_runs": baseline_runs,
        },
    )


def calls_of(audit: AuditLog | None) -> list[str] | None:
    """A run's host-call sequence from its audit log (the recorded calls, in order),
    or None when the log does not hold all of them (no log, a count-only audit, or
    records the ring dropped): a partial sequence would look foreign."""
    if audit is None or audit.dropped or len(audit.calls) != audit.total:
        return None
    return [call.func for call in audit.calls]
