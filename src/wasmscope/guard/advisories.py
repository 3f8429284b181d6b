"""Published Wasmtime security advisories, and which of them the wasmtime in use has.

The list ships with wasmscope (``guard/data/wasmtime-advisories.toml``, dated, with
where it was compiled from). Each advisory gives RustSec's ``patched`` and
``unaffected`` version requirements; a version in neither is affected.
:func:`advisories_for` turns the ones that apply into ``wasm.runtime.advisory``
findings naming the smallest release that fixes each.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from wasmscope.errors import UsageError
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity

__all__ = [
    "Advisory",
    "AdvisoryList",
    "Version",
    "advisories_for",
    "installed_wasmtime_version",
    "load_advisories",
]

DATA_FILE = "wasmtime-advisories.toml"

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)$")
_COMPARATOR = re.compile(r"^\s*(>=|<=|==|=|>|<)?\s*(\S+)\s*$")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """``major.minor.patch``; a pre-release (``50.0.1rc1``, ``50.0.1-dev``) sorts
    before its release, so it never counts as patched by that release."""

    major: int
    minor: int
    patch: int
    release: bool = True

    @classmethod
    def parse(cls, text: str) -> Version:
        found = _VERSION.match(text.strip()) if isinstance(text, str) else None
        if found is None:
            raise UsageError(f"not a version: {text!r} (expected major.minor.patch)")
        major, minor, patch, rest = found.groups()
        if rest and not re.match(r"^(?:[-.+]|[A-Za-z])[0-9A-Za-z.+-]*$", rest):
            raise UsageError(f"not a version: {text!r} (expected major.minor.patch)")
        # Build metadata (+local) does not make a pre-release; anything else does.
        release = not rest or rest.startswith("+")
        return cls(int(major), int(minor or 0), int(patch or 0), release)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + ("" if self.release else "-pre")


def _matches(version: Version, requirement: str) -> bool:
    """A requirement is comparators joined by commas, all of which must hold."""
    for part in requirement.split(","):
        found = _COMPARATOR.match(part)
        if found is None:
            raise UsageError(f"not a version requirement: {requirement!r}")
        op, bound_text = found.groups()
        bound = Version.parse(bound_text)
        if op == ">=":
            ok = version >= bound
        elif op == ">":
            ok = version > bound
        elif op == "<=":
            ok = version <= bound
        elif op == "<":
            ok = version < bound
        else:
            ok = version == bound
        if not ok:
            return False
    return True


def _lower_bound(requirement: str) -> Version | None:
    found = re.search(r">=\s*(\S+?)(?:,|$)", requirement)
    return Version.parse(found.group(1)) if found else None


@dataclass(frozen=True, slots=True)
class Advisory:
    """One published advisory (a GHSA, its CVE when it has one, its RustSec id)."""

    ghsa: str
    cve: str
    rustsec: str
    crate: str
    published: dt.date
    summary: str
    url: str
    patched: tuple[str, ...]
    unaffected: tuple[str, ...] = ()
    cvss: str = ""
    aliases: tuple[str, ...] = ()

    def affects(self, version: Version | str) -> bool:
        v = version if isinstance(version, Version) else Version.parse(version)
        return not any(_matches(v, r) for r in (*self.patched, *self.unaffected))

    @property
    def fixed_versions(self) -> list[Version]:
        """The first patched release of each patched range, oldest first."""
        return sorted({b for r in self.patched if (b := _lower_bound(r)) is not None})

    def fix_for(self, version: Version | str) -> Version | None:
        """The smallest patched release above ``version``."""
        v = version if isinstance(version, Version) else Version.parse(version)
        later = [f for f in self.fixed_versions if f > v and not self.affects(f)]
        return later[0] if later else None

    def finding(self, version: Version | str) -> Finding:
        v = version if isinstance(version, Version) else Version.parse(version)
        fix = self.fix_for(v)
        ids = ", ".join(i for i in (self.ghsa, self.cve) if i)
        upgrade = f"; fixed in {fix}" if fix else ""
        details: dict[str, Any] = {
            "ghsa": self.ghsa,
            "rustsec": self.rustsec,
            "crate": self.crate,
            "published": self.published.isoformat(),
            "url": self.url,
            "runtime_version": str(v),
            "patched": list(self.patched),
            "fixed_versions": [str(f) for f in self.fixed_versions],
        }
        if self.cve:
            details["cve"] = self.cve
        if self.cvss:
            details["cvss"] = self.cvss
        if fix is not None:
            details["upgrade_to"] = str(fix)
        return Finding(
            name=EventName.ADVISORY,
            rule="runtime.advisory",
            severity=Severity.WARN,
            message=f"wasmtime {v} is affected by {ids}: {self.summary}{upgrade} ({self.url})",
            category="runtime",
            outcome=Outcome.UNKNOWN,
            target=f"wasmtime {v}",
            details=details,
        )


@dataclass(frozen=True, slots=True)
class AdvisoryList:
    """The advisories of one data file, with the date it was compiled and its source."""

    compiled: dt.date
    source: str
    advisories: tuple[Advisory, ...]


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise UsageError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def _advisory(entry: dict[str, Any], where: str) -> Advisory:
    try:
        advisory = Advisory(
            ghsa=str(entry["ghsa"]),
            cve=str(entry.get("cve", "")),
            rustsec=str(entry.get("rustsec", "")),
            crate=str(entry.get("crate", "wasmtime")),
            published=entry["published"],
            summary=str(entry["summary"]),
            url=str(entry["url"]),
            patched=_strings(entry, "patched", where),
            unaffected=_strings(entry, "unaffected", where),
            cvss=str(entry.get("cvss", "")),
            aliases=_strings(entry, "aliases", where),
        )
    except KeyError as e:
        raise UsageError(f"{where}: an advisory lacks `{e.args[0]}`") from e
    if not isinstance(advisory.published, dt.date):
        raise UsageError(f"{where}: {advisory.ghsa} `published` must be a date")
    for requirement in (*advisory.patched, *advisory.unaffected):
        _matches(Version(0, 0, 0), requirement)  # refuses a malformed one now
    return advisory


def load_advisories(path: str | Path | None = None) -> AdvisoryList:
    """The shipped list, or the one at ``path`` (same format)."""
    if path is None:
        return _shipped()
    return _parse(Path(path).read_text(encoding="utf-8"), str(path))


@cache
def _shipped() -> AdvisoryList:
    text = resources.files("wasmscope.guard").joinpath("data", DATA_FILE).read_text("utf-8")
    return _parse(text, DATA_FILE)


def _parse(text: str, where: str) -> AdvisoryList:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where}: {e}") from e
    compiled = data.get("compiled")
    if not isinstance(compiled, dt.date):
        raise UsageError(f"{where}: `compiled` must be the date the list was compiled")
    entries = data.get("advisory", [])
    if not isinstance(entries, list):
        raise UsageError(f"{where}: `advisory` must be an array of tables")
    return AdvisoryList(
        compiled, str(data.get("source", "")), tuple(_advisory(e, where) for e in entries)
    )


def advisories_for(
    version: str | Version, advisories: Sequence[Advisory] | None = None
) -> list[Finding]:
    """One ``wasm.runtime.advisory`` finding per published advisory that affects
    ``version`` (of the shipped list unless ``advisories`` is given), newest first."""
    v = version if isinstance(version, Version) else Version.parse(version)
    known = _shipped().advisories if advisories is None else advisories
    hits = sorted((a for a in known if a.affects(v)), key=lambda a: a.published, reverse=True)
    return [a.finding(v) for a in hits]


def installed_wasmtime_version() -> str | None:
    """The version of the installed wasmtime package (read from its metadata, so
    wasmtime itself is not imported), or None when it is not installed."""
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        return None
