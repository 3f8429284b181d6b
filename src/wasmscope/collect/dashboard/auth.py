"""Token login of the dashboard.

With a token, a request is let in with ``Authorization: Bearer TOKEN`` or with the
session cookie that ``/login`` sets once the token was typed in. The cookie holds
an HMAC of the token (never the token itself), is HttpOnly and SameSite=Strict;
every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["COOKIE", "Auth"]

COOKIE = "wasmscope_session"
_CONTEXT = b"wasmscope collect dashboard session v1"


class Auth:
    """Checks requests against ``token`` (None: everyone is let in)."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None
        self._session = (
            hmac.new(self.token.encode(), _CONTEXT, hashlib.sha256).hexdigest() if self.token else ""
        )

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def session_value(self) -> str:
        return self._session

    def token_ok(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def allowed(self, headers: dict[str, str]) -> bool:
        if self.token is None:
            return True
        authorization = headers.get("authorization", "")
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(given.strip()):
            return True
        value = cookies(headers.get("cookie", "")).get(COOKIE, "")
        return bool(value) and hmac.compare_digest(value.encode(), self._session.encode())

    def set_cookie(self, secure: bool) -> str:
        return f"{COOKIE}={self._session}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")

    @staticmethod
    def clear_cookie() -> str:
        return f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"


def cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name not in out:
            out[name] = value.strip().strip('"')
    return out
