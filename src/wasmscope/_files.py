"""Reading the files a user names (a module, a policy, a manifest, a price sheet): each
failure a ``UsageError`` that names the file and says why, in the same words."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from wasmscope.errors import UsageError

__all__ = ["read_file", "read_toml"]


def read_file(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of ``path``; ``what`` names the kind of file in the messages
    (``"policy file"``: "p.toml: no such policy file")."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{os.fspath(path)}: no such {what}") from None
    except IsADirectoryError:
        raise UsageError(f"{os.fspath(path)}: is a directory, not a {what}") from None
    except OSError as exc:
        raise UsageError(f"{os.fspath(path)}: cannot read: {exc.strerror or exc}") from None


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The TOML document of ``path`` (see :func:`read_file`)."""
    raw = read_file(path, what)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{os.fspath(path)}: not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{os.fspath(path)}: not valid TOML: {exc}") from None
