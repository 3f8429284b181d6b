"""The ``wasmscope collect`` process: the store, its writer, the OTLP receivers, the
dashboard and ``/metrics``, started and stopped in one order.

Start: open the store (chDB takes the data folder's lock: a second collector on it
stops here with a clear message), create the missing tables, start the writer, the
gRPC receiver, then uvicorn with :class:`~wasmscope.collect.app.CollectApp`. The
banner with the URLs is printed once uvicorn listens. Stop (Ctrl-C, SIGTERM):
uvicorn stops taking requests and finishes those in flight, then gRPC, then the
writer flushes what it accepted, then the store closes.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from wasmscope.collect.app import CollectApp
from wasmscope.collect.metrics import CollectorMetrics
from wasmscope.collect.receiver.counters import ReceiverCounters
from wasmscope.collect.store.schema import TABLES
from wasmscope.collect.store.store import Store, default_data_dir
from wasmscope.errors import UsageError

if TYPE_CHECKING:
    from wasmscope.collect.store.writer import GroupCommitWriter

__all__ = ["Collector"]

# With the log, a batch waits this long for more requests (the dashboard shows them
# a fraction of a second later; the store gets fewer, larger inserts).
WAL_LINGER = 0.25

log = logging.getLogger("wasmscope.collect")


def _require_uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise UsageError("wasmscope collect needs uvicorn: install wasmscope[collect]") from None
    return uvicorn


def _human_seconds(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _redact(url: str) -> str:
    """``url`` without its password (the banner is often pasted into issues)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Collector:
    """Everything of one ``wasmscope collect``; :meth:`serve` blocks until stopped."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        grpc_port: int | None = 4317,
        receiver: bool = True,
        data_dir: str | None = None,
        store_url: str | None = None,
        database: str | None = None,
        cluster: str | None = None,
        token: str | None = None,
        retention: float | None = None,
        max_disk: int | None = None,
        log_level: str = "info",
        price: str = "aws-lambda-x86",
    ) -> None:
        from wasmscope.collect.dashboard import Dashboard
        from wasmscope.collect.receiver.grpc import GrpcReceiver
        from wasmscope.collect.receiver.http import OtlpHttpApp

        self.uvicorn = _require_uvicorn()
        self.host, self.port, self.log_level = host, port, log_level
        self.data_dir = data_dir if data_dir is not None or store_url is not None else str(default_data_dir())
        self.store = Store.open(
            data_dir=self.data_dir if store_url is None else None, url=store_url, database=database or "otel",
            cluster=cluster, retention=retention, max_disk=max_disk,
        )  # fmt: skip
        self.store_url = store_url
        self.writer = None
        self.grpc: GrpcReceiver | None = None
        self.counters = ReceiverCounters()
        try:
            if receiver or store_url is None:
                self.store.ensure_schema()
            else:
                self._warn_missing_tables()
            http_receiver = None
            self.http_receiver: OtlpHttpApp | None = None
            if receiver:
                self.writer = self._writer()
                http_receiver = self.http_receiver = OtlpHttpApp(self.writer, token=token, counters=self.counters)
                if grpc_port is not None:
                    self.grpc = GrpcReceiver(self.writer, host, grpc_port, token=token, counters=self.counters)
            self.metrics = CollectorMetrics(self.store, counters=self.counters if receiver else None, writer=self.writer)
            self.app = CollectApp(
                dashboard=Dashboard(self.store, token=token, price=price), receiver=http_receiver,
                metrics=self.metrics.render, token=token,
            )  # fmt: skip
        except BaseException:
            self.store.close()
            raise

    def _writer(self) -> GroupCommitWriter:
        """On the embedded store, a write-ahead log in the data folder lets the writer
        acknowledge a request once logged and insert large batches (:mod:`.store.wal`);
        on a server each request is acknowledged once inserted."""
        if self.store_url is not None:
            return self.store.writer(on_dropped=self._dropped)
        from wasmscope.collect.store.native import NativeIngest
        from wasmscope.collect.store.wal import WriteAheadLog

        assert self.data_dir is not None
        self.store.enable_insert_dedup()
        wal = WriteAheadLog(Path(self.data_dir) / "wal")
        # chDB decodes the logged trace and log requests itself (native.py): faster than
        # building Arrow columns in Python once batches are large, which the log makes them.
        native = NativeIngest(self.store.backend, self.store.database, Path(self.data_dir) / "scratch")
        return self.store.writer(on_dropped=self._dropped, wal=wal, linger=WAL_LINGER, native=native)

    def _warn_missing_tables(self) -> None:
        present = {
            str(r[0])
            for r in self.store.backend.query(
                "SELECT name FROM system.tables WHERE database = {db:String}", {"db": self.store.database}
            ).rows
        }
        missing = [t for t in TABLES if t not in present]
        if missing:
            log.warning(
                "collect: %s.%s missing: the pages that read them stay empty until an OpenTelemetry "
                "Collector's clickhouseexporter creates them", self.store.database, ", ".join(missing),
            )  # fmt: skip

    @staticmethod
    def _dropped(dropped: list[Any]) -> None:
        for d in dropped:
            log.warning("collect: --max-disk: dropped %s partition %s (%d rows, %d bytes)", d.table, d.partition, d.rows, d.bytes_on_disk)

    def banner(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        base = f"http://{host}:{port}"
        where = f"ClickHouse at {_redact(self.store_url)}" if self.store_url else f"chDB in {self.data_dir}"
        extra = []
        if self.store.retention_seconds:
            extra.append(f"retention {_human_seconds(self.store.retention_seconds)}")
        if self.store.max_disk:
            from wasmscope.runtime.limits import format_size

            extra.append(f"max-disk {format_size(self.store.max_disk)}")
        lines = [f"wasmscope collect: dashboard {base}/"]
        if self.writer is not None:
            lines.append(f"  OTLP/HTTP  {base}  (/v1/traces, /v1/metrics, /v1/logs)")
        if self.grpc is not None:
            lines.append(f"  OTLP/gRPC  {host}:{self.grpc.port}")
        lines.append(f"  metrics    {base}/metrics")
        lines.append(f"  store      {where}, database {self.store.database}" + (f" ({', '.join(extra)})" if extra else ""))
        return "\n".join(lines) + "\n"

    def serve(self, out: IO[str] = sys.stderr) -> int:
        """Serve until Ctrl-C or SIGTERM; 0 after a clean stop, 1 if it could not start."""
        uvicorn = self.uvicorn
        collector = self

        class Server(uvicorn.Server):  # type: ignore[misc,name-defined]
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    port = self.servers[0].sockets[0].getsockname()[1] if self.servers else collector.port
                    out.write(collector.banner(port))
                    out.flush()

            def handle_exit(self, sig: int, frame: Any) -> None:
                # A clean stop on SIGINT and SIGTERM (uvicorn would re-raise the signal
                # after its shutdown and kill the process before the writer flushed).
                me: Any = self
                if me.should_exit and sig == signal.SIGINT:
                    me.force_exit = True
                else:
                    me.should_exit = True

        if self.grpc is not None:
            try:
                self.grpc.start()
            except Exception as exc:
                out.write(f"wasmscope: error: OTLP/gRPC cannot listen on {self.host}:{self.grpc.port}: {exc} "
                          "(another collector? --grpc-port N, or 0 to turn it off)\n")  # fmt: skip
                return 1
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, lifespan="off", access_log=False,
            log_level="debug" if self.log_level == "debug" else "warning", server_header=False,
        )  # fmt: skip
        server = Server(config)
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind
            return 1
        return 0 if server.started else 1

    def close(self) -> None:
        """Stop gRPC, flush the writer, close the store; idempotent."""
        if self.grpc is not None:
            self.grpc.stop()
            self.grpc = None
        if self.http_receiver is not None:
            self.http_receiver.close()
            self.http_receiver = None
        self.store.close()
