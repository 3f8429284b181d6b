"""``wasmscope collect``: an OTLP collector with an embedded ClickHouse store and a
dashboard made for Wasm.

Subpackages, one concept each:

- :mod:`.receiver`: OTLP/HTTP (ASGI) and OTLP/gRPC, to the letter of the OTLP
  specification; hands validated requests to a :class:`~.receiver.sink.Sink`.
  Shared with ``wasmscope agent``.
- :mod:`.store`: the OpenTelemetry Collector ``clickhouseexporter`` schema on a
  :class:`~.store.backend.Backend` (chDB embedded, or a ClickHouse server),
  the writer that makes an acknowledged request durable, retention, queries.
- :mod:`.dashboard`: the server-rendered pages (Functions, Invocations, Trace, ...).

This is the only package that imports ``chdb``, ``grpc``, ``clickhouse_connect``
and ``jinja2``: install them with ``pip install 'wasmscope[collect]'``.
"""
