"""How well the detectors separate normal from not: five synthetic modules with varied
input, 50 learned runs each, then 200 more normal runs each with zero alerts, and ten
variants that each add one behaviour, at least nine of them found.

The runs are synthetic (no wasmtime): each module reads its input files in chunks,
writes output in proportion, and its fuel, memory, duration and CPU follow the input
size with noise, the way a real guest's do. Seeds are fixed; no clock is read.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from wasmscope.guard.baseline import Baseline
from wasmscope.guard.findings import Finding, Severity
from wasmscope.guard.resources import CPU, DURATION, FUEL, HOST_CALLS, MEMORY, OUTPUT

LEARNED = 50
CHECKED = 200


@dataclass(frozen=True)
class Module:
    """What one synthetic guest does per run."""

    name: str
    files: int  # input files it reads
    chunk: int  # bytes per fd_read
    reads_env: bool
    uses_clock: bool
    uses_random: bool
    fuel_per_byte: float
    base_pages: int

    @property
    def sha256(self) -> str:
        return (self.name.encode().hex() * 64)[:64]


MODULES = [
    Module("resize", 1, 4096, False, True, False, 35.0, 17),
    Module("json-filter", 2, 8192, True, False, False, 12.0, 20),
    Module("hasher", 1, 65536, False, False, True, 4.0, 18),
    Module("templater", 3, 4096, True, True, False, 20.0, 24),
    Module("markdown", 2, 16384, False, True, True, 9.0, 33),
]


@dataclass
class Run:
    sequence: list[str]
    figures: dict[str, float]


def _run(m: Module, rnd: random.Random) -> Run:
    """One normal run on a random input (5 to 12 chunks per file, so each repeated
    group is longer than the n-gram window)."""
    sizes = [rnd.randint(5 * m.chunk, 12 * m.chunk - 1) for _ in range(m.files)]
    total = sum(sizes)
    seq = ["args_sizes_get", "args_get"]
    if m.reads_env:
        seq += ["environ_sizes_get", "environ_get"]
    seq += ["fd_prestat_get", "fd_prestat_dir_name", "fd_prestat_get"]
    if m.uses_clock:
        seq.append("clock_time_get")
    if m.uses_random:
        seq.append("random_get")
    for size in sizes:
        seq += ["path_open", "fd_filestat_get"]
        seq += ["fd_read"] * (math.ceil(size / m.chunk) + 1)  # the last one reads 0 bytes
        seq.append("fd_close")
    output = total // 3 + rnd.randint(0, 200)
    seq += ["fd_write"] * max(5, math.ceil(output / 4096))
    if m.uses_clock:
        seq.append("clock_time_get")
    seq.append("proc_exit")
    fuel = 150_000 + m.fuel_per_byte * total
    duration = fuel / 4e8 * rnd.lognormvariate(0, 0.08) + 0.0004 * rnd.random()
    figures = {
        FUEL: fuel,
        MEMORY: 65536.0 * (m.base_pages + total // 65536),
        DURATION: duration,
        CPU: duration * rnd.uniform(0.85, 1.0),
        OUTPUT: float(output),
        HOST_CALLS: float(len(seq)),
        **{f"{HOST_CALLS}.{k}": float(v) for k, v in Counter(seq).items()},
    }
    if m.uses_random:
        figures["random_bytes"] = 32.0
    return Run(seq, figures)


def _learned(path: Path, seed: int = 13) -> tuple[Baseline, random.Random]:
    rnd = random.Random(seed)
    b = Baseline.open(path)
    for m in MODULES:
        for _ in range(LEARNED):
            run = _run(m, rnd)
            b.add_run(m.sha256, m.name, "_start", "", run.sequence, run.figures, {"m": m.name})
    return b, rnd


def _alerts(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity >= Severity.WARN]


@pytest.mark.parametrize("learn", [False, True], ids=["detect", "learn-while-detecting"])
def test_normal_runs_raise_no_alert(tmp_path: Path, learn: bool) -> None:
    b, rnd = _learned(tmp_path / "g.db")
    with b:
        noisy: list[str] = []
        for m in MODULES:
            for _ in range(CHECKED):
                run = _run(m, rnd)
                found = b.detect(m.sha256, "_start", "", run.sequence, run.figures, learn=learn)
                noisy += [f"{m.name}: {f.message}" for f in found]
        assert noisy == []  # not one alert, nor an INFO drift note


# Each variant changes one behaviour of a normal run.
def _extra_env_read(r: Run) -> None:
    i = r.sequence.index("path_open")
    r.sequence[i:i] = ["environ_get"]


def _new_file(r: Run) -> None:
    i = len(r.sequence) - r.sequence[::-1].index("fd_close")
    r.sequence[i:i] = ["path_open", "fd_filestat_get", "fd_read", "fd_read", "fd_close"]


def _twice_the_fuel(r: Run) -> None:
    r.figures[FUEL] *= 2


def _four_times_the_memory(r: Run) -> None:
    r.figures[MEMORY] *= 4


def _output_burst(r: Run) -> None:
    r.figures[OUTPUT] *= 50
    r.figures[f"{HOST_CALLS}.fd_write"] *= 50


def _reordered(r: Run) -> None:
    writes = [c for c in r.sequence if c == "fd_write"]
    rest = [c for c in r.sequence if c != "fd_write"]
    i = rest.index("path_open")
    r.sequence[:] = [*rest[:i], *writes, *rest[i:]]


def _clock_loop(r: Run) -> None:
    i = r.sequence.index("fd_close")
    r.sequence[i:i] = ["clock_time_get"] * 300


def _huge_random(r: Run) -> None:
    r.figures["random_bytes"] = 64.0 * 1024 * 1024


def _long_sleep(r: Run) -> None:
    r.figures[DURATION] *= 10  # wall time only: the CPU did not spend it


def _descriptor_exhaustion(r: Run) -> None:
    i = r.sequence.index("fd_close")
    r.sequence[i:i] = ["path_open"] * 200


VARIANTS: list[tuple[str, str, Callable[[Run], None], str]] = [
    ("an extra variable read", "json-filter", _extra_env_read, "anomaly.sequence"),
    ("a new file", "resize", _new_file, "anomaly.sequence"),
    ("twice the fuel", "templater", _twice_the_fuel, "anomaly.fuel"),
    ("four times the memory", "markdown", _four_times_the_memory, "anomaly.memory"),
    ("an output burst", "json-filter", _output_burst, "anomaly.output"),
    ("reordered calls", "hasher", _reordered, "anomaly.sequence"),
    ("a tight clock loop", "templater", _clock_loop, "anomaly.sequence"),
    ("a huge random_get", "hasher", _huge_random, "anomaly.resource"),
    ("a long sleep", "resize", _long_sleep, "anomaly.duration"),
    ("descriptor exhaustion", "markdown", _descriptor_exhaustion, "anomaly.sequence"),
]


def test_ten_one_behaviour_variants_are_found(tmp_path: Path) -> None:
    b, rnd = _learned(tmp_path / "g.db")
    by_name = {m.name: m for m in MODULES}
    found: dict[str, set[str]] = {}
    with b:
        for label, module, change, _ in VARIANTS:
            m = by_name[module]
            run = _run(m, rnd)
            change(run)
            alerts = _alerts(b.detect(m.sha256, "_start", "", run.sequence, run.figures))
            found[label] = {f.rule for f in alerts}
    detected = [label for label, _, _, rule in VARIANTS if rule in found[label]]
    assert len(detected) >= 9, found
