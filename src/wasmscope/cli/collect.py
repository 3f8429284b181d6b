"""``wasmscope collect``: an OTLP collector, an embedded ClickHouse store and the
dashboard, in one process (:mod:`wasmscope.collect`).

The only module that starts the collector's servers (uvicorn for OTLP/HTTP, the
dashboard and ``/metrics``; grpcio for OTLP/gRPC). Exit status: 0 after a clean
stop (Ctrl-C, SIGTERM), 1 when it cannot start (a port in use, the store taken by
another process or unreachable), 2 for a usage error (bad option, missing extra,
a non-loopback address without a token).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from wasmscope.cli import EXIT_USAGE, CommandError

HELP = "receive OTLP (HTTP and gRPC), keep it in embedded ClickHouse, show it in a dashboard made for Wasm"

DESCRIPTION = """\
Receive, keep and show the telemetry of WebAssembly functions, in one process:

  - an OTLP receiver: OTLP/HTTP on 127.0.0.1:4318 (/v1/traces, /v1/metrics,
    /v1/logs; protobuf or JSON, gzip) and OTLP/gRPC on 127.0.0.1:4317, answering
    as the OTLP specification says (partial success, 400, 413, 415, and 429 or
    503 with Retry-After when the store falls behind);
  - a store in the OpenTelemetry Collector's ClickHouse exporter schema
    (otel_traces, otel_logs, otel_metrics_*): embedded ClickHouse (chDB) in
    --data DIR by default, or a ClickHouse server with --store URL. A success
    answer means the data is in the store: kill -9 loses nothing acknowledged;
  - the dashboard on the same port as OTLP/HTTP: functions (rate, errors,
    p50/p95/p99, cold starts, outcomes), function detail (latency, fuel and
    memory against their limits, top traps by frame), invocation search, traces
    with the guest's stack and output, modules, profiles, live tail, metrics,
    security events, and cost (per function and over time under --price, with
    right-sizing recommendations);
  - /metrics: the collector's own counters in the Prometheus text format.

Point any sender at it: `wasmscope run/serve/profile --otlp
http://127.0.0.1:4318`, an OpenTelemetry SDK (OTEL_EXPORTER_OTLP_ENDPOINT) or
an OpenTelemetry Collector's otlp/otlphttp exporter.

Safe by default: it listens on 127.0.0.1 only. Listening on any other address
needs a token (--token-file FILE or $WASMSCOPE_TOKEN): OTLP senders then send
`Authorization: Bearer TOKEN`, the dashboard asks for the token once.

Needs the collect extra: pip install 'wasmscope[collect]' (and
'wasmscope[clickhouse]' for --store clickhouse://...).
"""

EPILOG = """\
examples:
  wasmscope collect                                 everything on 127.0.0.1, data in the default folder
  wasmscope collect --data ./telemetry --retention 7d --max-disk 5GiB
  wasmscope serve app.toml --otlp http://127.0.0.1:4318     send serve's traces to it
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc python app.py
  wasmscope collect --store clickhouse://user:pass@ch:8123/otel     a ClickHouse server
  wasmscope collect --store clickhouse://ch:8123/otel --no-receiver   a dashboard over tables an
                                                                   OpenTelemetry Collector fills
  WASMSCOPE_TOKEN=$(openssl rand -hex 16) wasmscope collect --host 0.0.0.0   reachable from the LAN
  wasmscope collect --price cloud-run               the Cost page priced as Cloud Run by default

the data folder (--data): $XDG_DATA_HOME/wasmscope/collect, else
~/.local/share/wasmscope/collect. One process owns it at a time; a second
`wasmscope collect` on the same folder says which process has it.

exit status:
  0 stopped cleanly (Ctrl-C, SIGTERM); 1 could not start (port in use, store
  taken or unreachable); 2 usage error (bad option, missing extra, an exposed
  address without a token)
"""

TOKEN_ENV = "WASMSCOPE_TOKEN"
DEFAULT_PRICE = "aws-lambda-x86"


def configure(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("listening")
    g.add_argument("--host", default="127.0.0.1", help="address of OTLP/HTTP, the dashboard and /metrics (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=4318, help="port of OTLP/HTTP, the dashboard and /metrics (default 4318)")
    g.add_argument("--grpc-port", type=int, default=4317, help="port of OTLP/gRPC on the same address (default 4317; 0 turns it off)")
    g.add_argument("--no-receiver", action="store_true", help="no OTLP receiver: only the dashboard, over tables something else fills")
    g.add_argument("--token-file", metavar="FILE", help=f"the token that senders and the dashboard must present (else ${TOKEN_ENV})")
    g = p.add_argument_group("store")
    g.add_argument("--data", metavar="DIR", help="the embedded store's folder (default: see below)")
    g.add_argument("--store", metavar="URL", help="a ClickHouse server instead: clickhouse://user:pass@host:8123/db (or https://...)")
    g.add_argument("--database", default=None, metavar="NAME", help="database of the tables (default: otel, or the URL's)")
    g.add_argument("--cluster", metavar="NAME", help="with --store: create the tables ON CLUSTER NAME, replicated")
    g.add_argument("--retention", metavar="DURATION", help="keep data this long (a TTL: 7d, 48h, 30m; default: forever)")
    g.add_argument("--max-disk", metavar="SIZE", help="drop the oldest days first past this size on disk (e.g. 5GiB)")
    g = p.add_argument_group("dashboard")
    g.add_argument("--price", metavar="SHEET", default=DEFAULT_PRICE,
                   help=f"the Cost page's price sheet: a shipped one or FILE.toml (default {DEFAULT_PRICE}; "
                        "the page's ?price= picks another shipped one)")  # fmt: skip
    g = p.add_argument_group("logging")
    g.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info", help="log level (default info)")


def parse_retention(text: str) -> float:
    """Seconds from ``7d``, ``2w``, ``48h``, ``30m`` or anything :func:`parse_duration` takes."""
    from wasmscope.runtime.limits import parse_duration

    units = {"d": 86400.0, "w": 7 * 86400.0}
    stripped = text.strip().lower()
    if stripped and stripped[-1] in units and stripped[:-1].replace(".", "", 1).isdigit():
        value = float(stripped[:-1]) * units[stripped[-1]]
        if value > 0:
            return value
    return parse_duration(text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: str | None) -> str | None:
    """The token from ``--token-file`` (first line) or ``$WASMSCOPE_TOKEN``; never argv,
    where every user of the machine could read it."""
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                token = f.readline().strip()
        except OSError as exc:
            raise CommandError(f"--token-file {path}: {exc.strerror or exc}", EXIT_USAGE) from None
        if not token:
            raise CommandError(f"--token-file {path}: the file is empty", EXIT_USAGE)
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def check_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options as the collector's settings, or a :class:`CommandError` (exit 2)."""
    from wasmscope.errors import UsageError
    from wasmscope.runtime.limits import parse_size

    for option, port in (("--port", args.port), ("--grpc-port", args.grpc_port)):
        if not 0 <= port <= 65535:
            raise CommandError(f"{option} {port}: expected 0-65535", EXIT_USAGE)
    if args.data is not None and args.store is not None:
        raise CommandError("--data and --store exclude each other (--data is the embedded store's folder)", EXIT_USAGE)
    if args.cluster is not None and args.store is None:
        raise CommandError("--cluster needs --store (the embedded store is one node)", EXIT_USAGE)
    token = read_token(args.token_file)
    if token is None and not is_loopback(args.host):
        raise CommandError(
            f"--host {args.host} exposes the collector beyond this machine: set a token first "
            f"(--token-file FILE or ${TOKEN_ENV}); senders then send 'Authorization: Bearer TOKEN'",
            EXIT_USAGE,
        )
    try:
        retention = parse_retention(args.retention) if args.retention else None
        max_disk = parse_size(args.max_disk) if args.max_disk else None
    except UsageError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    if max_disk is not None and max_disk <= 0:
        raise CommandError(f"--max-disk {args.max_disk}: expected a size above 0", EXIT_USAGE)
    return {"token": token, "retention": retention, "max_disk": max_disk, "price": check_price(args.price)}


def check_price(price: str) -> str:
    """``--price``: a shipped sheet's name is taken as it is (numpy, the cost extra, is
    only needed once the Cost page is opened); a file is read now, so that a bad sheet
    stops the start (exit 2) rather than the page."""
    import re
    from importlib import resources

    from wasmscope.errors import UsageError

    if re.fullmatch(r"[a-z0-9][a-z0-9-]*", price) and (
        resources.files("wasmscope.cost").joinpath("data", "prices", f"{price}.toml").is_file()
    ):
        return price
    try:
        from wasmscope.cost.prices import load_price_sheet

        load_price_sheet(price)
    except UsageError as exc:
        raise CommandError(f"--price {price}: {exc}", EXIT_USAGE) from None
    return price


def _missing_extra(exc: ImportError) -> CommandError:
    """The usage error for a package of the collect extra that is not installed."""
    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
    missing = cause.name or "a package"
    return CommandError(
        f"wasmscope collect needs the collect extra ({missing} is missing): pip install 'wasmscope[collect]'",
        EXIT_USAGE,
    )


def run(args: argparse.Namespace) -> int:
    from wasmscope.errors import StoreLockedError, UsageError, WasmscopeError

    settings = check_options(args)
    try:
        from wasmscope.collect.server import Collector
    except ImportError as exc:
        raise _missing_extra(exc) from None
    try:
        collector = Collector(
            host=args.host,
            port=args.port,
            grpc_port=None if args.no_receiver or args.grpc_port == 0 else args.grpc_port,
            receiver=not args.no_receiver,
            data_dir=args.data,
            store_url=args.store,
            database=args.database,
            cluster=args.cluster,
            log_level=args.log_level,
            **settings,
        )
    except ImportError as exc:  # the receiver and the store import their packages when built
        raise _missing_extra(exc) from None
    except UsageError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except StoreLockedError as exc:
        raise CommandError(str(exc), 1) from None
    except WasmscopeError as exc:
        raise CommandError(str(exc), 1) from None
    try:
        return collector.serve(out=sys.stderr)
    finally:
        collector.close()
