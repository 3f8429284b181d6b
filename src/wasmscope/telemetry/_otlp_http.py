"""The one OTLP/HTTP client of wasmscope: serve's span and log export
(:class:`~wasmscope.telemetry._sinks.OtlpSink`) and the pushed reports of ``inspect``
and ``profile --push`` (:func:`~wasmscope.telemetry.reports.push`).

``http.client`` on kept-alive connections (one per host and port), the
``OTEL_EXPORTER_OTLP_*`` TLS files of its signal, gzip, and retries of the retryable
statuses (429, 502, 503, 504) after the server's ``Retry-After`` (at most
``max_retry_after``) or a doubling backoff, never past the timeout.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from wasmscope.telemetry import _otlp_env

__all__ = ["RETRY_STATUSES", "Exchange", "OtlpHttpClient", "retry_after_seconds"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})  # OTLP/HTTP: retryable responses


@dataclass
class Exchange:
    """How a POST went: the last ``status`` (None when no response came), ``reason``
    and ``body`` of the response; ``error`` when no response came; ``setup_error``
    when the connection could not be set up (a certificate file that cannot be read:
    not retried); ``attempts``; ``waited``: the seconds slept before retries."""

    status: int | None = None
    reason: str = ""
    body: bytes = b""
    error: BaseException | None = None
    setup_error: bool = False
    attempts: int = 0
    waited: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - now, 0.0)


class OtlpHttpClient:
    """POSTs protobuf export requests of one signal ("TRACES", "LOGS").

    ``headers``: sent with each request (``Content-Type`` and ``User-Agent`` added);
    ``gzip_above``: bodies longer than this many bytes are gzip'd (None: never);
    ``max_retries``: retries of a retryable status, and also of a connection error
    when ``retry_errors``; ``backoff``: the first wait when the server sent no
    ``Retry-After``. One thread at a time (no lock)."""

    def __init__(
        self, signal: str, *, headers: Mapping[str, str], user_agent: str, gzip_above: int | None = None,
        compresslevel: int = 6, max_retries: int = 1, retry_errors: bool = False, backoff: float = 0.25,
        max_retry_after: float = 5.0, sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.signal = signal
        self.headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": user_agent,
            **headers,
        }
        self.gzip_above = gzip_above
        self.compresslevel = compresslevel
        self.max_retries = max_retries
        self.retry_errors = retry_errors
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.clock = clock
        self._conns: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def _conn(self, url: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
        key = (
            url.scheme,
            url.hostname or "localhost",
            url.port or (443 if url.scheme == "https" else 80),
        )
        conn = self._conns.get(key)
        if conn is None:
            if url.scheme == "https":
                ctx = _otlp_env.tls_context(self.signal)
                conn = http.client.HTTPSConnection(key[1], key[2], timeout=timeout, context=ctx)
            else:
                conn = http.client.HTTPConnection(key[1], key[2], timeout=timeout)
            self._conns[key] = conn
        return conn

    def _drop(self, url: urllib.parse.SplitResult) -> None:
        for key, conn in list(self._conns.items()):
            if key[1] == (url.hostname or "localhost"):
                conn.close()
                del self._conns[key]

    def post(self, url_text: str, body: bytes, timeout: float) -> Exchange:
        """POST ``body`` to ``url_text``, retried as the client says, within ``timeout``
        seconds in all. Never raises for the exchange itself: see :class:`Exchange`."""
        url = urllib.parse.urlsplit(url_text)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        headers = self.headers
        if self.gzip_above is not None and len(body) > self.gzip_above:
            body = gzip.compress(body, compresslevel=self.compresslevel)
            headers = {**headers, "Content-Encoding": "gzip"}
        result = Exchange()
        deadline = self.clock() + timeout
        backoff = self.backoff
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                result.status, result.reason, result.error = (
                    None,
                    "timed out",
                    TimeoutError("timed out"),
                )
                return result
            result.attempts += 1
            retry_after: float | None = None
            try:
                conn = self._conn(url, remaining)
            except (OSError, ValueError) as exc:  # a certificate file that cannot be read
                result.error, result.setup_error = exc, True
                return result
            try:
                conn.timeout = max(remaining, 0.05)
                if conn.sock is not None:
                    conn.sock.settimeout(conn.timeout)
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                result.body = resp.read(1 << 20)
                result.status, result.reason, result.error = resp.status, resp.reason, None
                if resp.will_close:
                    self._drop(url)
                if result.ok or resp.status not in RETRY_STATUSES:
                    return result
                retry_after = retry_after_seconds(resp.getheader("Retry-After"), time.time())
            except (OSError, http.client.HTTPException) as exc:
                self._drop(url)
                result.status, result.reason, result.error = None, "", exc
                if not self.retry_errors:
                    return result
            if result.attempts > self.max_retries:
                return result
            wait = min(retry_after, self.max_retry_after) if retry_after is not None else backoff
            backoff *= 2
            if self.clock() + wait >= deadline:
                return result  # waiting would outlast the timeout: the last answer now
            result.waited.append(wait)
            self.sleep(wait)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
