"""Function-level profiling by instrumentation: the module keeps its own books (a
shadow call stack and call counters, :mod:`wasmscope.instrument`), Python only reads
them.

::

    import wasmscope

    record, prof = wasmscope.profile("app.wasm", ["arg"])    # this package is callable
    prof.top(10), prof.calls, prof.host_calls
    prof.to_speedscope(), prof.to_pprof(), prof.to_collapsed(), prof.to_svg()

Modules: :mod:`.sampler` (reads the books while the guest runs), :mod:`.profile`
(:class:`Profile`, its table and formats), :mod:`.spans` (span mode: long calls as
OpenTelemetry spans), :mod:`.api` (:func:`profile`). ``wasmscope profile`` is the
command. Needs the ``runtime`` extra to run anything; the formats are stdlib only.

``wasmscope.profile`` is both this package and the function: calling the package
calls :func:`wasmscope.profile.api.profile`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from wasmscope.profile.api import profile
from wasmscope.profile.model import FORMATS, Profile, TopRow
from wasmscope.profile.sampler import LOST, MODES, Sampler
from wasmscope.profile.spans import SpanBuilder

__all__ = ["FORMATS", "LOST", "MODES", "Profile", "Sampler", "SpanBuilder", "TopRow", "profile"]


class _CallablePackage(types.ModuleType):
    """Lets ``wasmscope.profile(...)`` work whichever was imported first, the package
    (``import wasmscope.profile``) or the function (``wasmscope.profile``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return profile(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
