"""One guarded module: the policy, the audit, the detectors and the sinks, around each run.

    session = GuardSession(GuardConfig(policy=load_policy("p.toml")), name="app")
    refused = session.check(module_bytes)          # static: imports against the policy
    options, early = session.prepare(options)      # the WASI world cut to the policy, the audit asked
    rec = runtime.run(module, args, options)
    findings = session.judge(rec, options, early)  # evaluation, detection, sanitizing; emitted

``wasmscope run --policy`` and every guarded ``serve`` route use one session each.
What a session emits goes to the sinks it was given: the telemetry (security events as
OpenTelemetry log records in the invocation's trace), an OCSF file, and a JSON-lines
audit file (every recorded host call). A sink that fails is logged and counted
(:attr:`GuardSession.stats`), never raised into the run or the request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wasmscope.errors import UsageError
from wasmscope.guard.findings import EventName, Finding
from wasmscope.guard.limits import limit_findings
from wasmscope.guard.sanitize import sanitize_output
from wasmscope.runtime.host_calls import AuditLog

if TYPE_CHECKING:
    from wasmscope.guard.baseline import Baseline
    from wasmscope.guard.ocsf import OcsfWriter
    from wasmscope.guard.policy import Policy
    from wasmscope.runtime.host_calls import AuditSettings
    from wasmscope.runtime.options import RunOptions
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.runtime.wasi import DirSpec
    from wasmscope.telemetry import Telemetry

__all__ = ["MODES", "AuditFile", "GuardConfig", "GuardSession", "GuardStats", "open_sinks"]

log = logging.getLogger("wasmscope.guard")

MODES = ("monitor", "enforce", "kill")
MIN_RING = 64  # records: the smallest ring a session asks for


class AuditFile:
    """Every recorded host call, one JSON object a line, with its invocation id. One
    write per invocation (appended; a line written survives kill -9)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.lines = 0
        self._lock = threading.Lock()
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot open the audit file {self.path}: {exc.strerror}") from None

    def write(self, rec: InvocationRecord, audit: AuditLog) -> int:
        if not audit.calls:
            return 0
        head = {"invocation_id": rec.invocation_id, "module": rec.module.name, "sha256": rec.module.sha256}
        data = "".join(
            json.dumps({**head, **{k: v for k, v in asdict(c).items() if v is not None and v is not False}},
                       ensure_ascii=False, separators=(",", ":")) + "\n"
            for c in audit.calls
        )  # fmt: skip
        buf = memoryview(data.encode("utf-8", "backslashreplace"))
        with self._lock:
            if self._fd is None:
                raise UsageError("the audit file is closed")
            while buf:
                buf = buf[os.write(self._fd, buf) :]
            self.lines += len(audit.calls)
        return len(audit.calls)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass
class GuardConfig:
    """``policy`` None: audit and detect only (nothing is refused). ``mode`` overrides the
    policy's. ``record=False`` audits in count-only mode (no sequences, no paths).
    ``baseline`` with ``learn``: each run is learned as normal; without: each run is
    judged against it. ``baseline_key``: ``"sha256"`` (one baseline per exact module)
    or ``"name"`` (per module name or route, so a new build of the same function is
    judged against the old one's normal). ``input_class`` splits a function's runs for
    the resource detector. The sinks: ``telemetry``, ``ocsf``, ``audit_file``."""

    policy: Policy | None = None
    mode: str | None = None
    record: bool = True
    baseline: Baseline | None = None
    learn: bool = False
    baseline_key: str = "sha256"
    input_class: str = ""
    telemetry: Telemetry | None = None
    ocsf: OcsfWriter | None = None
    audit_file: AuditFile | None = None
    advisories: bool = True

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise UsageError(f"guard mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.baseline_key not in ("sha256", "name"):
            raise UsageError(f"baseline key {self.baseline_key!r}: use sha256 or name")

    @property
    def effective_mode(self) -> str:
        if self.mode is not None:
            return self.mode
        return self.policy.mode if self.policy is not None else "monitor"


@dataclass
class GuardStats:
    """What a session saw: runs judged, findings by event name, audit records dropped,
    sink failures by sink."""

    runs: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    sink_failures: Counter[str] = field(default_factory=Counter)


class GuardSession:
    """The guard of one module (``name``: the module's or the route's, for the baseline
    and the messages). Thread-safe: serve's workers share one per route."""

    def __init__(self, config: GuardConfig, name: str = "") -> None:
        self.config = config
        self.name = name
        self.mode = config.effective_mode
        self.stats = GuardStats()
        self._lock = threading.Lock()
        self._static: dict[str, list[Finding]] = {}
        # The ring of the next run, in records: sized from the most calls one run made
        # (twice that, at least MIN_RING), the full ring after a run that dropped
        # records. A request that makes 20 calls then costs a 25 KiB ring, not 1.5 MiB.
        self._ring: int | None = None
        self._most_calls = 0
        self._settings_cache: dict[tuple[object, ...], AuditSettings] = {}
        self._shaping_seen: set[tuple[str, str | None, str]] = set()
        self._pending_advisories: list[Finding] | None = None
        if config.advisories:
            from wasmscope.guard.advisories import advisories_for, installed_wasmtime_version

            version = installed_wasmtime_version()
            self._pending_advisories = advisories_for(version) if version else []

    # -- before the run --------------------------------------------------------------
    def check(self, module: bytes | str | os.PathLike[str]) -> list[Finding]:
        """The static findings of ``module``'s imports (cached per sha256 once read)."""
        policy = self.config.policy
        if policy is None:
            return []
        from hashlib import sha256

        from wasmscope.guard.check import check_imports

        if isinstance(module, bytes | bytearray | memoryview):
            data = bytes(module)
        else:
            try:
                data = Path(module).read_bytes()
            except OSError as exc:
                raise UsageError(f"cannot read the module {os.fspath(module)}: {exc.strerror or exc}") from None
        key = sha256(data).hexdigest()
        with self._lock:
            cached = self._static.get(key)
        if cached is None:
            cached = check_imports(data, policy, self.mode)
            with self._lock:
                self._static[key] = cached
        return cached

    def refuses(self, findings: Sequence[Finding]) -> bool:
        from wasmscope.guard.check import refuses

        return refuses(list(findings))

    def prepare(self, options: RunOptions) -> tuple[RunOptions, list[Finding]]:
        """``options`` cut to the policy (enforce and kill) with the audit asked, and the
        findings of the shaping (what was outside the policy)."""
        policy = self.config.policy
        findings: list[Finding] = []
        if policy is None:
            shaped = options
        else:
            shaped, findings = policy.shape(options, self.mode)
            if findings:
                findings = self._first_time(findings)
        settings = self._settings(shaped.dirs)
        if shaped.audit is settings:  # asked for with audit_settings() already: no copy
            return shaped, findings
        return replace(shaped, audit=settings), findings

    def audit_settings(self, dirs: Sequence[DirSpec | str] = ()) -> AuditSettings:
        """The audit :meth:`prepare` gives a run with ``dirs`` (what a caller that builds
        its options per run passes at once, so that prepare need not copy them)."""
        return self._settings(dirs)

    def _first_time(self, findings: list[Finding]) -> list[Finding]:
        """The shaping's findings not reported before by this session: how the run's
        world differs from the policy is the same for every request of a route, so it
        is said once (a change of it is said again)."""
        fresh = []
        with self._lock:
            for f in findings:
                key = (f.rule, f.target, f.outcome)
                if key not in self._shaping_seen:
                    if len(self._shaping_seen) < 10_000:
                        self._shaping_seen.add(key)
                    fresh.append(f)
        return fresh

    def _settings(self, dirs: Sequence[DirSpec | str]) -> AuditSettings:
        """The audit settings of a run with ``dirs``, made once per dirs and ring size:
        the same object each time, so the audit's tables are cached too."""
        key = (tuple(dirs), self._ring)
        found = self._settings_cache.get(key)
        if found is not None:
            return found
        from wasmscope.runtime.host_calls import AuditSettings
        from wasmscope.runtime.options import RunOptions

        shaped = RunOptions(dirs=dirs)  # the policy's audit reads the preopens only

        policy = self.config.policy
        settings = AuditSettings() if policy is None else policy.audit_settings(self.mode, shaped)
        ring = min(self._ring or settings.ring_records, settings.ring_records)
        if settings.record != self.config.record or ring != settings.ring_records:
            settings = replace(settings, record=self.config.record, ring_records=ring)
        with self._lock:
            if len(self._settings_cache) > 64:
                self._settings_cache.clear()
            self._settings_cache[key] = settings
        return settings

    # -- after the run ---------------------------------------------------------------
    def judge(
        self,
        rec: InvocationRecord,
        options: RunOptions | None,
        early: Sequence[Finding] = (),
        *,
        function: str | None = None,
        traceparent: str | None = None,
    ) -> list[Finding]:
        """Every finding of one run (the shaping's ``early`` ones first), emitted to the
        sinks; the run's usage learned or its behaviour judged against the baseline.
        ``function`` keys the baseline (default: the record's entry)."""
        cfg = self.config
        audit = rec.audit
        findings = list(early)
        if cfg.policy is not None:
            findings += cfg.policy.evaluate(rec, audit, options)
        elif audit is not None and audit.dropped:
            findings.append(_dropped(audit.dropped))
        findings += limit_findings(rec)
        findings += sanitize_output(rec)
        if cfg.baseline is not None:
            findings += self._baseline(rec, audit, options, function or rec.entry)
        with self._lock:
            if self._pending_advisories:
                findings += self._pending_advisories
            self._pending_advisories = None
            self.stats.runs += 1
            if findings:
                self.stats.findings.update(f.name for f in findings)
            if audit is not None:
                self.stats.dropped += audit.dropped
                self._size_ring(audit)
        self._emit(rec, audit, findings, traceparent)
        return findings

    def _size_ring(self, audit: AuditLog) -> None:
        if audit.dropped:
            self._ring = None  # the full ring again
            return
        total = audit.total
        if total <= self._most_calls and self._ring is not None:
            return
        self._most_calls = max(self._most_calls, total)
        self._ring = max(MIN_RING, 1 << (2 * self._most_calls - 1).bit_length())

    def _baseline(
        self, rec: InvocationRecord, audit: AuditLog | None, options: RunOptions | None, function: str
    ) -> list[Finding]:
        from wasmscope.guard.resources import figures_from_record
        from wasmscope.guard.sequences import calls_of
        from wasmscope.guard.usage import Usage

        baseline = self.config.baseline
        assert baseline is not None
        key = rec.module.sha256 if self.config.baseline_key == "sha256" else (self.name or rec.module.name)
        sequence = calls_of(audit)
        figures = figures_from_record(rec, audit)
        if self.config.learn:
            usage = Usage.from_run(rec, audit, options).to_json()
            baseline.add_run(key, rec.module.name, function, self.config.input_class, sequence, figures, usage)
            return []
        return baseline.detect(key, function, self.config.input_class, sequence, figures, name=rec.module.name)

    def _emit(
        self, rec: InvocationRecord, audit: AuditLog | None, findings: list[Finding], traceparent: str | None
    ) -> None:
        audit_file, telemetry, ocsf = self.config.audit_file, self.config.telemetry, self.config.ocsf
        if audit_file is not None and audit is not None:
            self._sink("audit", lambda: audit_file.write(rec, audit))
        if not findings:
            return
        if telemetry is not None:
            self._sink("telemetry", lambda: telemetry.emit_findings(rec, findings, traceparent=traceparent))
        if ocsf is not None:
            trace = telemetry.invocation_span(rec.invocation_id) if telemetry is not None else None
            self._sink("ocsf", lambda: ocsf.write(findings, rec, trace))

    def _sink(self, name: str, write: Callable[[], object]) -> None:
        try:
            write()
        except Exception as exc:  # a sink never fails the run
            with self._lock:
                self.stats.sink_failures[name] += 1
            log.warning("guard: the %s sink failed: %s", name, exc)

    def close(self) -> None:
        """Closes the file sinks (the baseline and the telemetry belong to the caller)."""
        for sink in (self.config.ocsf, self.config.audit_file):
            if sink is not None:
                sink.close()


def _dropped(count: int) -> Finding:
    from wasmscope.guard.findings import Severity

    return Finding(
        EventName.DROPPED, "audit.dropped", Severity.WARN,
        f"the audit ring dropped {count} host-call records (counted; the counts per function stay exact)",
        "runtime", details={"dropped": count},
    )  # fmt: skip


def open_sinks(
    ocsf: str | None, audit: str | None
) -> tuple[OcsfWriter | None, AuditFile | None]:
    """The file sinks a command asked for (``--ocsf FILE``, ``--audit FILE``)."""
    writer = None
    if ocsf:
        from wasmscope.guard.ocsf import OcsfWriter

        writer = OcsfWriter(ocsf)
    return writer, (AuditFile(audit) if audit else None)
