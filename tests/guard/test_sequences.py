"""stide over host-call sequences: normal runs match, a foreign call, a reordering,
an extra call at an edge are found and carried in the finding."""

from __future__ import annotations

import pytest

from wasmscope.errors import UsageError
from wasmscope.guard.findings import EventName, Severity
from wasmscope.guard.sequences import (
    END,
    MAX_REPORTED_CALLS,
    START,
    NgramDatabase,
    SequenceSettings,
    calls_of,
    sequence_finding,
    windows_of,
)
from wasmscope.runtime.host_calls import AuditLog, HostCall

NORMAL = [
    "args_sizes_get",
    "args_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "path_open",
    "fd_read",
    "fd_read",
    "fd_close",
    "fd_write",
    "proc_exit",
]


def _learned(*runs: list[str], window: int = 6) -> NgramDatabase:
    db = NgramDatabase(window)
    for run in runs:
        db.learn(run)
    return db


def test_windows_are_framed_by_start_and_end_markers() -> None:
    wins = windows_of(["a", "b", "c"], 3)
    assert wins == [(START, "a", "b"), ("a", "b", "c"), ("b", "c", END)]
    assert windows_of(["a"], 6) == [(START, "a", END)]  # shorter than a window: one window
    assert windows_of([], 6) == [(START, END)]


def test_a_learned_run_and_its_repeats_are_normal() -> None:
    db = _learned(NORMAL)
    check = db.check(NORMAL)
    assert (check.mismatches, check.locality_frame_count, check.spans) == (0, 0, [])
    assert check.windows == len(NORMAL) + 2 - 6 + 1
    assert sequence_finding(check, SequenceSettings()) is None


def test_runs_learned_with_other_lengths_make_the_lengths_between_normal() -> None:
    short = [*NORMAL[:6], *["fd_read"] * 7, *NORMAL[8:]]
    long = [*NORMAL[:6], *["fd_read"] * 12, *NORMAL[8:]]
    db = _learned(short, long)
    assert db.check([*NORMAL[:6], *["fd_read"] * 9, *NORMAL[8:]]).mismatches == 0


def test_a_foreign_call_in_the_middle_is_found_with_its_position() -> None:
    normal = [*NORMAL[:6], *["fd_read"] * 10, *NORMAL[8:]]
    db = _learned(normal)
    run = [*normal[:9], "environ_get", *normal[9:]]  # after the third fd_read
    check = db.check(run)
    assert check.mismatches == 6  # each window that holds the new call
    assert check.locality_frame_count == 6
    assert len(check.spans) == 1
    span = check.spans[0]
    assert "environ_get" in span.calls
    assert span.position <= 9 < span.position + span.length
    assert not span.at_start and not span.at_end

    finding = sequence_finding(check, SequenceSettings(), function="_start", baseline_runs=30)
    assert finding is not None
    assert (finding.name, finding.rule, finding.severity) == (
        EventName.ANOMALY,
        "anomaly.sequence",
        Severity.WARN,
    )
    assert finding.category == "sequence"
    assert "environ_get" in finding.details["foreign_calls"]
    assert finding.details["foreign_position"] == span.position
    assert finding.details["mismatches"] == 6
    assert finding.details["ngram_window"] == 6
    assert "environ_get" in (finding.target or "")


def test_a_reordering_of_known_calls_is_found() -> None:
    db = _learned(NORMAL)
    run = list(NORMAL)
    run[8], run[9] = run[9], run[8]  # write before close: each call is known, the order is not
    check = db.check(run)
    assert check.mismatches > 0
    assert set(check.spans[0].calls) <= set(NORMAL)


def test_an_extra_call_at_the_end_and_a_run_cut_short_are_found() -> None:
    db = _learned(NORMAL)
    extra = db.check([*NORMAL, "fd_write"])
    assert extra.mismatches > 0 and extra.spans[-1].at_end
    cut = db.check(NORMAL[:-3])
    assert cut.mismatches == 1 and cut.spans[0].at_end


def test_a_call_added_first_is_found_at_the_start() -> None:
    check = _learned(NORMAL).check(["clock_time_get", *NORMAL])
    assert check.spans[0].at_start and check.spans[0].position == 0
    assert check.spans[0].calls[0] == "clock_time_get"


def test_the_locality_frame_count_is_the_densest_frame() -> None:
    db = _learned(["a"] * 60, window=3)
    run = ["a"] * 60
    run[10] = "x"  # 3 foreign windows
    run[45] = "y"  # 3 more, far away
    check = db.check(run, frame=20)
    assert check.mismatches == 6
    assert check.locality_frame_count == 3
    assert len(check.spans) == 2
    assert [s.position for s in check.spans] == [8, 43]
    assert db.check(run, frame=100).locality_frame_count == 6

    settings = SequenceSettings(window=3, lfc_threshold=4)
    assert sequence_finding(check, settings) is None  # sparse: under the threshold
    dense = run[:]
    dense[12] = "z"
    assert sequence_finding(db.check(dense, frame=20), settings) is not None


def test_a_long_foreign_span_is_cut_in_the_finding() -> None:
    db = _learned(NORMAL)
    run = [*NORMAL[:5], *["clock_time_get"] * 500, *NORMAL[5:]]
    check = db.check(run)
    span = check.spans[0]
    assert span.truncated and len(span.calls) == MAX_REPORTED_CALLS
    assert span.length >= 500
    finding = sequence_finding(check, SequenceSettings())
    assert finding is not None and finding.details["foreign_length"] == span.length


def test_the_database_stops_growing_at_its_cap() -> None:
    db = NgramDatabase(2)
    new = db.learn([f"f{i}" for i in range(100)], max_ngrams=10)
    assert len(new) == 10 and len(db) == 10
    assert db.learn(["g1", "g2"], max_ngrams=10) == set()


@pytest.mark.parametrize(
    "settings",
    [
        {"window": 0},
        {"frame": 0},
        {"lfc_threshold": 0},
        {"max_ngrams": 0},
        {"warmup": -1},
    ],
)
def test_bad_settings_are_usage_errors(settings: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        SequenceSettings(**settings)
    with pytest.raises(UsageError):
        NgramDatabase(0)


def test_the_sequence_of_an_audit_log_is_its_recorded_calls_in_order() -> None:
    log = AuditLog(
        counts={"path_open": 1, "fd_read": 2},
        calls=[
            HostCall(0, "path_open", {"fd": 3}, 0, path="a.txt"),
            HostCall(1, "fd_read", {"fd": 4}, 0),
            HostCall(2, "fd_read", {"fd": 4}, 0),
        ],
    )
    assert calls_of(log) == ["path_open", "fd_read", "fd_read"]
    assert calls_of(AuditLog()) == []


def test_a_log_without_every_call_has_no_sequence() -> None:
    assert calls_of(None) is None
    assert calls_of(AuditLog(counts={"fd_write": 3})) is None  # count-only
    dropped = AuditLog(counts={"fd_read": 1}, calls=[HostCall(0, "fd_read", {}, 0)], dropped=4)
    assert calls_of(dropped) is None
