"""The Store's own contract: where it lives, what it refuses, sizes, closing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.collect.store.test_columns import server_span, trace_request
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import Store as LazyStore
from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.store import Store, default_data_dir, tables_of
from wasmscope.errors import StoreError, UsageError


def test_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "wasmscope" / "collect"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".local" / "share" / "wasmscope" / "collect"


def test_the_package_exports_lazily() -> None:
    assert LazyStore is Store


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retention": 0},
        {"retention": -5},
        {"retention": dt.timedelta(seconds=-1)},
        {"max_disk": 0},
        {"cluster": "bad name"},
    ],
)
def test_bad_options_are_usage_errors(chdb_backend: ChdbBackend, kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        Store(chdb_backend, "otel", **kwargs)  # type: ignore[arg-type]


def test_bad_database_names_are_refused(chdb_backend: ChdbBackend) -> None:
    with pytest.raises(UsageError):
        Store(chdb_backend, "otel; DROP TABLE x")


def test_a_cluster_needs_a_server(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ClickHouse server"):
        Store.open(tmp_path, cluster="prod")


def test_retention_rounds_to_whole_seconds(chdb_backend: ChdbBackend) -> None:
    assert Store(chdb_backend, retention=dt.timedelta(days=7)).retention_seconds == 604800
    assert Store(chdb_backend, retention=0.2).retention_seconds == 1


def test_size_counts_rows_and_bytes_per_table(store: Store) -> None:
    assert store.size().bytes_on_disk == 0 and store.size().total_rows == 0
    store.write(Signal.TRACES, trace_request(server_span(), server_span(span_id=b"\x02" * 8)))
    size = store.size()
    assert size.rows == {"otel_traces": 2, "otel_traces_trace_id_ts": 1}
    assert size.bytes_on_disk == sum(size.table_bytes.values()) > 0


def test_a_request_of_the_wrong_signal_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot convert the traces request"):
        tables_of(Signal.TRACES, ExportLogsServiceRequest())


def test_a_closed_store_writes_nothing_and_leaves_a_shared_backend_open(
    chdb_backend: ChdbBackend, database: str
) -> None:
    store = Store(chdb_backend, database)
    store.ensure_schema()
    store.close()
    store.close()
    with pytest.raises(StoreError):
        store.write(Signal.TRACES, trace_request(server_span()))
    with pytest.raises(StoreError):
        store.writer()
    assert chdb_backend.query("SELECT 1").scalar() == 1  # not closed: the store did not own it
