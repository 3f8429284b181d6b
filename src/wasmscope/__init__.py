"""wasmscope: observability for WebAssembly.

The public API, imported lazily (``import wasmscope`` loads nothing heavy)::

    import wasmscope

    report = wasmscope.inspect("app.wasm")          # an InspectReport
    report.toolchain.name, [c.key for c in report.capabilities]
    report.to_json()                                # JSON-ready dict

    obj = wasmscope.decode(data)                    # Module or Component
    wasmscope.Module.from_file("app.wasm").exports

    record = wasmscope.run("app.wasm", ["arg"])     # an InvocationRecord
    with wasmscope.Runtime() as rt:                 # reusable: caches compiled modules
        rt.run("app.wasm", limits=...); rt.invoke("lib.wasm", "add", [1, 2])

    record, prof = wasmscope.profile("app.wasm")    # instrumented + sampled: exact call counts,
    prof.top(10), prof.to_svg()                     # flame graphs, full trap stacks

Everything raised on purpose is a :class:`WasmscopeError`; a malformed
binary raises :class:`DecodeError` with the byte offset of the fault.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from wasmscope.analysis.report import InspectReport
    from wasmscope.binary.component import Component, decode
    from wasmscope.binary.module import Module
    from wasmscope.errors import DecodeError, WasmscopeError
    from wasmscope.profile.api import profile
    from wasmscope.runtime.runner import Runtime, run

__all__ = [
    "Component",
    "DecodeError",
    "Module",
    "Runtime",
    "WasmscopeError",
    "__version__",
    "decode",
    "inspect",
    "profile",
    "run",
]

_LAZY = {
    "Module": "wasmscope.binary.module",
    "Component": "wasmscope.binary.component",
    "decode": "wasmscope.binary.component",
    "DecodeError": "wasmscope.errors",
    "WasmscopeError": "wasmscope.errors",
    "Runtime": "wasmscope.runtime.runner",
    "run": "wasmscope.runtime.runner",
    "profile": "wasmscope.profile.api",  # the package is callable too: see wasmscope.profile
}


def inspect(
    source: str | Path | bytes | bytearray | memoryview,
    *,
    deep: bool = False,
    top: int = 10,
    section_details: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> InspectReport:
    """The ``inspect`` report of a module or component, given as a path or
    as its bytes. ``deep`` decodes every instruction to find the features
    used (``progress(done_bytes, total_bytes)`` is called meanwhile); ``top``
    is how many of the biggest functions to list."""
    from wasmscope.analysis.report import inspect_bytes, inspect_path

    if isinstance(source, str | os.PathLike):
        return inspect_path(source, deep=deep, top=top, section_details=section_details, progress=progress)
    return inspect_bytes(bytes(source), deep=deep, top=top, section_details=section_details, progress=progress)


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "0+unknown"
    try:
        return version("wasmscope")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _version()
        globals()["__version__"] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
