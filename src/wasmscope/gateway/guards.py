"""The guard of each route: one :class:`~wasmscope.guard.session.GuardSession` per route
path, made at the route's first request and again when a reload changes its policy.

A route is guarded when it has a policy (its own or the manifest's default) or when
``serve`` was given guard options (``base``: the audit, the baseline, the sinks).
The static check runs once per module build (by sha256): a module whose imports the
policy refuses is never run, and its requests get a 500 that says so.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.gateway.manifest import Route
    from wasmscope.guard.findings import Finding
    from wasmscope.guard.session import GuardConfig, GuardSession
    from wasmscope.runtime.identity import ModuleSource
    from wasmscope.runtime.options import RunOptions

__all__ = ["RouteGuards"]


class RouteGuards:
    """``base`` None: only routes with a policy are guarded (monitor by their policy's
    mode, no baseline, no file sinks). ``telemetry()`` is asked at each new session, so
    a tap put in front of the gateway's telemetry later is used."""

    def __init__(self, base: GuardConfig | None, telemetry: Callable[[], Any]) -> None:
        self.base = base
        self.telemetry = telemetry
        self._sessions: dict[str, GuardSession] = {}
        self._refused: dict[tuple[str, str], tuple[str | None, list[Finding]]] = {}
        self._lock = threading.Lock()

    def session(self, route: Route) -> GuardSession | None:
        """The route's session, or None when the route is not guarded (no cost)."""
        found = self._sessions.get(route.path)
        policy = route.policy if route.policy is not None else (self.base.policy if self.base else None)
        if found is not None and found.config.policy is policy:
            return found
        if policy is None and self.base is None:
            return None
        from wasmscope.guard.session import GuardConfig, GuardSession

        config = dataclasses.replace(self.base or GuardConfig(), policy=policy, telemetry=self.telemetry())
        with self._lock:
            found = self._sessions.get(route.path)
            if found is None or found.config.policy is not policy:
                found = self._sessions[route.path] = GuardSession(config, name=route.path)
        return found

    def refusal(self, session: GuardSession, route: Route, source: ModuleSource | None) -> str | None:
        """Why the policy refuses to link the route's module (None: it links). Checked
        once per module build."""
        return self._static(session, route, source)[0]

    def _static(
        self, session: GuardSession, route: Route, source: ModuleSource | None
    ) -> tuple[str | None, list[Finding]]:
        key = (route.path, source.sha256 if source is not None else str(route.module))
        found = self._refused.get(key)
        if found is not None:
            return found
        data = source.read_bytes() if source is not None else str(route.module)
        findings: list[Finding] = session.check(data)
        reason = None
        if session.refuses(findings):
            denied = [f.target or f.rule for f in findings if f.rule == "import.denied"]
            reason = f"the route's policy refuses to link its module (imports {', '.join(map(str, denied))})"
        with self._lock:
            self._refused[key] = (reason, findings)
        return reason, findings

    def report_refusal(
        self, session: GuardSession, route: Route, source: ModuleSource | None, options: RunOptions,
        traceparent: str | None,
    ) -> None:  # fmt: skip
        """Emit the static findings of a request whose module the policy refuses (each
        request that tried), on a record of the run that never started."""
        from wasmscope.runtime.record import InvocationRecord, ModuleIdentity, Outcome
        from wasmscope.runtime.runner import new_invocation_id

        reason, findings = self._static(session, route, source)
        identity = source.identity if source is not None else ModuleIdentity("", route.module.name, 0)
        rec = InvocationRecord(
            invocation_id=new_invocation_id(), module=identity, entry="_start", outcome=Outcome.ERROR,
            error=reason, attributes=dict(options.attributes or {}),
        )  # fmt: skip
        session.judge(rec, options, [f for f in findings if f.rule == "import.denied"], traceparent=traceparent)

    def close(self) -> None:
        """Closes the file sinks that every session shares (the base's)."""
        if self.base is not None:
            for sink in (self.base.ocsf, self.base.audit_file):
                if sink is not None:
                    sink.close()
