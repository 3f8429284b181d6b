"""API key secrets: making a key, hashing it for the manifest, checking one against a
stored hash.

Only hashes are stored (``scrypt$N$r$p$SALT$HASH`` or
``pbkdf2-sha256$ITERATIONS$SALT$HASH``, base64, with a random salt, from
:mod:`hashlib`), compared with :func:`hmac.compare_digest`. The keys themselves are
checked by :class:`~wasmscope.gateway.auth.ApiKeyAuth`; the ``[[key]]`` tables that
hold the hashes are read by :mod:`wasmscope.gateway.manifest`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from wasmscope.errors import UsageError

__all__ = [
    "PBKDF2_ITERATIONS",
    "SCRYPT_N",
    "KeyHash",
    "generate_key",
    "hash_key",
    "parse_hash",
    "verify_key",
]

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PBKDF2_ITERATIONS = 600_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def generate_key() -> str:
    """A new random key (32 random bytes, URL-safe)."""
    return "wsk_" + secrets.token_urlsafe(32)


def hash_key(
    key: str, *, scheme: str = "scrypt", n: int = SCRYPT_N, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The self-describing hash stored in the manifest:
    ``scrypt$N$r$p$SALT$HASH`` or ``pbkdf2-sha256$ITERATIONS$SALT$HASH`` (base64)."""
    salt = secrets.token_bytes(16)
    secret = key.encode()
    if scheme == "scrypt":
        digest = hashlib.scrypt(
            secret, salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=_maxmem(n, SCRYPT_R), dklen=32
        )
        return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"
    if scheme == "pbkdf2-sha256":
        digest = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, dklen=32)
        return f"pbkdf2-sha256${iterations}${_b64(salt)}${_b64(digest)}"
    raise UsageError(f"unknown hash scheme {scheme!r} (scrypt, pbkdf2-sha256)")


def _maxmem(n: int, r: int) -> int:
    return 128 * r * n + 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class KeyHash:
    """A stored key hash, parsed: its scheme, parameters, salt and digest."""

    scheme: str
    params: tuple[int, ...]
    salt: bytes
    digest: bytes

    def derive(self, key: str) -> bytes:
        if self.scheme == "scrypt":
            n, r, p = self.params
            return hashlib.scrypt(
                key.encode(),
                salt=self.salt,
                n=n,
                r=r,
                p=p,
                maxmem=_maxmem(n, r),
                dklen=len(self.digest),
            )
        return hashlib.pbkdf2_hmac(
            "sha256", key.encode(), self.salt, self.params[0], dklen=len(self.digest)
        )

    def matches(self, key: str) -> bool:
        """Whether ``key`` derives to the digest (constant-time comparison)."""
        return hmac.compare_digest(self.derive(key), self.digest)


def parse_hash(text: str) -> KeyHash:
    """The hash as stored in a manifest; :class:`UsageError` when it is not one."""
    parts = text.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = (int(x) for x in parts[1:4])
            if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
                raise ValueError("scrypt parameters out of range")
            parsed = KeyHash("scrypt", (n, r, p), _unb64(parts[4]), _unb64(parts[5]))
        elif parts[0] == "pbkdf2-sha256" and len(parts) == 4:
            iterations = int(parts[1])
            if not 1000 <= iterations <= 10_000_000:
                raise ValueError("iterations out of range (1000-10000000)")
            parsed = KeyHash("pbkdf2-sha256", (iterations,), _unb64(parts[2]), _unb64(parts[3]))
        else:
            raise ValueError(
                "expected 'scrypt$N$r$p$SALT$HASH' or 'pbkdf2-sha256$ITERATIONS$SALT$HASH'"
            )
    except ValueError as exc:  # binascii.Error is a ValueError
        raise UsageError(str(exc)) from None
    if len(parsed.salt) < 8 or len(parsed.digest) < 16:
        raise UsageError("salt or hash too short")
    return parsed


def verify_key(key: str, stored: str) -> bool:
    """Whether ``key`` matches the stored hash (constant-time comparison)."""
    return parse_hash(stored).matches(key)
