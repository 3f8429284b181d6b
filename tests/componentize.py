"""Building Python components with componentize-py, once: the shared code of the test
fixtures (``tests/runtime``, ``tests/gateway``) and of ``benchmarks/serve_components.py``.

A build takes ~10 s, so the result is kept in a folder named by a hash of everything
that goes into it (componentize-py's version, the world, the app module and every
source file): a later session with the same sources finds it there. Stdlib only (no
pytest), so that the benchmark script can import it too::

    from tests.componentize import build_pyhandler
    wasm = build_pyhandler(Path("~/.cache/wasmscope/bench").expanduser(), "wagi")

The Python handler of the serve tests and benchmark is ``tests/gateway/fixtures/pyhandler``:
one ``handler.py`` (the logic) and two wrappers around it, ``wagi_app.py`` (a
``wasi:cli/run`` command that speaks WAGI) and ``proxy_app.py`` (a
``wasi:http/proxy@0.2.0`` component for ``wasmtime serve``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "PYHANDLER",
    "ComponentizeError",
    "available",
    "build_component",
    "build_pyhandler",
    "pyhandler_files",
]

PYHANDLER = Path(__file__).parent / "gateway" / "fixtures" / "pyhandler"
KINDS = ("wagi", "proxy")  # the worlds of pyhandler/wit/world.wit, and their app modules
BUILD_TIMEOUT = 600  # seconds


class ComponentizeError(RuntimeError):
    """componentize-py failed (the message ends with its stderr)."""


def available() -> bool:
    return importlib.util.find_spec("componentize_py") is not None


def _version() -> str:
    return importlib.metadata.version("componentize-py")


def build_component(
    root: Path, name: str, files: Mapping[str, str | bytes], *, world: str, app: str = "app", wit: str = "wit"
) -> Path:
    """The component built from ``files`` (relative path -> content) with
    ``componentize-py -d WIT -w WORLD componentize APP``, in ``root/NAME-KEY/app.wasm``;
    built only when that file is missing. Raises :class:`ComponentizeError`."""
    h = hashlib.sha256(f"{_version()}\0{world}\0{app}\0{wit}".encode())
    for rel in sorted(files):
        content = files[rel]
        h.update(f"\0{rel}\0".encode() + (content.encode() if isinstance(content, str) else content))
    d = Path(root) / f"{name}-{h.hexdigest()[:16]}"
    out = d / "app.wasm"
    if out.is_file() and out.stat().st_size > 0:
        return out
    for rel, content in files.items():
        path = d / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    script = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"
    tmp = d / f"app.wasm.{os.getpid()}.tmp"
    done = subprocess.run(
        [sys.executable, "-c", script, "-d", wit, "-w", world, "componentize", app, "-o", str(tmp)],
        cwd=d, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    if done.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise ComponentizeError(f"componentize-py failed for {name} ({world}): {done.stderr[-1500:]}")
    os.replace(tmp, out)
    return out


def pyhandler_files(kind: str) -> dict[str, bytes]:
    """The sources of the Python handler as ``kind`` (``"wagi"`` or ``"proxy"``): the
    shared ``handler.py``, that wrapper, and the WIT folder."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    files = {"handler.py": (PYHANDLER / "handler.py").read_bytes()}
    files[f"{kind}_app.py"] = (PYHANDLER / f"{kind}_app.py").read_bytes()
    for path in sorted((PYHANDLER / "wit").rglob("*.wit")):
        files[path.relative_to(PYHANDLER).as_posix()] = path.read_bytes()
    return files


def build_pyhandler(root: Path, kind: str) -> Path:
    """The Python handler built as a WAGI command (``"wagi"``) or a ``wasi:http/proxy``
    component (``"proxy"``), cached under ``root``."""
    return build_component(root, f"pyhandler-{kind}", pyhandler_files(kind), world=kind, app=f"{kind}_app")
