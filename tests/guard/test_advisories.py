"""The shipped wasmtime advisories: the list parses, is dated, and the versions inside
and outside the published ranges get the right findings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from wasmscope.errors import UsageError
from wasmscope.guard.advisories import (
    Advisory,
    Version,
    advisories_for,
    installed_wasmtime_version,
    load_advisories,
)
from wasmscope.guard.findings import EventName, Severity

SHIPPED = load_advisories()


def _ghsas(version: str) -> set[str]:
    return {f.details["ghsa"] for f in advisories_for(version)}


def test_the_list_is_dated_sourced_and_unique() -> None:
    assert SHIPPED.compiled == dt.date(2026, 12, 3)
    assert "rustsec/advisory-db" in SHIPPED.source
    ghsas = [a.ghsa for a in SHIPPED.advisories]
    assert len(ghsas) == len(set(ghsas)) >= 50
    for a in SHIPPED.advisories:
        assert a.url.endswith(a.ghsa) and a.url.startswith("https://github.com/")
        assert a.summary and a.patched and a.rustsec.startswith("RUSTSEC-")
        assert a.crate in ("wasmtime", "wasmtime-wasi")
        assert a.published <= SHIPPED.compiled


def test_the_version_in_use_has_no_published_advisory() -> None:
    assert advisories_for("50.0.1") == []
    assert installed_wasmtime_version() == "50.0.1"


@pytest.mark.parametrize(
    ("version", "ghsa", "affected"),
    [
        # CVE-2023-26489: patched >= 4.0.1 <5, >= 5.0.1 <6, >= 6.0.1
        ("6.0.0", "GHSA-ff4p-7xrq-q5r8", True),
        ("6.0.1", "GHSA-ff4p-7xrq-q5r8", False),
        ("5.0.0", "GHSA-ff4p-7xrq-q5r8", True),
        ("5.0.1", "GHSA-ff4p-7xrq-q5r8", False),
        # CVE-2024-51745: patched >= 24.0.2 <25, >= 25.0.3 <26, >= 26.0.1
        ("25.0.2", "GHSA-c2f5-jxjv-2hh8", True),
        ("25.0.3", "GHSA-c2f5-jxjv-2hh8", False),
        ("26.0.1", "GHSA-c2f5-jxjv-2hh8", False),
        # CVE-2025-53901 (fd_renumber): unaffected < 10.0.0
        ("9.0.0", "GHSA-fm79-3f68-h2fc", False),
        ("33.0.1", "GHSA-fm79-3f68-h2fc", True),
        ("34.0.2", "GHSA-fm79-3f68-h2fc", False),
        # CVE-2025-64345 (shared memory)
        ("38.0.3", "GHSA-hc7m-r6v8-hg9q", True),
        ("38.0.4", "GHSA-hc7m-r6v8-hg9q", False),
        ("36.0.3", "GHSA-hc7m-r6v8-hg9q", False),
        # the latest ones before 50: fixed in 48.0.4 and 49.0.2, none before 47
        ("49.0.1", "GHSA-cfhf-m2cr-62wj", True),
        ("49.0.2", "GHSA-cfhf-m2cr-62wj", False),
        ("46.0.9", "GHSA-cfhf-m2cr-62wj", False),
        # a pre-release of a fixed version is not that version
        ("49.0.2rc1", "GHSA-cfhf-m2cr-62wj", True),
        ("49.0.2+local", "GHSA-cfhf-m2cr-62wj", False),
    ],
)
def test_versions_inside_and_outside_the_ranges(version: str, ghsa: str, affected: bool) -> None:
    assert (ghsa in _ghsas(version)) is affected


def test_a_finding_names_the_advisory_and_the_release_that_fixes_it() -> None:
    (found,) = [f for f in advisories_for("6.0.0") if f.details["ghsa"] == "GHSA-ff4p-7xrq-q5r8"]
    assert (found.name, found.rule, found.severity, found.category) == (
        EventName.ADVISORY,
        "runtime.advisory",
        Severity.WARN,
        "runtime",
    )
    assert found.details["cve"] == "CVE-2023-26489"
    assert found.details["upgrade_to"] == "6.0.1"
    assert found.details["runtime_version"] == "6.0.0"
    assert found.target == "wasmtime 6.0.0"
    assert "CVE-2023-26489" in found.message and found.details["url"] in found.message
    # the next fix on the same line, not the newest release
    (line36,) = [f for f in advisories_for("36.0.5") if f.details["ghsa"] == "GHSA-jhxm-h53p-jm7w"]
    assert line36.details["upgrade_to"] == "36.0.7"


def test_findings_are_newest_first() -> None:
    dates = [f.details["published"] for f in advisories_for("1.0.0")]
    assert dates == sorted(dates, reverse=True) and len(dates) > 20


def test_requirements_and_versions() -> None:
    a = Advisory(
        ghsa="GHSA-test",
        cve="",
        rustsec="RUSTSEC-0000-0000",
        crate="wasmtime",
        published=dt.date(2026, 1, 1),
        summary="s",
        url="https://example.invalid/GHSA-test",
        patched=(">= 2.0.1, < 3.0.0", ">= 3.1.0"),
        unaffected=("< 1.5.0",),
    )
    assert [a.affects(v) for v in ("1.4.9", "1.5.0", "2.0.0", "2.0.1", "3.0.5", "3.1.0")] == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    assert [str(v) for v in a.fixed_versions] == ["2.0.1", "3.1.0"]
    assert str(a.fix_for("3.0.5")) == "3.1.0"
    assert a.fix_for("3.1.0") is None
    assert Version.parse("50") == Version(50, 0, 0)
    assert Version.parse("v50.0.1") == Version(50, 0, 1)
    assert Version.parse("50.0.1.dev0") < Version(50, 0, 1)
    for bad in ("", "abc", "1.2.3 4", "1.2.3!"):
        with pytest.raises(UsageError):
            Version.parse(bad)
    assert advisories_for("2.0.0", [a])[0].details["upgrade_to"] == "2.0.1"


def test_a_list_file_with_mistakes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    for text in (
        "not toml [",
        'source = "x"\n',  # no compiled date
        "compiled = 2026-01-01\n[[advisory]]\nghsa = 'G'\n",  # lacks fields
        "compiled = 2026-01-01\n[[advisory]]\nghsa = 'G'\npublished = 2026-01-01\n"
        "summary = 's'\nurl = 'u'\npatched = ['~> 1.0']\n",
    ):
        path.write_text(text)
        with pytest.raises(UsageError):
            load_advisories(path)
    path.write_text(
        "compiled = 2026-01-01\n[[advisory]]\nghsa = 'G'\npublished = 2026-01-01\n"
        "summary = 's'\nurl = 'u'\npatched = ['>= 1.0.0']\n"
    )
    (only,) = load_advisories(path).advisories
    assert only.affects("0.9.0") and not only.affects("1.0.0")
