"""The usage table: one row per invocation, in numpy columns (Contract 1 of issue 14).

    from wasmscope.cost.records import UsageTable, read_usage
    table = read_usage("run.json")          # a `run --report` file
    table = read_usage("runs.jsonl")        # JSON lines of records
    table = read_usage("~/.local/share/wasmscope/collect")   # a collect store folder
    table = read_usage("clickhouse://default:@127.0.0.1:8123/otel")
    table = UsageTable.from_records(records)                 # InvocationRecord objects

The function of a row: the route for a serve request (``http.route``), else the
module's name and entry (``hello.wasm:_start``); from the collect store, ``faas.name``.
Unknown numbers are NaN: CPU time of a record without it, fuel of an unmetered run,
the peak memory of a run that never started.

The string columns are object arrays, and the table keeps the function column also as
codes into its distinct names: grouping by function is then an argsort of small
integers, not a sort of a million strings.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wasmscope.cost._numpy import NDArray, np
from wasmscope.errors import StoreLockedError, UsageError, WasmscopeError

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["FLOAT_COLUMNS", "UsageTable", "function_of", "invocation_source", "is_store", "open_store", "read_store",
           "read_usage"]

FLOAT_COLUMNS = ("wall_s", "cpu_s", "fuel", "peak_memory", "memory_limit", "host_calls")
_NAN = float("nan")
_URL_SCHEMES = ("clickhouse://", "clickhouses://", "http://", "https://")


def function_of(route: object, module_name: str, entry: str) -> str:
    """The function a record is accounted to: its route, else ``module:entry``."""
    if route:
        return str(route)
    return f"{module_name}:{entry}" if entry else module_name


@dataclass(frozen=True, slots=True)
class UsageTable:
    """One row per invocation; every column has the same length."""

    function: NDArray[np.object_]
    module: NDArray[np.object_]
    wall_s: NDArray[np.float64]
    cpu_s: NDArray[np.float64]
    fuel: NDArray[np.float64]
    peak_memory: NDArray[np.float64]
    memory_limit: NDArray[np.float64]
    host_calls: NDArray[np.float64]
    outcome: NDArray[np.object_]
    start_ns: NDArray[np.int64]
    # The function column as codes into its distinct names (None: computed when asked).
    function_names: NDArray[np.object_] | None = field(default=None, repr=False, compare=False)
    function_codes: NDArray[np.intp] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.function)
        for name in ("module", *FLOAT_COLUMNS, "outcome", "start_ns"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, function has {n}")
        if (self.function_codes is None) != (self.function_names is None):
            raise ValueError("function_names and function_codes go together")

    def __len__(self) -> int:
        return len(self.function)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def empty(cls) -> UsageTable:
        return _Builder().table()

    @classmethod
    def from_records(cls, records: Iterable[InvocationRecord]) -> UsageTable:
        """The table of :class:`~wasmscope.runtime.record.InvocationRecord` objects."""
        b = _Builder()
        for r in records:
            host: float = _NAN
            if r.host_calls is not None:
                host = float(sum(r.host_calls.values()))
            elif r.audit is not None:
                host = float(r.audit.total)
            m = r.module
            b.add(function_of(r.attributes.get("http.route"), m.name, r.entry), m.sha256 or m.name,
                  r.start_ns, r.end_ns, r.cpu_seconds, r.fuel_consumed, r.peak_memory, r.memory_limit,
                  host, r.outcome)  # fmt: skip
        return b.table()

    @classmethod
    def concat(cls, tables: Sequence[UsageTable]) -> UsageTable:
        """The rows of ``tables``, one after the other."""
        if not tables:
            return cls.empty()
        if len(tables) == 1:
            return tables[0]
        index: dict[str, int] = {}
        codes = []
        for t in tables:
            names, c = t.groups()
            remap = np.fromiter((index.setdefault(str(s), len(index)) for s in names), dtype=np.intp, count=len(names))
            codes.append(remap[c] if len(c) else c.astype(np.intp))
        all_names = np.array(list(index), dtype=object) if index else np.empty(0, dtype=object)
        all_codes = np.concatenate(codes)
        cols: dict[str, Any] = {
            name: np.concatenate([getattr(t, name) for t in tables])
            for name in ("module", *FLOAT_COLUMNS, "outcome", "start_ns")
        }
        return cls(function=all_names[all_codes] if len(all_codes) else np.empty(0, dtype=object),
                   function_names=all_names, function_codes=all_codes, **cols)  # fmt: skip

    # -- selection ------------------------------------------------------------------------

    def groups(self) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
        """(the distinct functions, each row's index into them)."""
        if self.function_names is not None and self.function_codes is not None:
            return self.function_names, self.function_codes
        if len(self.function) == 0:
            return np.empty(0, dtype=object), np.empty(0, dtype=np.intp)
        names, codes = np.unique(self.function.astype(str), return_inverse=True)
        return names.astype(object), codes.astype(np.intp)

    def where(self, mask: NDArray[np.bool_]) -> UsageTable:
        """The rows where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise ValueError(f"the mask has shape {mask.shape}, the table {len(self)} rows")
        names, codes = self.groups()
        cols = {name: getattr(self, name)[mask] for name in ("function", "module", *FLOAT_COLUMNS, "outcome", "start_ns")}
        return UsageTable(function_names=names, function_codes=codes[mask], **cols)

    def only(self, function: str) -> UsageTable:
        """The rows of one function."""
        names, codes = self.groups()
        hit = np.flatnonzero(names == function)
        if len(hit) == 0:
            return self.where(np.zeros(len(self), dtype=bool))
        return self.where(codes == hit[0])


class _Builder:
    """Rows appended one at a time (Python lists), then made into numpy columns once."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.codes: list[int] = []
        self.module: list[str] = []
        self.start: list[int] = []
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.fuel: list[float] = []
        self.peak: list[float] = []
        self.limit: list[float] = []
        self.host: list[float] = []
        self.outcome: list[str] = []

    def add(self, function: str, module: str, start_ns: int, end_ns: int, cpu: float | None,
            fuel: float | None, peak: float | None, limit: float | None, host: float, outcome: str) -> None:  # fmt: skip
        code = self.names.get(function)
        if code is None:
            code = self.names[function] = len(self.names)
        self.codes.append(code)
        self.module.append(module)
        self.start.append(start_ns)
        self.wall.append((end_ns - start_ns) / 1e9)
        self.cpu.append(_NAN if cpu is None else cpu)
        self.fuel.append(_NAN if fuel is None else fuel)
        self.peak.append(_NAN if peak is None else peak)
        self.limit.append(limit if limit else _NAN)
        self.host.append(host)
        self.outcome.append(outcome)

    def table(self) -> UsageTable:
        names = np.array(list(self.names), dtype=object) if self.names else np.empty(0, dtype=object)
        codes = np.array(self.codes, dtype=np.intp)

        def floats(v: list[float]) -> NDArray[np.float64]:
            return np.array(v, dtype=np.float64)

        def objects(v: list[str]) -> NDArray[np.object_]:
            out = np.empty(len(v), dtype=object)
            out[:] = v
            return out

        return UsageTable(
            function=names[codes] if len(codes) else np.empty(0, dtype=object),
            module=objects(self.module), wall_s=floats(self.wall), cpu_s=floats(self.cpu),
            fuel=floats(self.fuel), peak_memory=floats(self.peak), memory_limit=floats(self.limit),
            host_calls=floats(self.host), outcome=objects(self.outcome),
            start_ns=np.array(self.start, dtype=np.int64), function_names=names, function_codes=codes,
        )  # fmt: skip


# -- records as JSON ----------------------------------------------------------------------


def _number(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{where}: '{key}' is {value!r}; expected a number or null")
    return float(value)


def _add_json(b: _Builder, doc: Any, where: str) -> None:
    """One record's JSON (``InvocationRecord.to_json``) into the builder."""
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: expected a JSON object (an invocation record), got {type(doc).__name__}")
    module = doc.get("module")
    if not isinstance(module, dict):
        raise UsageError(f"{where}: the record has no 'module' object (is this a `wasmscope run --report` record?)")
    start, end = doc.get("start_ns"), doc.get("end_ns")
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        raise UsageError(f"{where}: 'start_ns' and 'end_ns' must be integers (unix nanoseconds), got {start!r} and {end!r}")
    if end < start:
        raise UsageError(f"{where}: 'end_ns' ({end}) is before 'start_ns' ({start})")
    outcome = doc.get("outcome", "ok")
    if not isinstance(outcome, str):
        raise UsageError(f"{where}: 'outcome' is {outcome!r}; expected a string")
    name = str(module.get("name") or "")
    sha = str(module.get("sha256") or "")
    entry = doc.get("entry") or ""
    attributes = doc.get("attributes")
    route = attributes.get("http.route") if isinstance(attributes, dict) else None
    host = _NAN
    calls = doc.get("host_calls")
    audit = doc.get("audit")
    if isinstance(calls, dict):
        host = float(sum(v for v in calls.values() if isinstance(v, int | float)))
    elif isinstance(audit, dict) and isinstance(audit.get("total"), int | float):
        host = float(audit["total"])
    b.add(function_of(route, name, str(entry)), sha or name, start, end, _number(doc, "cpu_seconds", where),
          _number(doc, "fuel_consumed", where), _number(doc, "peak_memory", where),
          _number(doc, "memory_limit", where), host, outcome)  # fmt: skip


def _lines(path: str) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            yield from enumerate(f, 1)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a text file of JSON records ({exc.reason})") from None


def _read_json_file(path: str) -> UsageTable:
    """A ``run --report`` file (one JSON document: a record, or a list of records) or JSON
    lines (one record a line; blank lines skipped)."""
    b = _Builder()
    try:
        with open(path, encoding="utf-8") as f:
            head = f.readline()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a text file of JSON records ({exc.reason})") from None
    first = head.strip()
    one_line_record = False
    if first.startswith("{"):
        try:
            json.loads(first)
            one_line_record = True
        except ValueError:
            pass
    if one_line_record:  # JSON lines
        loads = json.loads
        for lineno, line in _lines(path):
            if not line.strip():
                continue
            try:
                doc = loads(line)
            except ValueError as exc:
                raise UsageError(f"{path}:{lineno}: not valid JSON ({exc})") from None
            _add_json(b, doc, f"{path}:{lineno}")
        return b.table()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a text file of JSON records ({exc.reason})") from None
    if not text.strip():
        raise UsageError(f"{path}: the file is empty (expected invocation records as JSON)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            _add_json(b, item, f"{path}: record {i + 1}")
    else:
        _add_json(b, doc, f"{path}:1")
    return b.table()


# -- the collect store --------------------------------------------------------------------


def _store_sql(source: str, function: bool) -> str:
    """The typed columns as they are (LowCardinality strings as Arrow dictionaries): the
    conversions are numpy's, where they cost a few ms, not string copies in the store."""
    where = "Function = {function:String}" if function else "1"
    return f"""
SELECT Function, ModuleSha256, ModuleName, Outcome, Timestamp, Duration, CpuTime, Fuel, FuelLimit,
       MemoryPeak, MemoryLimit
FROM {source}
WHERE {where}
SETTINGS output_format_arrow_low_cardinality_as_dictionary = 1"""


def _strings(column: Any) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """An Arrow string column as (distinct values, codes): the store's dictionaries made
    one, or a hash in Arrow; never a sort."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        chunks = column.unify_dictionaries().chunks if column.num_chunks else []
        dictionary = chunks[0].dictionary if chunks else pa.array([], pa.string())
        indices = [c.indices.to_numpy(zero_copy_only=False) for c in chunks]
        codes = np.concatenate(indices).astype(np.intp) if indices else np.empty(0, dtype=np.intp)
    else:
        encoded = column.combine_chunks().dictionary_encode()
        dictionary, codes = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    names = np.empty(len(dictionary), dtype=object)
    names[:] = dictionary.to_pylist()
    return names, codes


def _numbers(data: Any, name: str, dtype: Any = np.float64) -> NDArray[Any]:
    import pyarrow as pa

    column = data.column(name)
    if pa.types.is_timestamp(column.type):  # DateTime64(9): int64 nanoseconds
        column = column.cast(pa.int64())
    return np.asarray(column.to_numpy(), dtype=dtype)


def table_from_arrow(data: Any) -> UsageTable:
    """The usage table of an Arrow table with the columns of :func:`_store_sql` (a zero
    where the span had no such attribute: NaN here, as the dashboard reads them)."""
    if data.num_rows == 0:
        return UsageTable.empty()
    fn_names, fn_codes = _strings(data.column("Function"))
    sha_names, sha_codes = _strings(data.column("ModuleSha256"))
    mod_names, mod_codes = _strings(data.column("ModuleName"))
    out_names, out_codes = _strings(data.column("Outcome"))
    module = sha_names[sha_codes]
    no_sha = (sha_names == "")[sha_codes]
    if no_sha.any():
        module[no_sha] = mod_names[mod_codes[no_sha]]
    nan = np.nan
    fuel, fuel_limit = _numbers(data, "Fuel"), _numbers(data, "FuelLimit")
    cpu, peak, limit = _numbers(data, "CpuTime"), _numbers(data, "MemoryPeak"), _numbers(data, "MemoryLimit")
    return UsageTable(
        function=fn_names[fn_codes], module=module, wall_s=_numbers(data, "Duration") / 1e9,
        cpu_s=np.where(cpu > 0, cpu, nan), fuel=np.where((fuel > 0) | (fuel_limit > 0), fuel, nan),
        peak_memory=np.where(peak > 0, peak, nan), memory_limit=np.where(limit > 0, limit, nan),
        host_calls=np.full(data.num_rows, nan), outcome=out_names[out_codes],
        start_ns=_numbers(data, "Timestamp", np.int64), function_names=fn_names, function_codes=fn_codes,
    )  # fmt: skip


def invocation_source(store: Any) -> str:
    """What a query of ``store``'s invocations reads ``FROM``: its
    ``wasmscope_invocations`` table, or the same rows from ``otel_traces`` where the
    table is not there (as the dashboard reads them)."""
    from wasmscope.collect.store import invocations

    found = store.backend.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name IN ({t:String}, 'otel_traces')",
        {"db": store.database, "t": invocations.INVOCATIONS},
    ).rows
    tables = {str(r[0]) for r in found}
    if not tables:
        raise UsageError(f"the store has no invocations (no database {store.database!r} with wasmscope's tables)")
    return invocations.source(store.database, invocations.INVOCATIONS in tables)


def read_store(store: Any, function: str | None = None) -> UsageTable:
    """The invocations of a :class:`~wasmscope.collect.store.Store`, read as Arrow
    columns: the store filters, numpy converts."""
    params = {"function": function} if function is not None else None
    data = store.backend.query_arrow(_store_sql(invocation_source(store), function is not None), params)
    return table_from_arrow(data)


def is_store(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names a collect store (a folder or a server URL), not a file."""
    where = os.path.expanduser(os.fspath(source))
    return where.startswith(_URL_SCHEMES) or os.path.isdir(where)


@contextlib.contextmanager
def open_store(source: str | os.PathLike[str]) -> Iterator[Any]:
    """The collect store at ``source`` (a data folder or a ClickHouse URL), opened for
    reading and closed after; its failures as :class:`UsageError` naming it."""
    from wasmscope.collect.store import Store

    where = os.path.expanduser(os.fspath(source))
    try:
        if where.startswith(_URL_SCHEMES):
            store = Store.open(url=where)
        else:
            if not os.path.isdir(os.path.join(where, "metadata")):
                raise UsageError(f"{where}: not a collect store folder (no metadata/ in it) nor a records file")
            store = Store.open(data_dir=where)
    except UsageError:
        raise
    except StoreLockedError as exc:
        raise UsageError(
            f"{where}: the store is in use by a running `wasmscope collect` (chDB opens a folder in one "
            f"process): stop it first, or read a ClickHouse server store by its URL ({exc})"
        ) from None
    except WasmscopeError as exc:
        raise UsageError(f"{where}: {exc}") from None
    with store:
        try:
            yield store
        except UsageError:
            raise
        except WasmscopeError as exc:
            raise UsageError(f"{where}: {exc}") from None


def read_usage(source: str | os.PathLike[str], function: str | None = None) -> UsageTable:
    """The usage table of ``source``: a ``run --report`` JSON file, a JSON lines file of
    records, a ``collect`` store folder or a ClickHouse URL (``clickhouse://``,
    ``https://``). ``function``: only its rows (filtered in the store where it is one).
    Bad input is a :class:`UsageError` naming the file and the line."""
    where = os.fspath(source)
    if is_store(where):
        with open_store(where) as store:
            return read_store(store, function)
    if not os.path.exists(where):
        raise UsageError(f"{where}: no such file or folder")
    try:
        table = _read_json_file(where)
    except OSError as exc:
        raise UsageError(f"{where}: {exc.strerror or exc}") from None
    return table if function is None else table.only(function)
