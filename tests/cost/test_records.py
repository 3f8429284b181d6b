"""The usage table from real records: InvocationRecord objects, `run --report` files,
JSON lines, and the errors of bad files (each names the file and the line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cost.conftest import WORKLOAD
from wasmscope.cli import main
from wasmscope.cost.records import UsageTable, read_usage
from wasmscope.errors import UsageError
from wasmscope.runtime.record import InvocationRecord


def _jsonl(path: Path, records: list[InvocationRecord]) -> Path:
    path.write_text("".join(json.dumps(r.to_json(), default=str) + "\n" for r in records))
    return path


def test_from_records_has_one_row_per_invocation(records: list[InvocationRecord]) -> None:
    t = UsageTable.from_records(records)
    assert len(t) == len(WORKLOAD)
    assert list(t.function) == [f"work.wasm:{func}" for func, _, _ in WORKLOAD]
    assert list(t.outcome) == [r.outcome for r in records] and t.outcome[-1] == "trap"
    assert list(t.module) == [r.module.sha256 for r in records]
    for i, (func, n, pages) in enumerate(WORKLOAD):
        assert t.wall_s[i] == records[i].duration_seconds
        assert t.cpu_s[i] == records[i].cpu_seconds
        assert t.start_ns[i] == records[i].start_ns
        assert t.memory_limit[i] == 16 << 20
        if func == "work":  # the guest's arithmetic: 13 fuel an iteration, one a page grown
            assert n is not None and pages is not None
            assert t.fuel[i] == 13 * n + 8 + pages
            assert t.peak_memory[i] == (1 + pages) * 65536
    assert np.isnan(t.host_calls).all()  # not instrumented: unknown, not zero


def test_a_run_report_file_reads_as_one_row(work_wasm: Path, tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    assert main(["run", "--fuel", "1e6", "--invoke", "work", "--report", str(report), "-q", str(work_wasm), "500", "2"]) == 0
    t = read_usage(report)
    doc = json.loads(report.read_text())
    assert len(t) == 1 and t.function[0] == "work.wasm:work"
    assert t.fuel[0] == 13 * 500 + 8 + 2 == doc["fuel_consumed"]
    assert t.peak_memory[0] == 3 * 65536
    assert t.wall_s[0] == pytest.approx(doc["duration_seconds"], abs=1e-9)
    assert np.isnan(t.memory_limit[0])  # no --memory-limit: none configured


def test_json_lines_and_a_json_list_read_the_same(records: list[InvocationRecord], tmp_path: Path) -> None:
    lines = _jsonl(tmp_path / "runs.jsonl", records)
    listed = tmp_path / "runs.json"
    listed.write_text(json.dumps([r.to_json() for r in records], default=str, indent=2))
    a, b, direct = read_usage(lines), read_usage(listed), UsageTable.from_records(records)
    for t in (a, b):
        assert list(t.function) == list(direct.function)
        for col in ("wall_s", "cpu_s", "fuel", "peak_memory", "memory_limit", "start_ns"):
            np.testing.assert_array_equal(getattr(t, col), getattr(direct, col))


def test_serve_records_are_accounted_to_their_route(records: list[InvocationRecord]) -> None:
    r = records[0]
    r2 = InvocationRecord(r.invocation_id, r.module, r.entry, start_ns=r.start_ns, end_ns=r.end_ns,
                          attributes={"http.route": "/api/..."}, host_calls={"wasi.fd_write": 3})  # fmt: skip
    t = UsageTable.from_records([r2])
    assert t.function[0] == "/api/..." and t.host_calls[0] == 3


def test_only_where_and_concat(records: list[InvocationRecord]) -> None:
    t = UsageTable.from_records(records)
    boom = t.only("work.wasm:boom")
    assert len(boom) == 2 and set(boom.outcome) == {"trap"}
    assert len(t.only("nothing")) == 0
    both = UsageTable.concat([boom, t.where(t.fuel > 50_000)])
    names, codes = both.groups()
    assert list(names[codes]) == list(both.function)
    assert len(both) == 2 + int((t.fuel > 50_000).sum())
    assert len(UsageTable.concat([])) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"module": {"name": "a"}, "start_ns": 1, "end_ns": 2}\n{"module": {"name": "a"}, "start_ns": 1, "end_ns": 2}\nnot json\n',
         "runs.jsonl:3: not valid JSON"),
        ('{"start_ns": 1, "end_ns": 2}\n', "runs.jsonl:1: the record has no 'module' object"),
        ('{"module": {}, "start_ns": "x", "end_ns": 2}\n', "runs.jsonl:1: 'start_ns' and 'end_ns' must be integers"),
        ('{"module": {}, "start_ns": 5, "end_ns": 2}\n', "runs.jsonl:1: 'end_ns' (2) is before 'start_ns' (5)"),
        ('{"module": {}, "start_ns": 1, "end_ns": 2, "cpu_seconds": "fast"}\n', "runs.jsonl:1: 'cpu_seconds' is 'fast'"),
        ('[1, 2]\n', "runs.jsonl: record 1: expected a JSON object"),
        ('{\n  "module": \n', "runs.jsonl:3: not valid JSON"),
        ("", "runs.jsonl: the file is empty"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        read_usage(path)
    assert expected in str(info.value)


def test_unreadable_sources(tmp_path: Path) -> None:
    binary = tmp_path / "x.wasm"
    binary.write_bytes(b"\0asm\1\0\0\0\xff\xfe")
    for source, expected in [(binary, "not a text file"), (tmp_path / "missing.jsonl", "no such file"),
                             (tmp_path, "not a collect store folder")]:  # fmt: skip
        with pytest.raises(UsageError) as info:
            read_usage(source)
        assert expected in str(info.value) and str(source) in str(info.value)
