"""The ClickHouse server backend: URL parsing always; the contract against a real server
only when ``WASMSCOPE_TEST_CLICKHOUSE_URL`` names one (``clickhouse://user:pass@host:8123``),
since none can run here. The SQL it shares with chDB is tested through chDB."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.collect.store.test_columns import ANY_VALUES, kv, server_span, trace_request
from tests.collect.store.test_schema import EXPECTED
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store.server import ServerBackend, parse_url
from wasmscope.collect.store.store import Store
from wasmscope.errors import UsageError

URL = os.environ.get("WASMSCOPE_TEST_CLICKHOUSE_URL")


def test_store_urls() -> None:
    assert parse_url("clickhouse://u:p%40ss@db.example:9000/otel") == {
        "host": "db.example",
        "port": 9000,
        "username": "u",
        "password": "p@ss",
        "secure": False,
        "database": "otel",
    }
    secure = parse_url("https://ch.example/")
    assert secure["secure"] and secure["port"] == 8443 and secure["username"] == "default"
    assert parse_url("clickhouse://h")["port"] == 8123
    for bad in ("postgres://h/db", "clickhouse:///db", "clickhouse://h/bad-name;drop"):
        with pytest.raises(UsageError):
            parse_url(bad)


needs_server = pytest.mark.skipif(not URL, reason="WASMSCOPE_TEST_CLICKHOUSE_URL is not set")


@pytest.fixture
def server_store() -> Iterator[Store]:
    assert URL
    database = f"t_{uuid.uuid4().hex[:12]}"
    backend = ServerBackend(URL)
    store = Store(backend, database, owns_backend=True)
    store.ensure_schema()
    yield store
    backend.command(f"DROP DATABASE IF EXISTS {database}")
    store.close()


@needs_server
def test_server_schema_is_the_exporters(server_store: Store) -> None:
    rows = server_store.backend.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String}"
        " ORDER BY table, position",
        {"db": server_store.database},
    ).rows
    found: dict[str, list[tuple[str, str]]] = {}
    for table, name, type_ in rows:
        found.setdefault(table, []).append((name, type_))
    assert found == EXPECTED


@needs_server
def test_server_round_trip_and_size(server_store: Store) -> None:
    attrs = [kv(name, value) for name, value, _ in ANY_VALUES]
    server_store.write(Signal.TRACES, trace_request(server_span(attributes=attrs)))
    got = server_store.backend.query(
        f"SELECT SpanAttributes FROM {server_store.database}.otel_traces WHERE SpanName = {{n:String}}",
        {"n": "GET /hello"},
    ).scalar()
    assert got == {name: text for name, _, text in ANY_VALUES}
    assert server_store.size().rows["otel_traces"] == 1
    writer = server_store.writer()
    writer.deliver(Signal.TRACES, trace_request(server_span(span_id=b"\x07" * 8)), 1)
    assert server_store.size().rows["otel_traces"] == 2
