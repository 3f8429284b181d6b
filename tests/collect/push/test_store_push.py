"""End to end: ``inspect --push`` and ``profile --otlp --push`` into collect's receiver
over the store (the embedded chDB, the exporter's tables): what the dashboard reads is
in ``otel_logs``, its JSON body queryable, and the profile's TraceId/SpanId are those of
the invocation span in ``otel_traces``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("uvicorn")

from tests.collect.push.support import cli
from tests.collect.push.test_receiver_push import receiving
from wasmscope.collect.store import Store
from wasmscope.telemetry import semconv as sc

if TYPE_CHECKING:
    from wasmscope.collect.store.embedded import ChdbBackend


def test_reports_land_in_otel_logs(
    chdb_backend: ChdbBackend, database: str, env: dict[str, str], wasm: dict[str, Path], tmp_path: Path
) -> None:
    store = Store(chdb_backend, database)
    store.ensure_schema()
    writer = store.writer()
    try:
        with receiving(writer) as url:
            inspected = cli(env, "inspect", "--json", "--push", url, str(wasm["prog"]))
            profiled = cli(env, "profile", "-q", "--otlp", url, "--push", url, "--report", str(tmp_path / "r.json"), str(wasm["prog"]))
    finally:
        writer.close()
    assert inspected.returncode == 0 and inspected.stderr == "", inspected.stderr
    assert profiled.returncode == 0, profiled.stderr
    rec = json.loads((tmp_path / "r.json").read_text())

    rows = chdb_backend.query(
        f"SELECT LogAttributes['event.name'] AS event, LogAttributes['wasm.module.name'] AS name, "
        f"LogAttributes['wasm.module.size'] AS size, ServiceName, SeverityText, SeverityNumber, Body, TraceId, SpanId "
        f"FROM {database}.otel_logs WHERE LogAttributes['event.name'] LIKE {{prefix:String}} ORDER BY event",
        {"prefix": "wasmscope.%"},
    ).dicts()
    assert [r["event"] for r in rows] == [sc.EVENT_INSPECT_REPORT, sc.EVENT_PROFILE]
    ins, prof = rows
    size = str(wasm["prog"].stat().st_size)
    for r in rows:
        assert (r["name"], r["size"], r["ServiceName"], r["SeverityText"], r["SeverityNumber"]) == (
            "prog.wasm", size, "wasmscope", "INFO", 9,
        )  # fmt: skip
    assert json.loads(ins["Body"]) == json.loads(inspected.stdout)
    assert ins["TraceId"] == "" and ins["SpanId"] == ""

    # the body is JSON the store can query, as the dashboard will
    (calls,) = chdb_backend.query(
        f"SELECT JSONExtractString(Body, 'format') AS format, "
        f"arrayFirst(f -> JSONExtractString(f, 'name') = 'fib', JSONExtractArrayRaw(Body, 'functions')) AS fib "
        f"FROM {database}.otel_logs WHERE LogAttributes['event.name'] = {{event:String}}",
        {"event": sc.EVENT_PROFILE},
    ).rows
    assert calls[0] == "wasmscope.profile/1"
    assert json.loads(calls[1])["calls"] == rec["call_counts"]["fib"] == 242_785

    # and points at its invocation span
    spans = chdb_backend.query(
        f"SELECT TraceId, SpanId, SpanAttributes['faas.invocation_id'] AS inv FROM {database}.otel_traces "
        f"WHERE SpanKind = 'Server'",
    ).dicts()
    assert spans == [{"TraceId": prof["TraceId"], "SpanId": prof["SpanId"], "inv": rec["invocation_id"]}]
