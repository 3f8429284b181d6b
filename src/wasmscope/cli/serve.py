"""``wasmscope serve MANIFEST_OR_DIR``: WAGI handlers over HTTP (uvicorn + the ASGI
app of :mod:`wasmscope.gateway`).

The only module that imports uvicorn (the ``serve`` extra). Access log lines (JSON,
one per request) go to stdout; the server's and the handlers' messages to stderr.
Exit status: 0 after a clean stop (Ctrl-C, SIGTERM), 1 when the server cannot start
(a module that does not compile, a port in use), 2 for a usage error (bad manifest,
missing extra).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from wasmscope.cli import EXIT_USAGE, CommandError
from wasmscope.cli._options import (
    add_engine_options,
    add_guard_options,
    add_telemetry_options,
    guard_config,
    guard_wanted,
    telemetry_options,
)
from wasmscope.errors import UsageError

HELP = "serve WAGI handlers (Wasm modules) over HTTP, a fresh instance per request"

DESCRIPTION = """\
Serve WebAssembly handlers over HTTP with the WAGI convention (CGI 1.1): the
request arrives as environment variables (REQUEST_METHOD, PATH_INFO,
QUERY_STRING, HTTP_*, ...), argv (the path, then the query items) and the body
on stdin; the handler prints headers (content-type, location, status), a blank
line, then the body.

Every request runs in a fresh instance of the route's module (compiled once,
pre-linked), under the route's limits: a handler past its timeout answers 504;
a trap, out of fuel, out of memory or a stack overflow 500; output over
max_response_bytes 502; a body over max_request_bytes 413; a route at its
max_concurrency 503 with Retry-After (requests never queue). Error bodies are
short JSON with the outcome and the invocation id, never the guest's output.

MANIFEST_OR_DIR is a TOML manifest (below) or a folder: each *.wasm file in it
is served at /<name> with the default limits. /healthz answers while the
process runs, /readyz once every module is compiled, /metrics in the Prometheus
text format (summed over the processes of --workers N). With telemetry, every
request gets an HTTP server span, parent of the invocation span.

Hot reload (on unless --no-reload): every --reload-interval seconds (default
1) the manifest (or the folder's *.wasm listing) and every route's module file
are checked (os.stat). A change is loaded once the files stop changing for one
interval, then compiled off the request path and swapped in atomically: new
requests get the new version, requests already running finish on the old one,
none is dropped; /readyz stays 200. Routes, limits, env, keys and auth in the
manifest all apply. A module that does not compile or a manifest with a mistake
is logged as an error and the previous version keeps serving (a reload is all
or nothing). Each request runs the module as it was compiled, never a file
half-written on disk; still, prefer writing a new file and renaming it over
the old one. One INFO line per reload: what changed, the modules' sha256
prefixes and the compile time. With --workers N each worker watches for itself.

uvicorn and prometheus-client come with the plain install.
"""

EPILOG = """\
example manifest (app.toml; paths are relative to it):

  [server]                        # defaults of every route
  timeout = "10s"                 # instantiate + run (default 30s)
  memory_limit = "128MiB"         # per linear memory (default 256MiB)
  max_concurrency = 8             # instances at once per route (default 8)

  [[route]]
  path = "/hello"                 # exact path
  module = "hello.wasm"

  [[route]]
  path = "/api/..."               # /api and everything below it
  module = "api.wasm"
  argv = ["--json"]               # after argv[0], before the query items
  env = { MODE = "prod" }
  dirs = ["static::/static", "data::/data:rw"]   # read-only unless :rw
  timeout = "2s"
  fuel = "1e9"
  max_request_bytes = "1MiB"      # default 1MiB
  max_response_bytes = "8MiB"     # default 16MiB (headers + body)
  max_concurrency = 4
  auth = "key"                    # needs an API key ([server] auth = "key": all)

  [[key]]                         # only the hash: wasmscope serve --hash-key
  id = "ci"                       # in the access log
  hash = "scrypt$16384$8$1$...$..."
  routes = ["/api/..."]           # or "*"; another route: 403, no key: 401
  rate = "10/s"                   # optional (and burst = N); over it: 429

examples:
  wasmscope serve app.toml --port 8080
  wasmscope serve handlers/                     every handlers/*.wasm at /<name>
  wasmscope serve app.toml --otlp http://127.0.0.1:4318   a trace per request
  wasmscope serve app.toml --workers 4          4 processes; curl .../metrics
  wasmscope serve app.toml --usage-price aws-lambda-arm64   at Ctrl-C: usage and cost per route
  wasmscope serve app.toml --reload-interval 0.25   pick up changes faster
  wasmscope serve app.toml --no-reload          never look at the files again
  cp new.wasm api.wasm.tmp && mv api.wasm.tmp api.wasm   an atomic update
  curl -i 'http://127.0.0.1:8080/hello?world'
  wasmscope serve --hash-key --key-id ci        a new key (stderr), its [[key]] (stdout)
  wasmscope serve app.toml --tls-cert cert.pem --tls-key key.pem     HTTPS
  curl -H "Authorization: Bearer $KEY" https://127.0.0.1:8080/api/x

exit status:
  0 stopped cleanly (Ctrl-C, SIGTERM); 1 the server could not start (a module
  that does not compile, a port in use); 2 usage error (bad manifest, option,
  or the serve extra missing)
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="MANIFEST_OR_DIR", nargs="?", help="a TOML manifest, or a folder of *.wasm handlers")
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    g.add_argument("--no-access-log", action="store_true", help="do not print the JSON access log on stdout")
    g.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info", help="server log level (default info)")
    g.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain) file; needs --tls-key")
    g.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    g.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1); /metrics sums over them")
    g = p.add_argument_group("hot reload")
    g.add_argument(
        "--reload-interval", type=float, default=1.0, metavar="SECONDS",
        help="how often to check the manifest and the modules for changes (default 1); each --workers worker checks for itself",
    )  # fmt: skip
    g.add_argument("--no-reload", action="store_true", help="serve what was loaded at start; never look at the files again")
    g = p.add_argument_group("API keys")
    g.add_argument("--hash-key", action="store_true", help="print a [[key]] table for the key read on stdin (or a new random key, printed once on stderr) and exit")
    g.add_argument("--key-id", metavar="ID", default="key", help="the id of --hash-key's table (default: key)")
    add_telemetry_options(p)
    g = p.add_argument_group("usage and cost")
    g.add_argument("--usage", action="store_true",
                   help="at shutdown, print the usage of the requests served per route: wall time, CPU time, "
                   "fuel and peak memory (min/avg/p50/p95/p99/max) and the totals")  # fmt: skip
    g.add_argument("--usage-price", metavar="SHEET",
                   help="price that usage with a price sheet (aws-lambda-x86, ..., or FILE.toml); implies --usage")  # fmt: skip
    g.add_argument("--usage-json", metavar="FILE", help="also write the usage summary as JSON to FILE; implies --usage")
    add_guard_options(p, serve=True)
    add_engine_options(p, memory_stats=False, pooling=True)


def require_uvicorn() -> Any:
    """The uvicorn module, or a :class:`UsageError` that says how to install it."""
    from wasmscope.errors import UsageError

    try:
        import uvicorn
    except ImportError:
        raise UsageError("wasmscope serve needs uvicorn, which comes with wasmscope: pip install --force-reinstall wasmscope") from None
    return uvicorn


def _logging(level: str, access: bool) -> None:
    base = logging.getLogger("wasmscope")
    if not any(getattr(h, "_wasmscope_serve", False) for h in base.handlers):
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(logging.Formatter("wasmscope: %(levelname)s: %(message)s"))
        err._wasmscope_serve = True  # type: ignore[attr-defined]
        base.addHandler(err)
    base.setLevel(level.upper())
    acc = logging.getLogger("wasmscope.access")
    acc.propagate = False
    acc.handlers.clear()
    if access:
        out = logging.StreamHandler(sys.stdout)
        out.setFormatter(logging.Formatter("%(message)s"))
        acc.addHandler(out)
        acc.setLevel(logging.INFO)
    else:
        acc.setLevel(logging.CRITICAL + 1)


def _server_class(uvicorn: Any) -> Any:
    base: Any = uvicorn.Server

    class Server(base):  # type: ignore[misc]
        """uvicorn's server, for which Ctrl-C and SIGTERM are a clean stop: uvicorn itself
        re-raises the signal after its graceful shutdown, which would kill the process
        before the telemetry is flushed (and exit with -15 instead of 0)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            server: Any = self
            if server.should_exit and sig == signal.SIGINT:
                server.force_exit = True  # a second Ctrl-C: stop waiting for requests
            else:
                server.should_exit = True

    return Server


def run(args: argparse.Namespace) -> int:
    from wasmscope.errors import WasmscopeError
    from wasmscope.runtime.engine import RuntimeUnavailable

    if args.hash_key:
        return _hash_key(args.key_id)
    if args.target is None:
        raise CommandError("missing MANIFEST_OR_DIR (a TOML manifest or a folder of *.wasm handlers)", EXIT_USAGE)
    tls = _tls_options(args.tls_cert, args.tls_key)
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port}: expected 0-65535", EXIT_USAGE)
    try:
        uvicorn = require_uvicorn()
        if args.workers < 1:
            raise CommandError(f"--workers {args.workers}: expected 1 or more", EXIT_USAGE)
        if not args.reload_interval > 0 or args.reload_interval == float("inf"):
            raise CommandError(f"--reload-interval {args.reload_interval}: expected a number of seconds above 0", EXIT_USAGE)
        usage = _usage_setup(args)
        if args.workers > 1:
            return _run_workers(uvicorn, args, tls, usage)
        asgi, app, telemetry = build_app(args)
    except RuntimeUnavailable as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    except WasmscopeError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None

    _logging(args.log_level, not args.no_access_log)
    config = uvicorn.Config(
        asgi, **tls, host=args.host, port=args.port, lifespan="on", access_log=False, log_level=args.log_level,
        server_header=False,
    )  # fmt: skip
    server = _server_class(uvicorn)(config)
    try:
        server.run()
    except SystemExit:  # uvicorn exits (code 1 or 3) when it cannot bind or start the app
        return 1
    finally:
        app.close()
        if telemetry is not None:
            telemetry.shutdown()
    if not server.started:
        raise CommandError("the server did not start (see the messages above)", 1)
    if usage is not None:
        from wasmscope.cost.accounting import UsageTap

        if isinstance(app.telemetry, UsageTap):
            usage.report(app.telemetry.account.table())
    return 0


_USAGE_ENV = "WASMSCOPE_SERVE_USAGE_DIR"  # where each worker of --workers N leaves its usage


def wants_usage(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "usage", False) or getattr(args, "usage_price", None) or getattr(args, "usage_json", None))


class _UsageReport:
    """``--usage``: the price sheet (loaded at start: a bad one is a usage error before
    serving), and the summary printed (and written) at shutdown."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.price: str | None = args.usage_price
        self.json_path: str | None = args.usage_json
        self.sheet: Any = None
        if self.price is not None:
            from wasmscope.cli.cost import load_sheet

            self.sheet = load_sheet(self.price)
        else:
            from wasmscope.cost import records  # noqa: F401  (numpy missing: say so now)

    def report(self, table: Any) -> None:
        from wasmscope.cli.cost import render_summary
        from wasmscope.cli.render import Style
        from wasmscope.cost.summary import summarize
        from wasmscope.errors import UsageError

        if len(table) == 0:
            sys.stderr.write("wasmscope serve: usage: no request ran a handler\n")
            return
        try:
            summary = summarize(table, self.sheet)
        except UsageError as exc:  # a memory-time sheet and a route without a memory limit
            sys.stderr.write(f"wasmscope serve: usage not priced: {exc}\n")
            summary = summarize(table)
        sys.stderr.write(render_summary(summary, Style.for_stream(sys.stderr), title="wasmscope serve usage"))
        sys.stderr.flush()
        if self.json_path is not None:
            try:
                with open(self.json_path, "w", encoding="utf-8") as f:
                    json.dump(summary.to_json(), f, indent=2)
                    f.write("\n")
            except OSError as exc:
                sys.stderr.write(f"wasmscope serve: --usage-json {self.json_path}: {exc.strerror or exc}\n")


def _usage_setup(args: argparse.Namespace) -> _UsageReport | None:
    return _UsageReport(args) if wants_usage(args) else None


_ARGS_ENV = "WASMSCOPE_SERVE_ARGS"  # the options, as JSON, for the workers of --workers N
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def build_app(args: argparse.Namespace, metrics_dir: str | None = None) -> tuple[Any, Any, Any]:
    """(the ASGI app to serve, its Gateway, its Telemetry or None): the Gateway inside
    the API-key middleware, the metrics middleware (``/metrics``; multi-process with
    ``metrics_dir``) and, with telemetry, the HTTP server span middleware. The
    middlewares read the manifest of each request's version from the gateway, so hot
    reloads apply to them; with reloading on, the API-key middleware is always there
    (a reload may turn auth on)."""
    from wasmscope.gateway.app import Gateway
    from wasmscope.gateway.auth import wrap
    from wasmscope.gateway.manifest import load

    manifest = load(args.target)
    tel_opts = telemetry_options(args)
    telemetry = None
    if tel_opts is not None:
        from wasmscope.telemetry import Telemetry

        guarded = guard_wanted(args) or any(r.policy is not None for r in manifest.routes)
        telemetry = Telemetry.from_options(trigger="http", sanitize_output=guarded, **tel_opts)
    reload = not getattr(args, "no_reload", False)
    interval = getattr(args, "reload_interval", None) or 1.0
    # The routes' policies come with the manifest; the options add the audit, the
    # baseline, the sinks (and a default policy) to every route.
    guard = guard_config(args, None) if guard_wanted(args) else None
    gateway = Gateway(
        manifest, telemetry=telemetry, cache=not args.no_cache, cache_dir=args.cache_dir,
        reload_interval=interval if reload else None, pooling=not getattr(args, "no_pooling", False), guard=guard,
    )  # fmt: skip
    asgi: Any = wrap(gateway, manifest, always=reload)
    try:
        from wasmscope.gateway.metrics import Metrics, MetricsMiddleware

        asgi = MetricsMiddleware(asgi, Metrics(metrics_dir), gateway=gateway)
    except UsageError as exc:  # prometheus_client missing: serve without /metrics
        logging.getLogger("wasmscope.gateway").warning("serve: no /metrics: %s", exc)
    if wants_usage(args):
        from wasmscope.cost.accounting import UsageAccount, UsageTap

        # In front of the metrics' tap: one more append per handler run.
        gateway.telemetry = UsageTap(gateway.telemetry, UsageAccount())
    if telemetry is not None:
        from wasmscope.gateway.tracing import TracingMiddleware

        asgi = TracingMiddleware(asgi, telemetry, gateway=gateway)
    return asgi, gateway, telemetry


def worker_app() -> Any:
    """uvicorn's app factory in each worker process of ``--workers N`` (spawned: the
    Telemetry and the metrics are made here, after the worker started)."""
    args = argparse.Namespace(**json.loads(os.environ[_ARGS_ENV]))
    _logging(args.log_level, not args.no_access_log)
    asgi, gateway, telemetry = build_app(args, os.environ[_METRICS_ENV])
    usage_dir = os.environ.get(_USAGE_ENV)
    if telemetry is None and usage_dir is None:
        return asgi

    def at_shutdown() -> None:
        if telemetry is not None:
            telemetry.shutdown()
        if usage_dir is not None:
            from wasmscope.cost.accounting import UsageTap

            if isinstance(gateway.telemetry, UsageTap):
                gateway.telemetry.account.write_jsonl(os.path.join(usage_dir, f"{os.getpid()}.jsonl"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        """A worker process ends with os._exit (no atexit hook runs): the Telemetry is
        flushed and shut down, and the usage written, at the end of the lifespan."""
        if scope.get("type") != "lifespan":
            await asgi(scope, receive, send)
            return

        async def send_then_flush(message: Any) -> None:
            if message.get("type") == "lifespan.shutdown.complete":
                import asyncio

                await asyncio.to_thread(at_shutdown)
            await send(message)

        await asgi(scope, receive, send_then_flush)

    return app


def _run_workers(uvicorn: Any, args: argparse.Namespace, tls: dict[str, str], usage: _UsageReport | None = None) -> int:
    """``--workers N``: N uvicorn worker processes on one socket; metrics summed over
    them through files in a temporary folder removed at the end (and, with ``--usage``,
    each worker's usage as JSON lines there, summed at the end)."""
    import shutil
    import tempfile

    from uvicorn.supervisors import Multiprocess

    from wasmscope.gateway.manifest import load
    from wasmscope.gateway.metrics import require

    load(args.target)  # usage errors here, once, not in every worker
    telemetry_options(args)
    require()
    metrics_dir = tempfile.mkdtemp(prefix="wasmscope-metrics-")
    saved = {k: os.environ.get(k) for k in (_ARGS_ENV, _METRICS_ENV, _USAGE_ENV)}
    os.environ[_METRICS_ENV] = metrics_dir
    usage_dir = None
    if usage is not None:
        usage_dir = os.path.join(metrics_dir, "usage")
        os.mkdir(usage_dir)
        os.environ[_USAGE_ENV] = usage_dir
    os.environ[_ARGS_ENV] = json.dumps({k: v for k, v in vars(args).items() if v is None or isinstance(v, str | int | float | bool | list)})
    _logging(args.log_level, not args.no_access_log)
    try:
        config = uvicorn.Config(
            "wasmscope.cli.serve:worker_app", factory=True, workers=args.workers, **tls, host=args.host, port=args.port,
            lifespan="on", access_log=False, log_level=args.log_level, server_header=False,
        )  # fmt: skip
        try:
            sock = _tcp_socket(config.bind_socket())
        except SystemExit:
            return 1
        Multiprocess(config, sockets=[sock]).run()
        if usage is not None and usage_dir is not None:
            usage.report(_workers_usage(usage_dir))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _workers_usage(folder: str) -> Any:
    """The usage the workers left in ``folder``, as one table."""
    from wasmscope.cost.records import UsageTable, read_usage

    paths = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".jsonl"))
    return UsageTable.concat([read_usage(p) for p in paths if os.path.getsize(p) > 0])


def _tcp_socket(sock: socket.socket) -> socket.socket:
    """uvicorn's ``bind_socket()`` leaves ``proto`` at 0; accepted connections inherit
    it and asyncio only sets TCP_NODELAY on IPPROTO_TCP sockets, so every keep-alive
    request after the first would wait ~40 ms for a delayed ACK (uvicorn #3149).
    Wrapped again from its descriptor, the socket reports the kernel's protocol."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        return socket.socket(fileno=sock.detach())
    return sock


def _tls_options(cert: str | None, key: str | None) -> dict[str, str]:
    """uvicorn's ``ssl_certfile`` / ``ssl_keyfile``; both or neither."""
    import os

    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise CommandError("--tls-cert and --tls-key go together", EXIT_USAGE)
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not os.path.isfile(path):
            raise CommandError(f"{option} {path}: no such file", EXIT_USAGE)
    return {"ssl_certfile": cert, "ssl_keyfile": key}


def _hash_key(key_id: str) -> int:
    """``--hash-key``: the key from stdin (or a new one, shown once on stderr) -> a
    ``[[key]]`` table on stdout, with its hash only."""
    from wasmscope.gateway.keys import generate_key, hash_key
    from wasmscope.gateway.manifest import key_table

    if sys.stdin is None or sys.stdin.isatty():
        key = generate_key()
        print(f"wasmscope: a new API key (shown once; the manifest keeps only its hash):\n{key}", file=sys.stderr)
    else:
        key = sys.stdin.read().strip()
        if not key:
            raise CommandError("--hash-key: the key on stdin is empty (on a terminal, --hash-key makes a new one)", EXIT_USAGE)
    sys.stdout.write(key_table(key_id, hash_key(key)))
    return 0
