"""The one HTTP application of ``wasmscope collect``: OTLP/HTTP, ``/metrics``, health
and the dashboard on one port.

========================  ==============================================================
``/v1/traces|metrics|logs``  the OTLP/HTTP receiver (404 with ``--no-receiver``)
``/metrics``                 the collector's own counters, Prometheus text format
``/healthz``                 200 while the process runs
anything else                the dashboard (a ``Server-Timing`` header gives its time)
========================  ==============================================================

With a token, ``/metrics`` needs ``Authorization: Bearer TOKEN`` like OTLP (the
receiver checks its own); the dashboard has its own login.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from wasmscope._asgi import ASGIApp, Message, Receive, Scope, Send
from wasmscope.collect.receiver.auth import bearer_ok

__all__ = ["CollectApp"]

METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


async def _plain(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8",
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"x-content-type-options", b"nosniff"), *(extra or [])]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _authorization(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bytes(value)
    return None


class CollectApp:
    """Routes one port's requests to the receiver, ``/metrics`` or the dashboard."""

    def __init__(
        self,
        *,
        dashboard: ASGIApp,
        metrics: Callable[[], bytes],
        receiver: ASGIApp | None = None,
        token: str | None = None,
    ) -> None:
        self.dashboard = dashboard
        self.receiver = receiver
        self.metrics = metrics
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: the dashboard answers it
            await self.dashboard(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/"):
            if self.receiver is None:
                await _plain(send, 404, b"this collector runs without an OTLP receiver (--no-receiver)\n")
            else:
                await self.receiver(scope, receive, send)
        elif path == "/metrics":
            if not bearer_ok(_authorization(scope), self.token):
                await _plain(send, 401, b"missing or wrong bearer token\n", extra=[(b"www-authenticate", b"Bearer")])
            else:
                # Off the event loop: it may query the store's size.
                await _plain(send, 200, await asyncio.to_thread(self.metrics), METRICS_CONTENT_TYPE)
        elif path == "/healthz":
            await _plain(send, 200, b"ok\n")
        else:
            await self._timed(self.dashboard, scope, receive, send)

    async def _timed(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Adds ``Server-Timing: app;dur=MS`` (time to the response start) so that a
        browser's devtools and the benchmark read the server's share."""
        t0 = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - t0) * 1000.0
                headers = list(message.get("headers", ()))
                headers.append((b"server-timing", f"app;dur={ms:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, timed_send)
