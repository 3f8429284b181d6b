"""Reports pushed to ``wasmscope collect``: one OTLP log record per report.

``wasmscope inspect --push URL`` and ``wasmscope profile --push URL`` send their
report to ``URL/v1/logs`` as an OTLP/HTTP protobuf ``ExportLogsServiceRequest``, so
that any OpenTelemetry collector takes it and ``wasmscope collect`` files it by module:

::

    from wasmscope.telemetry import reports

    rec = reports.inspect_report_record(report.to_json(), sha256=hashlib.sha256(data).hexdigest(),
                                        name="app.wasm")
    result = reports.push("http://127.0.0.1:4318", [rec], token=None)   # never raises
    if result.warning():
        print(result.warning())                                          # one line: URL and reason

A record has severity INFO, the time it was made, the attribute ``event.name``
(:data:`~wasmscope.telemetry.semconv.EVENT_INSPECT_REPORT` or
:data:`~wasmscope.telemetry.semconv.EVENT_PROFILE`), the ``wasm.module.*`` attributes,
and a JSON string as its body: the ``inspect --json`` document, or the profile in the
``wasmscope.profile/1`` format (:func:`profile_body`; docs/collect-reports.md). A
profile record also has ``faas.name``, ``faas.invocation_id`` and ``wasm.outcome``, and
the trace and span ids of the run's invocation span when the run had telemetry.

The protobuf is written by :mod:`wasmscope.telemetry.wire` and sent with
``http.client``: no OpenTelemetry package is needed (``inspect`` has no dependency).
:func:`push` never raises for a failed push: a report is a by-product of a command,
so the command's output and exit status stay what they are and the caller prints
:meth:`PushResult.warning`. 429, 502, 503 and 504 are retried a bounded number of
times, after the ``Retry-After`` the server sent (capped) or a short backoff.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wasmscope.telemetry import _otlp_env, mapping, wire
from wasmscope.telemetry import semconv as sc
from wasmscope.telemetry._otlp_http import OtlpHttpClient

if TYPE_CHECKING:
    from wasmscope.profile.model import Profile
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROFILE_FORMAT",
    "TOKEN_ENV",
    "PushResult",
    "ReportRecord",
    "export_request",
    "inspect_report_record",
    "logs_url",
    "module_attributes",
    "profile_body",
    "profile_report_record",
    "push",
    "report_resource",
]

PROFILE_FORMAT = "wasmscope.profile/1"
TOKEN_ENV = "WASMSCOPE_PUSH_TOKEN"
DEFAULT_TIMEOUT = 5.0  # seconds for the whole push, retries included
SEVERITY_INFO = 9  # SeverityNumber.INFO
MAX_RETRIES = 3
MAX_RETRY_AFTER = 5.0  # seconds: a longer Retry-After is waited for this long at most
GZIP_ABOVE = 32 * 1024  # bytes: smaller requests are sent as they are
MAX_STACK_BYTES = 8 * 1024 * 1024  # JSON bytes of a profile's stacks (a receiver takes ~20 MiB)
LOGS_PATH = "/v1/logs"


# --- records ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One report as a log record: ``event`` (the ``event.name``), ``body`` (JSON text),
    ``attributes`` (``event.name`` included), time in unix ns, and the trace and span
    ids (hex, "" when none) of the invocation span it belongs to."""

    event: str
    body: str
    attributes: dict[str, Any]
    time_ns: int
    trace_id: str = ""
    span_id: str = ""

    def encode(self) -> bytes:
        """The OTLP ``LogRecord`` message."""
        return wire.log_record(
            time_ns=self.time_ns,
            observed_ns=self.time_ns,
            severity_number=SEVERITY_INFO,
            severity_text="INFO",
            body=self.body,
            attrs=self.attributes,
            trace_id=bytes.fromhex(self.trace_id) if self.trace_id else b"",
            span_id=bytes.fromhex(self.span_id) if self.span_id else b"",
            flags=1 if self.trace_id else 0,  # sampled: the span was recorded
        )


def module_attributes(*, sha256: str, name: str, size: int, kind: str) -> dict[str, Any]:
    """The ``wasm.module.*`` attributes of a report."""
    return {
        sc.WASM_MODULE_SHA256: sha256,
        sc.WASM_MODULE_NAME: name,
        sc.WASM_MODULE_SIZE: size,
        sc.WASM_MODULE_KIND: kind,
    }


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def inspect_report_record(
    report: Mapping[str, Any],
    *,
    sha256: str,
    name: str,
    clock: Callable[[], int] = time.time_ns,
) -> ReportRecord:
    """The record of an ``inspect`` report: ``report`` is the ``inspect --json``
    document (``InspectReport.to_json()``), its body as compact JSON; ``sha256`` (hex)
    and ``name`` identify the module, its size and kind come from the report."""
    attrs = {
        sc.EVENT_NAME: sc.EVENT_INSPECT_REPORT,
        **module_attributes(
            sha256=sha256, name=name, size=int(report["size"]), kind=str(report["kind"])
        ),
    }
    return ReportRecord(sc.EVENT_INSPECT_REPORT, _dumps(report), attrs, clock())


def profile_body(prof: Profile, *, max_stack_bytes: int = MAX_STACK_BYTES) -> dict[str, Any]:
    """The ``wasmscope.profile/1`` document of a profile (see docs/collect-reports.md):
    every function that was called or sampled, with its exact calls (the module's
    counters) and its self and total samples (total counts a function once per sample
    even when it recurses); every distinct sampled stack, outermost frame first, with
    its samples. Functions are ordered as ``wasmscope profile`` ranks them, stacks by
    samples (then frames). Names are the profile's unique display names; a stack
    deeper than the shadow stack's ring starts with ``[outer frames lost]``.

    The stacks take at most ``max_stack_bytes`` of JSON: past it the rarest stacks are
    left out and counted in ``"stacks_omitted": {"stacks": N, "value": SAMPLES}`` (a long
    run of a big module has tens of thousands of distinct stacks; a collector takes
    requests of 20 MiB or so)."""
    functions = [
        {"name": r.name, "calls": r.calls, "self": r.self_samples, "total": r.total_samples}
        for r in prof.top(len(prof.names) + len(prof.counts) + 1)
    ]
    from wasmscope.runtime.guest_counters import unique_names

    unique = unique_names(prof.names)
    named = sorted(
        (
            ([prof.unique_name(i, unique) for i in stack], n)
            for stack, n in prof.samples.items()
            if stack and n
        ),
        key=lambda fn: (-fn[1], fn[0]),
    )
    stacks: list[dict[str, Any]] = []
    used = 0
    omitted = omitted_value = 0
    for frames, n in named:
        entry = {"frames": frames, "value": n}
        if omitted:
            omitted, omitted_value = omitted + 1, omitted_value + n
            continue
        used += len(_dumps(entry)) + 1
        if used > max_stack_bytes:
            omitted, omitted_value = 1, n
            continue
        stacks.append(entry)
    doc: dict[str, Any] = {
        "format": PROFILE_FORMAT,
        "module": {"name": prof.module, "sha256": prof.sha256},
        "unit": "samples",
        "interval_s": prof.interval_ns / 1e9,
        "samples": prof.sampled,
        "functions": functions,
        "stacks": stacks,
    }
    if omitted:
        doc["stacks_omitted"] = {"stacks": omitted, "value": omitted_value}
    return doc


def profile_report_record(
    record: InvocationRecord,
    prof: Profile,
    *,
    trace_id: str = "",
    span_id: str = "",
    clock: Callable[[], int] = time.time_ns,
) -> ReportRecord:
    """The record of a profiled run: the body is :func:`profile_body`; attributes the
    ``wasm.module.*`` of the module, ``faas.name`` (as on the run's span),
    ``faas.invocation_id`` and ``wasm.outcome`` of the run; ``trace_id`` / ``span_id``: its invocation span's, when it had telemetry
    (:meth:`~wasmscope.telemetry.Telemetry.invocation_span`)."""
    m = record.module
    attrs = {
        sc.EVENT_NAME: sc.EVENT_PROFILE,
        **module_attributes(sha256=m.sha256, name=m.name, size=m.size, kind=m.kind),
        sc.FAAS_NAME: mapping.span_name(record),
        sc.FAAS_INVOCATION_ID: record.invocation_id,
        sc.WASM_OUTCOME: str(record.outcome),
    }
    return ReportRecord(
        sc.EVENT_PROFILE, _dumps(profile_body(prof)), attrs, clock(), trace_id, span_id
    )


# --- the request -----------------------------------------------------------------------------
def _env_resource(service_name: str | None) -> dict[str, Any]:
    """The resource without the OpenTelemetry SDK: ``OTEL_RESOURCE_ATTRIBUTES``, then
    ``OTEL_SERVICE_NAME``, then ``service_name`` (the SDK's precedence)."""
    attrs: dict[str, Any] = dict(_otlp_env.resource_attributes())
    env_name = _otlp_env.service_name()
    if env_name:
        attrs[sc.SERVICE_NAME] = env_name
    attrs.setdefault(sc.SERVICE_NAME, sc.SERVICE_NAME_DEFAULT)
    if service_name:
        attrs[sc.SERVICE_NAME] = service_name
    attrs.setdefault(sc.TELEMETRY_DISTRO_NAME, "wasmscope")
    return attrs


def report_resource(service_name: str | None = None) -> dict[str, Any]:
    """The resource attributes of pushed reports: the telemetry's resource
    (:func:`wasmscope.telemetry.otel.make_resource`: ``service.name`` "wasmscope"
    unless ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` / ``service_name`` say
    otherwise) when the OpenTelemetry SDK is installed, else the same names read from
    the environment here."""
    import importlib.util

    try:
        have_sdk = importlib.util.find_spec("opentelemetry.sdk.resources") is not None
    except (ImportError, ValueError):
        have_sdk = False
    if not have_sdk:
        return _env_resource(service_name)
    from wasmscope.telemetry.otel import make_resource

    return dict(make_resource(service_name).attributes)


def export_request(
    records: Sequence[ReportRecord], resource: Mapping[str, Any] | None = None
) -> bytes:
    """The ``ExportLogsServiceRequest`` of ``records`` (one resource, scope "wasmscope")."""
    from wasmscope.telemetry.otel import _version

    res = dict(resource) if resource is not None else report_resource()
    return wire.export_logs_request(
        wire.resource(res),
        wire.instrumentation_scope(sc.INSTRUMENTATION_SCOPE, _version()),
        [r.encode() for r in records],
    )


def logs_url(base: str) -> str:
    """``base`` + ``/v1/logs`` (a URL that already ends with it is kept). Raises
    ``ValueError`` for anything but an http:// or https:// URL with a host."""
    text = base.strip()
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(
            f"expected an http:// or https:// URL such as http://127.0.0.1:4318, not {base!r}"
        )
    try:
        url.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError:
        raise ValueError(f"bad port in {base!r}") from None
    if url.query or url.fragment:
        raise ValueError(f"expected a base URL without ?query or #fragment, not {base!r}")
    path = url.path.rstrip("/")
    if not path.endswith(LOGS_PATH):
        path += LOGS_PATH
    return urllib.parse.urlunsplit((url.scheme, url.netloc, path, "", ""))


# --- pushing ---------------------------------------------------------------------------------
@dataclass(slots=True)
class PushResult:
    """How a push went: ``ok``; the ``url`` posted to; the last HTTP ``status`` (None
    when no response came) and ``reason`` (the HTTP reason, or why it failed);
    ``attempts``; ``waited`` (seconds slept before retries); ``rejected``: records the
    server said it rejected (OTLP partial success)."""

    ok: bool
    url: str
    status: int | None = None
    reason: str = ""
    attempts: int = 0
    waited: list[float] = field(default_factory=list)
    rejected: int = 0

    def warning(self, what: str = "the report") -> str:
        """One line for stderr about a push that did not (fully) succeed ("" when it did)."""
        if self.ok and not self.rejected:
            return ""
        if self.rejected:
            why = f"the collector rejected {self.rejected} record(s): {self.reason or 'no reason given'}"
        elif self.status is not None:
            why = f"HTTP {self.status} {self.reason}".rstrip()
        else:
            why = self.reason or "failed"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"could not push {what} to {self.url}: {why}{tries}"


def _partial_success(body: bytes) -> tuple[int, str]:
    """``ExportLogsServiceResponse.partial_success`` (field 1): rejected_log_records
    (1, int64) and error_message (2); (0, "") when absent or not protobuf."""
    try:
        fields = _fields(body)
        inner = next((v for n, v in fields if n == 1 and isinstance(v, bytes)), None)
        if inner is None:
            return 0, ""
        rejected, message = 0, ""
        for n, v in _fields(inner):
            if n == 1 and isinstance(v, int):
                rejected = v
            elif n == 2 and isinstance(v, bytes):
                message = v.decode("utf-8", "replace")
        return rejected, message
    except ValueError:
        return 0, ""


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The top-level fields of a protobuf message (varint and length-delimited only;
    the others are skipped). Raises ``ValueError`` on a malformed message."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= len(data) or shift > 63:
                raise ValueError("bad varint")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while pos < len(data):
        key = varint()
        number, kind = key >> 3, key & 7
        if kind == 0:
            out.append((number, varint()))
        elif kind == 2:
            n = varint()
            if pos + n > len(data):
                raise ValueError("truncated field")
            out.append((number, data[pos : pos + n]))
            pos += n
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {kind}")
    if pos != len(data):
        raise ValueError("truncated message")
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is `wasmscope collect` or a collector running there?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the server's certificate is not trusted ({exc.verify_message}; see OTEL_EXPORTER_OTLP_CERTIFICATE)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without a response"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def push(
    url: str,
    records: Sequence[ReportRecord],
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    resource: Mapping[str, Any] | None = None,
    max_retries: int = MAX_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> PushResult:
    """POST ``records`` as one OTLP/HTTP protobuf request to ``url`` (a base URL such
    as ``http://127.0.0.1:4318``: ``/v1/logs`` is appended; see :func:`logs_url`).

    ``token``: sent as ``Authorization: Bearer TOKEN`` (default: the
    ``WASMSCOPE_PUSH_TOKEN`` environment variable). ``timeout``: seconds for the whole
    push, retries included. 429, 502, 503 and 504 are retried up to ``max_retries``
    times, after the ``Retry-After`` the server sent (at most 5 s) or 0.25, 0.5, 1 s,
    never past the timeout; a refused connection, a timeout and other statuses are
    not retried. Requests over 32 KiB are gzip'd. https:// trusts the system's
    certificates or ``OTEL_EXPORTER_OTLP_CERTIFICATE`` (``OTEL_EXPORTER_OTLP_[LOGS_]CLIENT_CERTIFICATE`` / ``_CLIENT_KEY`` for a client certificate). Never raises for the push itself
    (``ValueError`` for a URL that is not http(s)): see :class:`PushResult`."""
    target = logs_url(url)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    body = export_request(records, resource)
    headers: dict[str, str] = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    client = OtlpHttpClient(
        "LOGS", headers=headers, user_agent="wasmscope-push", gzip_above=GZIP_ABOVE, max_retries=max_retries,
        max_retry_after=MAX_RETRY_AFTER, sleep=sleep, clock=clock,
    )  # fmt: skip
    try:
        sent = client.post(target, body, timeout)
    finally:
        client.close()
    result = PushResult(sent.ok, target, sent.status, sent.reason, sent.attempts, sent.waited)
    if sent.error is not None:
        result.reason = f"TLS setup: {sent.error}" if sent.setup_error else _reason(sent.error)
    elif sent.ok:
        result.rejected, message = _partial_success(sent.body)
        result.reason = message if result.rejected else sent.reason
    return result
