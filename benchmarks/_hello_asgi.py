"""The peer of ``benchmarks/serve.py``: a plain Python "hello" endpoint as a raw ASGI
app (no framework), answering every request with the same status, headers and body
as the C WAGI hello handler (``examples/serve/hello.c``) does for ``GET /hello``.

Served by uvicorn with the options ``wasmscope serve`` gives it:
``python -m uvicorn _hello_asgi:app --app-dir benchmarks --lifespan on --no-access-log
--no-server-header``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

BODY = b"hello \n"
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())],
}
_BODY = {"type": "http.response.body", "body": BODY}

Message = MutableMapping[str, Any]


async def app(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]) -> None:
    if scope["type"] == "http":
        message = await receive()  # the (empty) request body, as the gateway reads it
        while message.get("more_body"):
            message = await receive()
        await send(dict(_START))
        await send(dict(_BODY))
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
