"""OTLP/HTTP as a raw ASGI application: ``POST /v1/traces``, ``/v1/metrics``,
``/v1/logs``, binary protobuf or JSON, to the letter of the OTLP specification.

::

    from wasmscope.collect.receiver import OtlpHttpApp, InMemorySink
    app = OtlpHttpApp(InMemorySink(), token=None)      # any ASGI server

==========================================================  ======================
the request was taken (``partial_success`` when some items   200, the request's
were rejected as invalid, or when metrics without data        encoding
were dropped)
the body cannot be decoded (protobuf, JSON, compression)      400 + ``BadRequest``
no or a wrong bearer token, when one is set                    401
a path other than the three                                    404
a method other than POST                                       405 + ``Allow``
``Content-Length`` or the body over ``max_body``; the body     413
inflates past ``max_decoded``
a content type other than protobuf/JSON, an unknown            415
``Content-Encoding``
the sink raised :class:`~wasmscope.errors.OverloadedError`;    429 + ``Retry-After``
``max_in_flight`` requests are already being handled
the sink raised :class:`~wasmscope.errors.StoreError`          503 + ``Retry-After``
==========================================================  ======================

Every failure body is a ``google.rpc.Status`` in the request's encoding (binary
protobuf when the content type was not one of OTLP's), and 429/503 carry a
``RetryInfo`` detail too. Nothing is delivered unless the answer is 200.

The body is read on the event loop (bounded by ``max_body``); inflation, decoding,
validation and the sink's blocking ``deliver`` run in one hop to a bounded pool of
``workers`` threads, so the loop never waits on any of them. An answer sent before
the body was read closes the connection unless the rest of the body was small
enough to read and drop (a client that keeps the connection needs it read).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from wasmscope._asgi import Receive, Scope, Send
from wasmscope.collect.receiver.auth import bearer_ok
from wasmscope.collect.receiver.counters import ReceiverCounters
from wasmscope.collect.receiver.decode import (
    Encoding,
    Limits,
    RequestError,
    TooLarge,
    UnsupportedMedia,
    coding_of,
    decode_body,
    encoding_of,
)
from wasmscope.collect.receiver.response import (
    Message,
    bad_request_status,
    code_pb2,
    encode,
    export_response,
    plain_status,
    retry_after_seconds,
    retry_status,
)
from wasmscope.collect.receiver.sink import Signal, Sink
from wasmscope.collect.receiver.validate import check
from wasmscope.errors import OverloadedError, StoreError

__all__ = ["DEFAULT_PATHS", "OtlpHttpApp"]

log = logging.getLogger("wasmscope.collect.receiver")

DEFAULT_PATHS: Mapping[str, Signal] = {f"/v1/{s.value}": s for s in Signal}
_DRAIN = 64 * 1024  # bytes of an unwanted body read and dropped to keep the connection
_TRANSPORT = "http"

_Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class OtlpHttpApp:
    """The OTLP/HTTP receiver, an ASGI application over a :class:`Sink`.

    ``token``: the bearer token every request must carry (None: no check).
    ``limits``: body sizes (:class:`~.decode.Limits`). ``counters``: shared counts
    (a new :class:`~.counters.ReceiverCounters` by default). ``workers``: threads
    that decode and deliver. ``max_in_flight``: requests handled at once (from the
    first body byte to the answer); one more is answered 429. ``store_retry_after``:
    the ``Retry-After`` seconds of a 503. ``paths``: URL path -> signal."""

    def __init__(
        self,
        sink: Sink,
        *,
        token: str | None = None,
        limits: Limits | None = None,
        counters: ReceiverCounters | None = None,
        workers: int = 8,
        max_in_flight: int = 32,
        store_retry_after: float = 2.0,
        paths: Mapping[str, Signal] = DEFAULT_PATHS,
    ) -> None:
        self.sink = sink
        self.token = token
        self.limits = limits or Limits()
        self.counters = counters if counters is not None else ReceiverCounters()
        self.max_in_flight = max_in_flight
        self.store_retry_after = store_retry_after
        self.paths = dict(paths)
        self.in_flight = 0  # touched only on the event loop's thread
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="wasmscope-otlp-http")

    def close(self) -> None:
        """Stops the worker threads once their requests are answered."""
        self._executor.shutdown(wait=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        signal = self.paths.get(scope["path"])
        content_type = content_encoding = authorization = None
        content_length: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-encoding":
                content_encoding = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = None
            elif name == b"authorization":
                authorization = value
        try:
            encoding: Encoding | None = encoding_of(content_type)
        except UnsupportedMedia:
            encoding = None
        answer_in = encoding or Encoding.PROTOBUF

        early: _Answer | None = None
        if signal is None:
            early = _status(404, plain_status(f"no OTLP endpoint at {scope['path']}", code_pb2.NOT_FOUND),
                            answer_in)  # fmt: skip
        elif scope["method"] != "POST":
            early = _status(405, plain_status("OTLP/HTTP takes POST only", code_pb2.UNIMPLEMENTED), answer_in,
                            [(b"allow", b"POST")])  # fmt: skip
        elif not bearer_ok(authorization, self.token):
            early = _status(401, plain_status("missing or wrong bearer token", code_pb2.UNAUTHENTICATED),
                            answer_in, [(b"www-authenticate", b"Bearer")])  # fmt: skip
        else:
            try:
                encoding_of(content_type)
                coding_of(content_encoding)
                if content_length is not None and content_length > self.limits.max_body:
                    raise TooLarge(f"the request body is over {self.limits.max_body} bytes")
            except RequestError as exc:
                early = _failure(exc, answer_in)
            if early is None and self.in_flight >= self.max_in_flight:
                early = _status(429, retry_status("too many requests at once", 1.0), answer_in,
                                [(b"retry-after", b"1")])  # fmt: skip
        if early is not None:
            if signal is not None:
                self.counters.add(signal, _TRANSPORT, failed=0 if early[0] == 429 else 1)
            await self._answer_early(receive, send, early, content_length)
            return

        assert signal is not None and encoding is not None
        self.in_flight += 1
        try:
            body = await self._read(receive)
            if body is None:  # the client left
                return
            if isinstance(body, TooLarge):
                self.counters.add(signal, _TRANSPORT, failed=1)
                status, headers, data = _failure(body, encoding)
                await _send(send, status, [*headers, (b"connection", b"close")], data, encoding)
                return
            loop = asyncio.get_running_loop()
            status, headers, data = await loop.run_in_executor(
                self._executor, self._process, signal, encoding, content_encoding, body
            )
            await _send(send, status, headers, data, encoding)
        finally:
            self.in_flight -= 1

    async def _read(self, receive: Receive) -> bytes | TooLarge | None:
        """The whole body; a :class:`TooLarge` past ``max_body`` (the rest unread);
        None when the client disconnected."""
        limit = self.limits.max_body
        first = await receive()
        if first["type"] == "http.disconnect":
            return None
        body: bytes = first.get("body", b"")
        if not first.get("more_body", False):
            return body if len(body) <= limit else TooLarge(f"the request body is over {limit} bytes")
        chunks = [body]
        size = len(body)
        while True:
            if size > limit:
                return TooLarge(f"the request body is over {limit} bytes")
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        if size > limit:
            return TooLarge(f"the request body is over {limit} bytes")
        return b"".join(chunks)

    def _process(self, signal: Signal, encoding: Encoding, content_encoding: str | None, body: bytes) -> _Answer:
        """Inflate, decode, validate and deliver (on a worker thread)."""
        try:
            request = decode_body(signal, encoding, body, content_encoding, self.limits)
        except RequestError as exc:
            self.counters.add(signal, _TRANSPORT, failed=1)
            return _failure(exc, encoding)
        del body
        checked = check(signal, request)
        if checked.items:
            try:
                self.sink.deliver(signal, request, checked.items)
            except OverloadedError as exc:
                self.counters.add(signal, _TRANSPORT, refused=checked.items + checked.rejected)
                seconds = retry_after_seconds(exc.retry_after)
                return _status(429, retry_status(f"the collector is overloaded: {exc}", seconds), encoding,
                               [(b"retry-after", str(seconds).encode())])  # fmt: skip
            except StoreError as exc:
                self.counters.add(signal, _TRANSPORT, refused=checked.items + checked.rejected)
                seconds = retry_after_seconds(self.store_retry_after)
                return _status(503, retry_status(f"the store failed: {exc}", seconds), encoding,
                               [(b"retry-after", str(seconds).encode())])  # fmt: skip
            except Exception:
                log.exception("the OTLP sink failed on a %s request", signal.value)
                self.counters.add(signal, _TRANSPORT)
                return _status(500, plain_status("internal error", code_pb2.INTERNAL), encoding)
        self.counters.add(signal, _TRANSPORT, received=checked.items, rejected=checked.rejected)
        return 200, [], encode(export_response(signal, checked), encoding)

    async def _answer_early(self, receive: Receive, send: Send, answer: _Answer, length: int | None) -> None:
        """Answers before reading the body: reads and drops a small one so that the
        connection can serve the next request, else closes the connection."""
        status, headers, data = answer
        keep = length is not None and length <= _DRAIN and await _drain(receive, _DRAIN)
        if not keep:
            headers = [*headers, (b"connection", b"close")]
        await _send(send, status, headers, data, None)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _drain(receive: Receive, budget: int) -> bool:
    """Reads the body up to ``budget`` bytes; True when it was read to its end."""
    size = 0
    while size <= budget:
        message = await receive()
        if message["type"] != "http.request":
            return False
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return size <= budget
    return False


def _status(status: int, message: Message, encoding: Encoding,
            headers: list[tuple[bytes, bytes]] | None = None) -> _Answer:  # fmt: skip
    return status, [(b"content-type", encoding.value.encode()), *(headers or [])], encode(message, encoding)


def _failure(exc: RequestError, encoding: Encoding) -> _Answer:
    if exc.http_status == 400:
        return _status(400, bad_request_status(exc.message), encoding)
    code = code_pb2.RESOURCE_EXHAUSTED if exc.http_status == 413 else code_pb2.INVALID_ARGUMENT
    return _status(exc.http_status, plain_status(exc.message, code), encoding)


_CONTENT_TYPES = {e: e.value.encode() for e in Encoding}


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
                encoding: Encoding | None) -> None:  # fmt: skip
    if encoding is not None and not any(name == b"content-type" for name, _ in headers):
        headers = [(b"content-type", _CONTENT_TYPES[encoding]), *headers]
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
