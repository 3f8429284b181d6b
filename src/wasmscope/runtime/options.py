"""What a caller may ask of one run: :class:`RunOptions`, the one definition of them.

    rt.run("app.wasm", ["arg"], RunOptions(env={"K": "V"}, limits=Limits(timeout=2.0)))
    rt.invoke("lib.wasm", "add", [1, 2], RunOptions(instrument=True))

``Runtime.run`` / ``Runtime.invoke`` / :func:`wasmscope.runtime.run` also take the same
fields as keywords (``rt.run("app.wasm", env={...})``), applied over the options given
(or the defaults) with :func:`with_changes`: short calls stay short, and the fields
are still defined here only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.runtime.guest_counters import CountersObserver
    from wasmscope.runtime.host_calls import AuditSettings
    from wasmscope.runtime.limits import Limits
    from wasmscope.runtime.wasi import DirSpec, Stdin

__all__ = ["RunOptions", "with_changes"]


# Not frozen: a frozen dataclass costs 1.8 µs to build, a plain one 0.4, and the
# gateway builds one a request. Nothing in wasmscope changes one after it is made.
@dataclass(slots=True)
class RunOptions:
    """``argv0``: the program name the guest sees (default: the module's name; commands
    only). ``env``, ``dirs`` (``HOST::GUEST[:ro]`` or :class:`DirSpec`), ``stdin``
    (bytes, a file path, ``"inherit"`` or None: empty): the guest's WASI world.
    ``limits``: this run's limits (default: the Runtime's). ``stdout`` / ``stderr``:
    binary streams that receive the guest's output while it runs (it is captured in
    the record either way, up to the cap). ``attributes``: added to the record.
    ``instrument=True`` (implied by an ``observer``) runs the module rewritten to keep
    its own counters (:mod:`wasmscope.runtime.guest_counters`); the ``observer`` (the
    profiler's sampler) reads them while the guest runs. Core modules only.
    ``audit``: each WASI preview 1 call counted, decided and recorded in the module
    (:mod:`wasmscope.runtime.host_call_audit`); the log lands in ``record.audit``
    (core modules; a component's record keeps None)."""

    argv0: str | None = None
    env: Mapping[str, str] | None = None
    dirs: Sequence[DirSpec | str] = ()
    stdin: Stdin = None
    limits: Limits | None = None
    stdout: IO[bytes] | None = None
    stderr: IO[bytes] | None = None
    attributes: Mapping[str, Any] | None = None
    instrument: bool = False
    observer: CountersObserver | None = None
    audit: AuditSettings | None = None

    @property
    def instrumented(self) -> bool:
        return self.instrument or self.observer is not None


DEFAULT = RunOptions()


def with_changes(options: RunOptions | None, changes: Mapping[str, Any]) -> RunOptions:
    """``options`` (or the defaults) with the fields in ``changes`` replaced; a name that
    is not a field raises ``TypeError``, as an unknown keyword does."""
    if not changes:
        return options if options is not None else DEFAULT
    if options is None:
        return RunOptions(**changes)
    return replace(options, **changes)
