"""Our names against the OpenTelemetry semantic conventions package installed with the SDK."""

from __future__ import annotations

import pytest

from wasmscope.telemetry import semconv as sc

semconv_pkg = pytest.importorskip("opentelemetry.semconv")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.semconv._incubating.attributes import (  # noqa: E402
    faas_attributes,
    log_attributes,
    service_attributes,
    telemetry_attributes,
)
from opentelemetry.semconv._incubating.metrics import faas_metrics  # noqa: E402
from opentelemetry.semconv.attributes import (  # noqa: E402
    code_attributes,
    error_attributes,
    exception_attributes,
)


def test_standard_attribute_names_match_the_conventions() -> None:
    pairs = [
        (sc.FAAS_TRIGGER, faas_attributes.FAAS_TRIGGER),
        (sc.FAAS_INVOCATION_ID, faas_attributes.FAAS_INVOCATION_ID),
        (sc.FAAS_COLDSTART, faas_attributes.FAAS_COLDSTART),
        (sc.FAAS_NAME, faas_attributes.FAAS_NAME),
        (sc.FAAS_MAX_MEMORY, faas_attributes.FAAS_MAX_MEMORY),
        (sc.ERROR_TYPE, error_attributes.ERROR_TYPE),
        (sc.EXCEPTION_TYPE, exception_attributes.EXCEPTION_TYPE),
        (sc.EXCEPTION_MESSAGE, exception_attributes.EXCEPTION_MESSAGE),
        (sc.EXCEPTION_STACKTRACE, exception_attributes.EXCEPTION_STACKTRACE),
        (sc.CODE_FUNCTION_NAME, code_attributes.CODE_FUNCTION_NAME),
        (sc.CODE_FILE_PATH, code_attributes.CODE_FILE_PATH),
        (sc.CODE_LINE_NUMBER, code_attributes.CODE_LINE_NUMBER),
        (sc.CODE_COLUMN_NUMBER, code_attributes.CODE_COLUMN_NUMBER),
        (sc.LOG_IOSTREAM, log_attributes.LOG_IOSTREAM),
        (sc.SERVICE_INSTANCE_ID, service_attributes.SERVICE_INSTANCE_ID),
        (sc.TELEMETRY_DISTRO_NAME, telemetry_attributes.TELEMETRY_DISTRO_NAME),
        (sc.TELEMETRY_DISTRO_VERSION, telemetry_attributes.TELEMETRY_DISTRO_VERSION),
    ]
    for ours, theirs in pairs:
        assert ours == theirs
    values = {v.value for v in faas_attributes.FaasTriggerValues}
    assert {sc.TRIGGER_OTHER, sc.TRIGGER_HTTP} <= values


def test_faas_metrics_match_the_conventions() -> None:
    meter = MeterProvider().get_meter("semconv-test")
    for spec in sc.METRICS:
        if not spec.name.startswith("faas."):
            continue
        create = getattr(faas_metrics, "create_" + spec.name.replace(".", "_"))
        instrument = create(meter)
        assert (spec.name, spec.unit) == (instrument.name, instrument.unit)
        expected = "histogram" if type(instrument).__name__.endswith("Histogram") else "counter"
        assert spec.kind == expected, spec.name


def test_our_names_are_unique_and_namespaced() -> None:
    names = [v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str) and "." in v]
    assert len(names) == len(set(names))
    ours = [k for k in vars(sc) if k.startswith("WASM_")]
    assert ours and all(getattr(sc, k).startswith("wasm.") for k in ours)
    metric_names = [m.name for m in sc.METRICS]
    assert len(metric_names) == len(set(metric_names))
    for m in sc.METRICS:
        assert m.kind in ("counter", "histogram", "gauge")
        if m.kind == "histogram":
            assert m.buckets and list(m.buckets) == sorted(m.buckets)
    assert sc.DURATION_BUCKETS[0] == 0.005 and sc.DURATION_BUCKETS[-1] == 10.0
    assert sc.MEMORY_BUCKETS[0] == 65536 and sc.MEMORY_BUCKETS[-1] == 4 * 1024**3
