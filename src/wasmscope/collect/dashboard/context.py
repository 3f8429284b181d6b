"""What every page handler shares: the store, the clock, the templates."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from wasmscope.collect.store import invocations
from wasmscope.collect.store.backend import Backend, Result
from wasmscope.errors import UsageError

if TYPE_CHECKING:
    import jinja2

    from wasmscope.collect.dashboard.pages import Page

__all__ = ["Context", "Db", "StoreLike"]

T = TypeVar("T")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMPLATES = Path(__file__).with_name("templates")


class StoreLike(Protocol):
    """The part of :class:`wasmscope.collect.store.Store` the dashboard reads."""

    @property
    def backend(self) -> Backend: ...

    @property
    def database(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Db:
    """A backend and the (validated) database name that SQL text is formatted with."""

    backend: Backend
    name: str
    #: True when the store's ``wasmscope_invocations`` table is there; else the same
    #: rows are read as a subquery of ``otel_traces`` (slower).
    fast: bool = False
    #: True when ``wasmscope_function_minutes`` is there too (the function table reads it).
    minutes: bool = False

    @property
    def invocations(self) -> str:
        """What the invocation aggregates read ``FROM``."""
        return invocations.source(self.name, self.fast)

    def __post_init__(self) -> None:
        if not _IDENT.match(self.name):
            raise UsageError(f"invalid database name {self.name!r}")

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        """Run ``sql`` with ``{db}`` replaced by the database name."""
        return self.backend.query(sql.replace("{db}", self.name), params)

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """:meth:`query` with the result as an Arrow table (per-invocation columns)."""
        return self.backend.query_arrow(sql.replace("{db}", self.name), params)


def _environment() -> jinja2.Environment:
    try:
        import jinja2
    except ImportError:
        raise UsageError("the dashboard needs jinja2: install wasmscope[collect]") from None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from wasmscope.collect.dashboard import fmt

    env.filters.update(fmt.FILTERS)
    return env


@dataclass(slots=True)
class Context:
    """The dashboard's shared state; handlers reach it as ``request.ctx``."""

    store: StoreLike
    clock: Callable[[], float]
    pages: tuple[Page, ...] = ()
    live_poll: float = 0.5
    live_lifetime: float = 30.0
    #: The Cost page's price sheet when the URL names none: a shipped sheet's name or a
    #: TOML file (``wasmscope collect --price``).
    price: str = "aws-lambda-x86"
    #: The most invocations the Cost page prices one by one; beyond, a sample.
    cost_rows: int = 200_000
    #: The most billed shapes (invocations grouped by what the sheet bills) it prices.
    cost_shapes: int = 1_000_000
    env: jinja2.Environment = field(default_factory=_environment)
    _ours: frozenset[str] = frozenset()

    @property
    def db(self) -> Db:
        wanted = {invocations.INVOCATIONS, invocations.MINUTES}
        if self._ours != wanted:  # once they exist they stay: look until then
            rows = self.store.backend.query(
                "SELECT name FROM system.tables WHERE database = {db:String} AND has({t:Array(String)}, name)",
                {"db": self.store.database, "t": sorted(wanted)},
            ).rows
            self._ours = frozenset(str(r[0]) for r in rows)
        return Db(self.store.backend, self.store.database, fast=invocations.INVOCATIONS in self._ours,
                  minutes=invocations.MINUTES in self._ours)  # fmt: skip

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call on a worker thread: the event loop also serves
        the OTLP receiver."""
        return await asyncio.to_thread(functools.partial(fn, *args))

    def render(self, template: str, **values: Any) -> str:
        return self.env.get_template(template).render(**values)
