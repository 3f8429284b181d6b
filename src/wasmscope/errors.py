"""The one exception tree of wasmscope.

    WasmscopeError              base of everything wasmscope raises on purpose
     +-- DecodeError            malformed binary; carries the absolute byte offset
     +-- EncodeError            a structure that cannot be written as a valid binary
     +-- UsageError             bad arguments or options from the user (CLI, API)
     +-- StoreError             the telemetry store (chDB or a ClickHouse server) failed
          +-- StoreLockedError  another process owns the store's data directory
          +-- OverloadedError   the store falls behind: retry after ``retry_after`` seconds

Nothing else escapes the decoder, whatever the input bytes are.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "EncodeError",
    "OverloadedError",
    "StoreError",
    "StoreLockedError",
    "UsageError",
    "WasmscopeError",
]


class WasmscopeError(Exception):
    """Base class of every error wasmscope raises on purpose."""


class DecodeError(WasmscopeError):
    """A module or component is malformed at ``offset`` (absolute, in bytes)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message, offset)
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.message} (at byte offset {self.offset:#x})"


class EncodeError(WasmscopeError):
    """A structure cannot be encoded as a valid binary."""


class UsageError(WasmscopeError):
    """The user asked for something that cannot be done as asked."""


class StoreError(WasmscopeError):
    """The telemetry store failed (a query, an insert, the schema)."""


class StoreLockedError(StoreError):
    """Another process owns the store's data directory (``path``)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class OverloadedError(StoreError):
    """The store cannot take more now; the sender should retry after ``retry_after`` s.

    The OTLP receiver answers it with 429 (HTTP) or UNAVAILABLE (gRPC) and a
    ``Retry-After``, so memory stays bounded and a well-behaved exporter retries.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
