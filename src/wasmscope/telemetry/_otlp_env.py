"""The standard OpenTelemetry environment variables that wasmscope reads itself (the
SDK's exporters read theirs), read in this module only.

``OTEL_EXPORTER_OTLP_<SIGNAL>_<NAME>`` wins over ``OTEL_EXPORTER_OTLP_<NAME>``, as in
the SDK. Read at each call: a test or a forked worker may change the environment.
"""

from __future__ import annotations

import os
import ssl
import urllib.parse

from wasmscope.telemetry import semconv as sc

__all__ = [
    "TIMEOUT_VARS",
    "exporter_var",
    "gzip_wanted",
    "headers",
    "instance_id_given",
    "resource_attributes",
    "sampler",
    "service_name",
    "timeout",
    "timeout_set",
    "tls_context",
]

TIMEOUT_VARS = (
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
)


def exporter_var(signal: str, name: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_{signal}_{name}``, else ``OTEL_EXPORTER_OTLP_{name}``
    (``signal``: "TRACES", "LOGS" or "METRICS"); None when unset or empty."""
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_{name}")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")
        or None
    )


def headers(signal: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS`` (``k=v,k2=v2``, URL-encoded), names lower-cased."""
    out: dict[str, str] = {}
    for item in (exporter_var(signal, "HEADERS") or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[urllib.parse.unquote(key.strip()).lower()] = urllib.parse.unquote(value.strip())
    return out


def gzip_wanted(signal: str) -> bool:
    """``OTEL_EXPORTER_OTLP_[SIGNAL_]COMPRESSION`` is ``gzip``."""
    return (exporter_var(signal, "COMPRESSION") or "").strip().lower() == "gzip"


def tls_context(signal: str) -> ssl.SSLContext:
    """The system's trusted certificates, or the CA file of
    ``OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE``, with the client certificate and key of
    ``..._CLIENT_CERTIFICATE`` / ``..._CLIENT_KEY``. Raises ``OSError`` or ``ssl.SSLError``
    for a file that cannot be read."""
    ctx = ssl.create_default_context(cafile=exporter_var(signal, "CERTIFICATE"))
    cert = exporter_var(signal, "CLIENT_CERTIFICATE")
    if cert:
        ctx.load_cert_chain(cert, exporter_var(signal, "CLIENT_KEY"))
    return ctx


def timeout_set() -> bool:
    """Whether any ``OTEL_EXPORTER_OTLP_[SIGNAL_]TIMEOUT`` is set."""
    return any(os.environ.get(v) for v in TIMEOUT_VARS)


def timeout() -> float:
    """``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`` / ``OTEL_EXPORTER_OTLP_TIMEOUT`` in seconds
    (the Python SDK's reading), else 10."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        try:
            value = float(os.environ.get(name, ""))
        except ValueError:
            continue
        if value > 0:
            return value
    return 10.0


def sampler() -> tuple[str, str | None]:
    """``OTEL_TRACES_SAMPLER`` (lower-cased, default ``parentbased_always_on``) and
    ``OTEL_TRACES_SAMPLER_ARG``."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    return name, os.environ.get("OTEL_TRACES_SAMPLER_ARG")


def resource_attributes() -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, URL-encoded)."""
    attrs: dict[str, str] = {}
    for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attrs[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return attrs


def service_name() -> str | None:
    """``OTEL_SERVICE_NAME``, None when unset or blank."""
    return os.environ.get("OTEL_SERVICE_NAME", "").strip() or None


def instance_id_given() -> bool:
    """Whether ``OTEL_RESOURCE_ATTRIBUTES`` names a ``service.instance.id``."""
    return sc.SERVICE_INSTANCE_ID in resource_attributes()
