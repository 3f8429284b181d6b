"""Rewriting passes over core modules.

``instrument(data)`` returns the module rewritten to keep a shadow call stack and
per-function call counters in an exported memory of its own (``wasmscope:books``),
with the :class:`CountersLayout` a host needs to read them; ``instrument_cached``
does the same through an on-disk cache. Stdlib only: no wasmtime here.
"""

from __future__ import annotations

from wasmscope.instrument.counters_layout import BOOKS_EXPORT, CountersLayout
from wasmscope.instrument.instrumented_cache import default_cache_dir, instrument_cached
from wasmscope.instrument.shadow_stack import PASS_VERSION, Instrumented, instrument

__all__ = [
    "BOOKS_EXPORT",
    "PASS_VERSION",
    "CountersLayout",
    "Instrumented",
    "default_cache_dir",
    "instrument",
    "instrument_cached",
]
