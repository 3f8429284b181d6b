"""``serve --usage``: the usage of every request served, tallied as it happens.

Per request, one packed row of 61 bytes is appended to a ``bytearray`` (no Python
object kept, about a microsecond). numpy is imported only when the
tally becomes a :class:`~wasmscope.cost.records.UsageTable`, at shutdown.

    account = UsageAccount()
    gateway.telemetry = UsageTap(gateway.telemetry, account)   # sees every handler run
    ...
    table = account.table()

:class:`UsageTap` stands in front of the gateway's ``telemetry`` (as the metrics' tap
does): the record goes to the account, then to the real telemetry, if any.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
from typing import TYPE_CHECKING, Any

from wasmscope.gateway.tap import TelemetryTap

if TYPE_CHECKING:
    from wasmscope.cost.records import UsageTable
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["UsageAccount", "UsageTap"]


_NAN = float("nan")


# One request: its key and outcome codes, start and end (ns), CPU time, fuel, peak memory,
# memory limit and host calls (NaN where unknown); 61 bytes, little-endian, unpadded.
_ROW = struct.Struct("<iBqqddddd")
_FIELDS = (("key", "<i4"), ("outcome", "u1"), ("start", "<i8"), ("end", "<i8"), ("cpu", "<f8"), ("fuel", "<f8"),
           ("peak", "<f8"), ("limit", "<f8"), ("host", "<f8"))  # fmt: skip


class UsageAccount:
    """The usage of the invocations added so far: one packed row of 61 bytes a request in
    a ``bytearray`` (no Python object kept, nothing for the garbage collector to scan),
    the strings (route, module, entry, outcome) interned as small codes. Thread-safe:
    appending a row is one call under the GIL; a new code is taken under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[Any, str, str, str], int] = {}  # (route, module name, sha256, entry)
        self._outcomes: dict[str, int] = {}
        self._rows = bytearray()

    def __len__(self) -> int:
        return len(self._rows) // _ROW.size

    def _code(self, table: dict[Any, int], key: Any) -> int:
        with self._lock:
            return table.setdefault(key, len(table))

    def add(self, record: InvocationRecord) -> None:
        host = _NAN
        if record.host_calls is not None:
            host = float(sum(record.host_calls.values()))
        elif record.audit is not None:
            host = float(record.audit.total)
        m = record.module
        key = (record.attributes.get("http.route"), m.name, m.sha256, record.entry)
        code = self._keys.get(key)
        if code is None:
            code = self._code(self._keys, key)
        outcome = self._outcomes.get(record.outcome)
        if outcome is None:
            outcome = self._code(self._outcomes, record.outcome)
        cpu, fuel, peak, limit = record.cpu_seconds, record.fuel_consumed, record.peak_memory, record.memory_limit
        self._rows += _ROW.pack(code, outcome, record.start_ns, record.end_ns, _NAN if cpu is None else cpu,
                                _NAN if fuel is None else fuel, _NAN if peak is None else peak,
                                limit if limit else _NAN, host)  # fmt: skip

    def _snapshot(self) -> tuple[list[tuple[Any, str, str, str]], list[str], bytes]:
        with self._lock:
            rows = bytes(self._rows)
            return list(self._keys), list(self._outcomes), rows[: len(rows) // _ROW.size * _ROW.size]

    def table(self) -> UsageTable:
        """The tally as a usage table (imports numpy; no Python loop over the requests)."""
        from wasmscope.cost._numpy import NDArray, np
        from wasmscope.cost.records import UsageTable, function_of

        keys, outcomes, rows = self._snapshot()
        view = np.frombuffer(rows, dtype=np.dtype(list(_FIELDS)))
        def floats(name: str) -> NDArray[np.float64]:
            return np.array(view[name], dtype=np.float64)

        def ints(name: str) -> NDArray[np.int64]:
            return np.array(view[name], dtype=np.int64)

        start = ints("start")
        functions: dict[str, int] = {}
        key_function = np.array([functions.setdefault(function_of(r, n, e), len(functions)) for r, n, _, e in keys],
                                dtype=np.intp)  # fmt: skip
        key_module = np.empty(len(keys), dtype=object)
        key_module[:] = [sha or name for _, name, sha, _ in keys]
        names = np.empty(len(functions), dtype=object)
        names[:] = list(functions)
        outcome_names = np.empty(len(outcomes), dtype=object)
        outcome_names[:] = outcomes
        key = ints("key").astype(np.intp)
        codes = key_function[key] if len(key) else np.empty(0, dtype=np.intp)
        return UsageTable(
            function=names[codes], module=key_module[key], wall_s=(ints("end") - start) / 1e9,
            cpu_s=floats("cpu"), fuel=floats("fuel"), peak_memory=floats("peak"), memory_limit=floats("limit"),
            host_calls=floats("host"), outcome=outcome_names[ints("outcome").astype(np.intp)], start_ns=start,
            function_names=names, function_codes=codes,
        )  # fmt: skip

    def write_jsonl(self, path: str | os.PathLike[str]) -> None:
        """The tally as JSON lines of records that :func:`~wasmscope.cost.records.read_usage`
        reads (what each worker of ``serve --workers N`` hands the parent)."""
        keys, outcomes, packed = self._snapshot()
        rows = list(_ROW.iter_unpack(packed))

        def number(x: float, whole: bool = False) -> float | int | None:
            if math.isnan(x):
                return None
            return int(x) if whole else x

        with open(path, "w", encoding="utf-8") as f:
            for key, outcome, start, end, cpu, fuel, peak, limit, host in rows:
                route, name, sha, entry = keys[key]
                doc: dict[str, Any] = {
                    "module": {"name": name, "sha256": sha}, "entry": entry, "start_ns": start, "end_ns": end,
                    "cpu_seconds": number(cpu), "fuel_consumed": number(fuel, True),
                    "peak_memory": number(peak, True), "memory_limit": number(limit, True),
                    "outcome": outcomes[outcome], "attributes": {"http.route": route} if route else {},
                }  # fmt: skip
                if not math.isnan(host):
                    doc["audit"] = {"total": int(host)}
                f.write(json.dumps(doc, separators=(",", ":")) + "\n")


class UsageTap(TelemetryTap):
    """Adds each record to the account (see :class:`~wasmscope.gateway.tap.TelemetryTap`)."""

    what = "usage accounting"

    def __init__(self, inner: Any, account: UsageAccount) -> None:
        super().__init__(inner)
        self.account = account

    def observe(self, record: InvocationRecord) -> None:
        self.account.add(record)
