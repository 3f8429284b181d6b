"""Which wasmtime-py wasmscope runs on, and the check that it is installed.

:data:`WASMTIME_REQUIREMENT` is the one statement of the supported version: the
``runtime`` and ``serve`` extras in ``pyproject.toml`` pin the same string (a test
compares them), and :func:`require_wasmtime` refuses any other version, because
:mod:`wasmscope.runtime._wasmtime_internals` relies on wasmtime-py's private layer,
which changes between releases.
"""

from __future__ import annotations

from typing import Any

from wasmscope.errors import WasmscopeError

__all__ = [
    "WASMTIME_REQUIREMENT",
    "WASMTIME_VERSION",
    "RuntimeUnavailable",
    "require_wasmtime",
    "wasmtime_version",
]

WASMTIME_VERSION = "50.0.1"
WASMTIME_REQUIREMENT = f"wasmtime=={WASMTIME_VERSION}"


class RuntimeUnavailable(WasmscopeError):
    """wasmtime (the ``runtime`` extra) is not installed, or is not the version we need."""


_INSTALLED: str | None = None


def wasmtime_version() -> str:
    """The installed wasmtime-py's version (``"unknown"`` without package metadata)."""
    global _INSTALLED
    if _INSTALLED is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _INSTALLED = version("wasmtime")
        except PackageNotFoundError:
            _INSTALLED = "unknown"
    return _INSTALLED


def require_wasmtime() -> Any:
    """The ``wasmtime`` module, or :class:`RuntimeUnavailable` with the install hint."""
    try:
        import wasmtime
    except ImportError as exc:
        raise RuntimeUnavailable(
            f"running modules needs wasmtime ({exc}), which comes with wasmscope: pip install --force-reinstall wasmscope"
        ) from None
    installed = wasmtime_version()
    if installed != "unknown" and installed != WASMTIME_VERSION:
        raise RuntimeUnavailable(
            f"wasmtime {installed} is not the supported version (need {WASMTIME_REQUIREMENT}): "
            f"pip install '{WASMTIME_REQUIREMENT}'"
        )
    return wasmtime
