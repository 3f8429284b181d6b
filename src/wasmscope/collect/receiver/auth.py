"""The receiver's optional bearer token, checked in constant time (HTTP
``Authorization`` header, gRPC ``authorization`` metadata)."""

from __future__ import annotations

import hmac

__all__ = ["bearer_ok"]


def bearer_ok(value: str | bytes | None, token: str | None) -> bool:
    """True without a token; else when ``value`` is ``Bearer TOKEN`` (the scheme in
    any case, the token compared in constant time)."""
    if token is None:
        return True
    if value is None:
        return False
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    scheme, _, given = text.strip().partition(" ")
    return hmac.compare_digest(given.strip().encode("latin-1", "replace"), token.encode()) and (
        scheme.lower() == "bearer"
    )
