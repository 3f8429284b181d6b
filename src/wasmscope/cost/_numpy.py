"""numpy, the one heavy dependency of ``wasmscope cost``: the modules that need it import
it from here, so that its absence is a :class:`UsageError` that says what to install."""

from __future__ import annotations

from wasmscope.errors import UsageError

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError:  # pragma: no cover - numpy is installed where the tests run
    raise UsageError("wasmscope cost needs numpy: pip install 'wasmscope[cost]'") from None

__all__ = ["NDArray", "np"]
