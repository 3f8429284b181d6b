"""An HTTP server on 127.0.0.1 that answers POSTs from a script (status, headers,
body per request) and keeps what it received, decoded as ExportLogsServiceRequest;
plus servers that hang up or never answer. For the failure paths of pushes."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Got:
    path: str
    headers: dict[str, str]
    message: ExportLogsServiceRequest


@dataclass
class Scripted:
    url: str
    answers: list[Answer]
    received: list[Got]


@contextmanager
def scripted(*answers: Answer, tls: ssl.SSLContext | None = None) -> Iterator[Scripted]:
    """Answers in order; after the last one, the last one again. ``tls``: serve
    https with this server context."""
    script = list(answers) or [Answer()]
    received: list[Got] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            msg = ExportLogsServiceRequest()
            msg.ParseFromString(body)
            received.append(Got(self.path, {k.lower(): v for k, v in self.headers.items()}, msg))
            a = script[min(len(received), len(script)) - 1]
            self.send_response(a.status)
            for k, v in a.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(a.body)))
            self.end_headers()
            self.wfile.write(a.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield Scripted(f"{scheme}://127.0.0.1:{server.server_address[1]}", script, received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def raw_server(mode: str) -> Iterator[str]:
    """``mode`` "hangup": read the request, close without answering; "silent": accept
    and never answer (until the test ends)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def loop() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if mode == "hangup":
                conn.settimeout(2)
                with suppress(OSError):
                    conn.recv(65536)
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for c in held:
            c.close()
        sock.close()
