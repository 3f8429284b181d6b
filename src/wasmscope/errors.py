"""The one exception tree of wasmscope.

    WasmscopeError              base of everything wasmscope raises on purpose
     +-- DecodeError            malformed binary; carries the absolute byte offset
     +-- EncodeError            a structure that cannot be written as a valid binary
     +-- UsageError             bad arguments or options from the user (CLI, API)

Nothing else escapes the decoder, whatever the input bytes are.
"""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "UsageError", "WasmscopeError"]


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
