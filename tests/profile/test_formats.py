"""The profile's formats: speedscope JSON, folded stacks, pprof (decoded back with a
tiny protobuf reader), and the flame graph SVG (well-formed, one rect per frame)."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wasmscope
from wasmscope.profile import LOST, Profile
from wasmscope.runtime import Runtime

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def real(prt: Runtime, progs: dict[str, Path]) -> Profile:
    _, prof = wasmscope.profile(progs["share"], ["8000"], runtime=prt)
    assert prof.sampled > 20
    return prof


def synthetic() -> Profile:
    return Profile(
        module="m.wasm", sha256="ab" * 32, names=["env.log", "main", "f;g <&>", "h"], n_imported=1,
        counts=[2, 1, 7, 3], samples={(1, 2): 5, (1, 2, 3): 3, (1, 3, 0): 2, (LOST, 3): 1},
        duration_ns=11_000_000, rate=1000.0, start_unix_ns=1_700_000_000_000_000_000,
    )  # fmt: skip


# -- speedscope ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_speedscope_schema_basics(which: str, request: pytest.FixtureRequest) -> None:
    prof = synthetic() if which == "synthetic" else request.getfixturevalue("real")
    doc = json.loads(prof.dumps("speedscope"))
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert all(isinstance(f["name"], str) for f in frames)
    (p,) = doc["profiles"]
    assert p["type"] == "sampled" and p["unit"] == "nanoseconds"
    assert len(p["samples"]) == len(p["weights"]) == len(prof.samples)
    assert all(0 <= i < len(frames) for s in p["samples"] for i in s)
    assert p["endValue"] == sum(p["weights"]) and p["startValue"] == 0
    assert doc["activeProfileIndex"] == 0
    # every stack is there, outermost first, with its weight
    got = {tuple(frames[i]["name"] for i in s): w for s, w in zip(p["samples"], p["weights"], strict=True)}
    for stack, n in prof.samples.items():
        assert got[tuple(prof.name(i) for i in stack)] == round(n * prof.interval_ns)


# -- folded stacks ------------------------------------------------------------------------------


def test_collapsed_lines_parse() -> None:
    prof = synthetic()
    lines = prof.to_collapsed().splitlines()
    parsed = {}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        parsed[stack] = int(count)
    assert parsed == {
        "main;f:g <&>": 5,
        "main;f:g <&>;h": 3,
        "main;h;env.log": 2,
        "[outer frames lost];h": 1,
    }
    assert sum(parsed.values()) == prof.sampled


def test_collapsed_of_a_real_run(real: Profile) -> None:
    total = 0
    for line in real.to_collapsed().splitlines():
        stack, _, count = line.rpartition(" ")
        assert stack and ";" in stack and int(count) > 0
        total += int(count)
    assert total == real.sampled


# -- pprof --------------------------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): varints as int, length-delimited as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            n, pos = _varint(data, pos)
            value, pos = data[pos : pos + n], pos + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        yield field, wire, value


def _packed(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        v, pos = _varint(data, pos)
        out.append(v)
    return out


def _message(data: bytes) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for field, _, value in _fields(data):
        out.setdefault(field, []).append(value)
    return out


def decode_pprof(blob: bytes) -> dict[str, Any]:
    prof = _message(gzip.decompress(blob))
    strings = [s.decode() for s in prof[6]]
    assert strings[0] == ""

    def vt(raw: bytes) -> tuple[str, str]:
        m = _message(raw)
        return strings[m.get(1, [0])[0]], strings[m.get(2, [0])[0]]

    functions = {}
    for raw in prof[5]:
        m = _message(raw)
        functions[m[1][0]] = strings[m[2][0]]
    locations = {}
    for raw in prof[4]:
        m = _message(raw)
        (line,) = m[4]
        locations[m[1][0]] = functions[_message(line)[1][0]]
    samples = []
    for raw in prof[2]:
        m = _message(raw)
        ids = _packed(m[1][0])
        values = _packed(m[2][0])
        samples.append((tuple(locations[i] for i in reversed(ids)), values))
    mapping = _message(prof[3][0])
    return {
        "sample_types": [vt(r) for r in prof[1]],
        "samples": samples,
        "period_type": vt(prof[11][0]),
        "period": prof[12][0],
        "time_nanos": prof.get(9, [0])[0],
        "duration_nanos": prof.get(10, [0])[0],
        "mapping_file": strings[mapping[5][0]],
        "build_id": strings[mapping[6][0]],
        "default_sample_type": strings[prof[14][0]],
    }


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_pprof_decodes_back(which: str, request: pytest.FixtureRequest) -> None:
    prof = synthetic() if which == "synthetic" else request.getfixturevalue("real")
    doc = decode_pprof(prof.to_pprof())
    assert doc["sample_types"] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert doc["period_type"] == ("cpu", "nanoseconds")
    assert doc["period"] == round(prof.interval_ns)
    assert doc["default_sample_type"] == "cpu"
    assert doc["mapping_file"] == prof.module and doc["build_id"] == prof.sha256
    assert doc["duration_nanos"] == prof.duration_ns and doc["time_nanos"] == prof.start_unix_ns
    got = {stack: values for stack, values in doc["samples"]}
    assert len(got) == len(prof.samples)
    for stack, n in prof.samples.items():
        assert got[tuple(prof.name(i) for i in stack)] == [n, round(n * prof.interval_ns)]


# -- flame graph ----------------------------------------------------------------------------------


def _prefixes(prof: Profile) -> int:
    return len({stack[:k] for stack in prof.samples for k in range(1, len(stack) + 1)}) + 1  # + the root


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_svg_is_well_formed_with_one_rect_per_frame(which: str, request: pytest.FixtureRequest) -> None:
    prof = synthetic() if which == "synthetic" else request.getfixturevalue("real")
    svg = prof.to_svg(min_width=0)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox")
    frames = root.findall(f"{SVG}g")
    assert len(frames) == len(root.findall(f".//{SVG}rect")) == _prefixes(prof) == prof.flame_tree().nodes()
    titles = [g.findtext(f"{SVG}title") or "" for g in frames]
    assert any(t.startswith("all: ") for t in titles)
    widths = {t.split(":")[0]: float(g.find(f"{SVG}rect").get("width", "0")) for t, g in zip(titles, frames, strict=True)}  # type: ignore[union-attr]
    if which == "synthetic":
        assert "f;g <&>: 8 samples (72.73%), 7 calls in the run" in titles  # escaped in the file, whole here
        assert widths["main"] > widths["f;g <&>"] > widths["h"] > 0


def test_svg_drops_frames_narrower_than_min_width() -> None:
    prof = synthetic()
    prof.samples[(1, 2)] = 100_000  # everything else is now far below a pixel
    root = ET.fromstring(prof.to_svg())
    names = {(g.findtext(f"{SVG}title") or "").split(":")[0] for g in root.findall(f"{SVG}g")}
    assert names == {"all", "main", "f;g <&>"}


def test_dumps_knows_its_formats() -> None:
    prof = synthetic()
    assert prof.dumps("collapsed").decode() == prof.to_collapsed()
    assert gzip.decompress(prof.dumps("pprof"))
    with pytest.raises(ValueError):
        prof.dumps("svg")
