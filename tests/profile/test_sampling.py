"""Sampled profiles agree with reality, and the sampler copes with torn reads.

Never a wall-clock assertion: shares of samples only, against exact counts."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

import wasmscope
from wasmscope.errors import UsageError
from wasmscope.instrument import CountersLayout
from wasmscope.profile import LOST, Profile, Sampler
from wasmscope.runtime import Runtime
from wasmscope.runtime.guest_counters import GuestCounters

TOLERANCE = 7.0  # percentage points


def _share(prof: Profile) -> tuple[float, float]:
    """(a's share of the samples in a or b, a's share of the calls), in percent."""
    selfs = prof.self_samples()
    index = {name: i for i, name in enumerate(prof.names)}
    sa, sb = selfs.get(index["a"], 0), selfs.get(index["b"], 0)
    ca, cb = prof.calls["a"], prof.calls["b"]
    assert sa + sb >= 200, f"too few samples: {sa + sb}"
    return 100.0 * sa / (sa + sb), 100.0 * ca / (ca + cb)


@pytest.mark.parametrize("mode", ["thread", "epoch"])
def test_sampled_share_matches_the_exact_ratio(prt: Runtime, progs: dict[str, Path], mode: str) -> None:
    # a and b do the same work per call and a is called 3 times for each b: a has
    # 75% of the time in a or b. ~0.5 s of work, ~500 samples at 1 kHz.
    rec, prof = wasmscope.profile(progs["share"], ["30000"], runtime=prt, mode=mode)
    assert rec.outcome == "ok"
    assert prof.calls["a"] == 90000 and prof.calls["b"] == 30000
    sampled, truth = _share(prof)
    assert truth == 75.0
    assert abs(sampled - truth) <= TOLERANCE, (sampled, prof.samples)
    # nearly every sample is in a or b (main's loop is a few instructions per call)
    top = prof.top(2)
    assert {r.name for r in top} == {"a", "b"}
    assert top[0].self_pct + top[1].self_pct > 90
    assert prof.bad_samples <= prof.sampled // 20


def test_total_counts_a_recursive_function_once_per_sample() -> None:
    prof = Profile(
        module="m", sha256="0" * 64, names=["main", "f", "g"], n_imported=0, counts=[1, 10, 5],
        samples={(0, 1, 1, 1): 3, (0, 1, 2): 1, (0,): 1}, duration_ns=5_000_000, rate=1000.0,
    )  # fmt: skip
    rows = {r.name: r for r in prof.top(10)}
    assert rows["f"].self_samples == 3 and rows["f"].total_samples == 4
    assert rows["f"].total_pct == pytest.approx(80.0)
    assert rows["main"].total_pct == pytest.approx(100.0)
    assert rows["g"].self_pct == pytest.approx(20.0)
    assert prof.top(1)[0].name == "f"


def test_rate_and_mode_are_checked() -> None:
    with pytest.raises(UsageError):
        Sampler(0)
    with pytest.raises(UsageError):
        Sampler(1000, mode="signal")


# -- torn reads, on books we write ourselves ---------------------------------------------------


def _books(capacity: int = 8, n_functions: int = 4) -> tuple[GuestCounters, ctypes.Array[ctypes.c_ubyte]]:
    layout = CountersLayout(
        memory_export="wasmscope:books", depth_offset=0, stack_offset=64, stack_capacity=capacity,
        counters_offset=64 + 4 * capacity, n_functions=n_functions, n_imported_functions=1,
        memory_index=1, pages=1,
    )  # fmt: skip
    buf = (ctypes.c_ubyte * layout.size)()
    return GuestCounters(layout, ctypes.addressof(buf), names=["env.f", "a", "b", "c"]), buf


def ticked(books: GuestCounters) -> tuple[Sampler, Callable[[], None]]:
    """A sampler in epoch mode started on ``books``, and its tick: each call is one
    sample, as at an epoch tick of a run. These books have no engine, so the sampler's
    own thread has nothing to tick and only the test takes samples."""
    s = Sampler(1000, mode="epoch")
    s.attach(books)
    s.start()
    assert s.tick is not None
    return s, s.tick


def _set(buf: ctypes.Array[ctypes.c_ubyte], depth: int, entries: list[int], capacity: int = 8) -> None:
    struct.pack_into("<I", buf, 0, depth)
    for i, f in enumerate(entries):
        struct.pack_into("<I", buf, 64 + 4 * (i % capacity), f)


def test_reader_counts_keeps_and_drops() -> None:
    books, buf = _books()
    s, read = ticked(books)
    _set(buf, 0, [])
    read()  # between calls
    _set(buf, 3, [1, 2, 0])
    read()
    read()
    _set(buf, 2, [1, 9])  # an entry that is no function: a torn read
    read()
    struct.pack_into("<I", buf, 0, 0xFFFF_FFF0)  # a depth that is no depth
    read()
    s.stop()
    assert s.samples == {(1, 2, 0): 2}
    assert (s.total, s.empty, s.bad, s.lost) == (3, 1, 2, 0)


def test_reader_marks_frames_lost_past_the_ring() -> None:
    books, buf = _books(capacity=8)
    s, read = ticked(books)
    # 11 frames pushed: 1, then 2 x 9, then 3; the ring keeps the innermost 8
    pushed = [1] + [2] * 9 + [3]
    _set(buf, len(pushed), pushed)
    read()
    s.stop()
    assert s.samples == {(LOST, *pushed[-8:]): 1}
    assert s.lost == 1
    books.close()


def test_reader_appends_the_running_leaf() -> None:
    layout = CountersLayout(
        memory_export="wasmscope:books", depth_offset=0, stack_offset=64, stack_capacity=8,
        counters_offset=96, n_functions=4, n_imported_functions=1, memory_index=1, pages=1, slots_offset=4, slots=3,
    )  # fmt: skip
    buf = (ctypes.c_ubyte * layout.size)()
    books = GuestCounters(layout, ctypes.addressof(buf), names=["env.f", "a", "b", "c"])
    s, read = ticked(books)
    _set(buf, 2, [1, 2])
    struct.pack_into("<I", buf, 4, 3 + 1)  # leaf c runs, called from b
    read()
    _set(buf, 0, [])
    read()  # a leaf called by the host: depth 0, the leaf alone
    struct.pack_into("<I", buf, 4, 0)
    read()  # between calls
    struct.pack_into("<I", buf, 4, 9)  # no function: a torn read
    read()
    s.stop()
    assert s.samples == {(1, 2, 3): 1, (3,): 1}
    assert (s.total, s.empty, s.bad) == (3, 1, 1)
    books.reset()
    assert books.stack() == [] and layout.read_slots(buf) == []
    books.close()
