"""Analyses over decoded modules and components: the ``inspect`` report,
capabilities from imports, toolchain inference, features used and sizes.

Submodules are imported on first use, so ``import wasmscope.analysis`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.analysis.report import InspectReport, build_report, inspect_bytes, inspect_path

__all__ = ["InspectReport", "build_report", "inspect_bytes", "inspect_path"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("wasmscope.analysis.report"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
