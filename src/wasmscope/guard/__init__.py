"""Capability policy, host-call audit and anomaly detection for Wasm guests.

Modules, one concept each: ``findings`` (what every check reports), ``policy``
(the TOML policy), ``check`` (imports against a policy, before running), ``learn``
(least-privilege policy from observed runs), ``baseline`` (what normal looks like,
persisted), ``sequences`` (host-call n-grams), ``resources`` (robust outliers),
``advisories`` (published wasmtime advisories), ``sanitize`` (guest output),
``limits`` (runs that a runtime limit stopped),
``events`` (findings as OpenTelemetry log records), ``ocsf`` (findings as OCSF).
The audit itself runs in the module (``wasmscope.instrument.wasi_audit``) and in
``wasmscope.runtime`` (the ring reader); its records are ``runtime.host_calls``.
"""

from __future__ import annotations

__all__: list[str] = []
