"""What normal looks like, per module, persisted: the baseline store of the detectors.

One SQLite file (``--baseline guard.db``, WAL journal, ``synchronous=NORMAL``; two
processes may open it at once: every write is one ``BEGIN IMMEDIATE`` transaction,
and each reader notices the other's writes by a generation number). It holds, keyed
by the module's sha256 (its name is kept for people), the function (the entry export
or the route) and an input class the caller chooses (``""`` by default):

- the host-call n-grams of :mod:`~wasmscope.guard.sequences`, per module and
  function (bounded by the module's behaviour and ``SequenceSettings.max_ngrams``);
- the resource figures of :mod:`~wasmscope.guard.resources` per function and input
  class: the last ``ResourceSettings.window`` samples of each metric (a bounded
  window, over which median and MAD are exact) and one EWMA per metric;
- each learned run's usage, an opaque JSON object that ``guard learn`` reads back
  with :meth:`Baseline.usages` (the last ``max_usages`` runs per module).

``schema_version`` in the ``meta`` table says how to read the file; a file of
another version is refused, never rewritten.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from wasmscope.errors import StoreError, UsageError, WasmscopeError
from wasmscope.guard.findings import Finding
from wasmscope.guard.resources import (
    Ewma,
    Reference,
    ResourceSettings,
    check_figures,
    drift_finding,
    validate_figures,
)
from wasmscope.guard.sequences import (
    END,
    START,
    NgramDatabase,
    SequenceSettings,
    sequence_finding,
)

__all__ = ["SCHEMA_VERSION", "Baseline", "ModuleSummary"]

SCHEMA_VERSION = 1
_SEP = "\x1f"  # joins an n-gram's calls in one TEXT column; WASI names never hold it

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS modules (
    sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, runs INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sequence_keys (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, function TEXT NOT NULL,
    ngram_window INTEGER NOT NULL, runs INTEGER NOT NULL, generation INTEGER NOT NULL,
    UNIQUE (sha256, function));
CREATE TABLE IF NOT EXISTS ngrams (
    key INTEGER NOT NULL, ngram TEXT NOT NULL, PRIMARY KEY (key, ngram)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resource_keys (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, function TEXT NOT NULL,
    input_class TEXT NOT NULL, runs INTEGER NOT NULL, generation INTEGER NOT NULL,
    UNIQUE (sha256, function, input_class));
CREATE TABLE IF NOT EXISTS samples (
    key INTEGER NOT NULL, metric TEXT NOT NULL, run INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (key, metric, run)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ewma (
    key INTEGER NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (key, metric)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usages (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, function TEXT NOT NULL,
    input_class TEXT NOT NULL, usage TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usages_by_module ON usages (sha256, id);
"""


@dataclass(frozen=True, slots=True)
class ModuleSummary:
    """A module the baseline knows: how many runs it learned."""

    sha256: str
    name: str
    runs: int


@dataclass(slots=True)
class _Sequences:
    id: int
    runs: int
    generation: int
    db: NgramDatabase


@dataclass(slots=True)
class _Resources:
    id: int
    runs: int
    generation: int
    ewmas: dict[str, Ewma] = field(default_factory=dict)
    references: dict[str, Reference] | None = None  # loaded when first needed


def _check_sequence(sequence: Sequence[str] | None) -> list[str] | None:
    if sequence is None:
        return None
    if isinstance(sequence, str):
        raise UsageError("a host-call sequence is a list of names, not one string")
    calls = list(sequence)
    for call in calls:
        if not isinstance(call, str) or not call or _SEP in call or call in (START, END):
            raise UsageError(f"a host call in a sequence must be a plain name, not {call!r}")
    return calls


def _check_key(sha256: str, function: str, input_class: str, name: str = "") -> None:
    if not isinstance(sha256, str) or not sha256:
        raise UsageError(f"a module's sha256 must be a non-empty string, not {sha256!r}")
    for what, value in (("function", function), ("input class", input_class), ("name", name)):
        if not isinstance(value, str):
            raise UsageError(f"the {what} must be a string, not {value!r}")


class Baseline:
    """The store; open it with :meth:`open` (a context manager; ``close`` may be
    called twice). Safe to share between threads of one process."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        sequences: SequenceSettings,
        resources: ResourceSettings,
        max_usages: int,
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self.sequences = sequences
        self.resources = resources
        self.max_usages = max_usages
        self._lock = threading.RLock()
        self._seq_cache: dict[tuple[str, str], _Sequences] = {}
        self._res_cache: dict[tuple[str, str, str], _Resources] = {}

    # -- opening and closing ------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        sequences: SequenceSettings | None = None,
        resources: ResourceSettings | None = None,
        max_usages: int = 10_000,
        timeout: float = 10.0,
    ) -> Baseline:
        """Opens (creating it if needed) the baseline at ``path``. ``timeout`` is how
        long a write waits for another process's transaction."""
        if max_usages < 1:
            raise UsageError(f"max_usages must be at least 1, not {max_usages}")
        where = str(path)
        try:
            conn = sqlite3.connect(
                where, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise UsageError(f"cannot open the baseline {where}: {e}") from e
        store = cls(
            conn,
            where,
            sequences or SequenceSettings(),
            resources or ResourceSettings(),
            max_usages,
        )
        try:
            store._prepare()
        except BaseException:
            store.close()
            raise
        return store

    def _prepare(self) -> None:
        with self._errors():
            conn = self._db()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._write() as db:
                found = db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
                ).fetchone()
                if found is None:
                    db.executescript_in_tx(_SCHEMA)
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                version = "none" if row is None else row[0]
                raise UsageError(
                    f"{self.path} is a baseline of schema version {version}; this wasmscope "
                    f"reads version {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Baseline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise UsageError(f"the baseline {self.path} is closed")
        return self._conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except WasmscopeError:
            raise
        except sqlite3.Error as e:
            if "not a database" in str(e) or "malformed" in str(e):
                raise UsageError(f"{self.path} is not a wasmscope baseline: {e}") from e
            raise StoreError(f"the baseline {self.path}: {e}") from e

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            # The models may hold what was rolled back: read them again.
            self._seq_cache.clear()
            self._res_cache.clear()
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[_Tx]:
        """One snapshot for the reads of a check (WAL: readers never wait)."""
        conn = self._db()
        conn.execute("BEGIN")
        try:
            yield _Tx(conn)
        finally:
            conn.execute("COMMIT")

    # -- learning -----------------------------------------------------------

    def add_run(
        self,
        sha256: str,
        name: str,
        function: str,
        input_class: str,
        sequence: Sequence[str] | None,
        resources: Mapping[str, float],
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        """Learns one normal run: its host-call sequence (None when it was not recorded
        in full, see :func:`~wasmscope.guard.sequences.calls_of`), its figures and its
        usage."""
        _check_key(sha256, function, input_class, name)
        calls = _check_sequence(sequence)
        figures = validate_figures(resources)
        usage_json = self._usage_json(usage)
        with self._lock, self._errors(), self._write() as tx:
            self._update_ewmas(tx, sha256, function, input_class, figures)
            self._learn(tx, sha256, name, function, input_class, calls, figures, usage_json)

    @staticmethod
    def _usage_json(usage: Mapping[str, Any] | None) -> str:
        try:
            return json.dumps(dict(usage or {}), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise UsageError(f"a run's usage must be a JSON object: {e}") from e

    def _learn(
        self,
        tx: _Tx,
        sha256: str,
        name: str,
        function: str,
        input_class: str,
        calls: list[str] | None,
        figures: dict[str, float],
        usage_json: str,
        *,
        whole: bool = True,
    ) -> None:
        """Learns a run; without ``whole``, only its usage (see :meth:`detect`)."""
        tx.execute(
            "INSERT INTO modules (sha256, name, runs) VALUES (?, ?, 1) ON CONFLICT (sha256) "
            "DO UPDATE SET runs = runs + 1, name = CASE WHEN excluded.name = '' "
            "THEN modules.name ELSE excluded.name END",
            (sha256, name or ""),
        )
        if whole:
            self._learn_behaviour(tx, sha256, function, input_class, calls, figures)
        tx.execute(
            "INSERT INTO usages (sha256, function, input_class, usage) VALUES (?, ?, ?, ?)",
            (sha256, function, input_class, usage_json),
        )
        tx.execute(
            "DELETE FROM usages WHERE sha256 = ? AND id <= (SELECT id FROM usages "
            "WHERE sha256 = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (sha256, sha256, self.max_usages),
        )

    def _learn_sequence(self, tx: _Tx, sha256: str, function: str, calls: list[str]) -> None:
        seq = self._sequence_model(tx, sha256, function, create=True)
        assert seq is not None
        new = seq.db.learn(calls, self.sequences.max_ngrams)
        if new:
            tx.executemany(
                "INSERT OR IGNORE INTO ngrams (key, ngram) VALUES (?, ?)",
                [(seq.id, _SEP.join(n)) for n in new],
            )
            seq.generation += 1
        seq.runs += 1
        tx.execute(
            "UPDATE sequence_keys SET runs = ?, generation = ? WHERE id = ?",
            (seq.runs, seq.generation, seq.id),
        )

    def _learn_behaviour(
        self,
        tx: _Tx,
        sha256: str,
        function: str,
        input_class: str,
        calls: list[str] | None,
        figures: dict[str, float],
    ) -> None:
        if calls is not None:
            self._learn_sequence(tx, sha256, function, calls)
        res = self._resource_model(tx, sha256, function, input_class, create=True)
        assert res is not None
        run = res.runs + 1
        tx.executemany(
            "INSERT INTO samples (key, metric, run, value) VALUES (?, ?, ?, ?)",
            [(res.id, m, run, v) for m, v in figures.items()],
        )
        tx.execute(
            "DELETE FROM samples WHERE key = ? AND run <= ?", (res.id, run - self.resources.window)
        )
        tx.execute(
            "UPDATE resource_keys SET runs = ?, generation = generation + 1 WHERE id = ?",
            (run, res.id),
        )
        res.runs, res.generation, res.references = run, res.generation + 1, None

    def _update_ewmas(
        self, tx: _Tx, sha256: str, function: str, input_class: str, figures: Mapping[str, float]
    ) -> dict[str, Ewma]:
        res = self._resource_model(tx, sha256, function, input_class, create=True)
        assert res is not None
        lam = self.resources.ewma_lambda
        for metric, value in figures.items():
            ewma = res.ewmas.get(metric)
            if ewma is None:
                res.ewmas[metric] = Ewma(value)
            else:
                ewma.update(value, lam)
        tx.executemany(
            "INSERT INTO ewma (key, metric, value, count) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key, metric) DO UPDATE SET value = excluded.value, count = excluded.count",
            [(res.id, m, res.ewmas[m].value, res.ewmas[m].count) for m in figures],
        )
        tx.execute("UPDATE resource_keys SET generation = generation + 1 WHERE id = ?", (res.id,))
        res.generation += 1
        return res.ewmas

    # -- detecting ----------------------------------------------------------

    def detect(
        self,
        sha256: str,
        function: str,
        input_class: str,
        sequence: Sequence[str] | None,
        resources: Mapping[str, float],
        *,
        learn: bool = False,
        name: str = "",
        usage: Mapping[str, Any] | None = None,
    ) -> list[Finding]:
        """The anomalies of one run against what was learned: a foreign host-call
        sequence (unless ``sequence`` is None: not recorded in full), resource
        outliers, and with ``learn`` also drift.

        With ``learn``, the figures that are not outliers feed the EWMAs, and a run
        that raised nothing at all is learned: wholly while its function and input
        class warm up, then only its usage. After the warm-up the learned figures are
        the fixed reference the EWMAs are held against (a control chart's phase I),
        so a slow shift is reported rather than absorbed, and an anomaly never
        becomes normal. :meth:`add_run` always learns the whole run."""
        _check_key(sha256, function, input_class, name)
        calls = _check_sequence(sequence)
        figures = validate_figures(resources)
        usage_json = self._usage_json(usage) if learn else ""
        with self._lock, self._errors():
            with self._read() as tx:
                findings = self._judge(tx, sha256, function, input_class, calls, figures)
            if not learn:
                return findings
            with self._write() as tx:
                outliers = {f.target for f in findings if f.category == "resources"}
                normal = {m: v for m, v in figures.items() if m not in outliers}
                ewmas = self._update_ewmas(tx, sha256, function, input_class, normal)
                res = self._resource_model(tx, sha256, function, input_class, create=True)
                assert res is not None
                references = self._references(tx, res)
                for metric in sorted(normal):
                    ref = references.get(metric)
                    if ref is not None and ref.count >= self.resources.warmup:
                        drift = drift_finding(
                            metric,
                            ewmas[metric],
                            ref,
                            self.resources,
                            function=function,
                            input_class=input_class,
                        )
                        if drift is not None:
                            findings.append(drift)
                if not findings:
                    seq = self._sequence_model(tx, sha256, function, create=True)
                    assert seq is not None
                    warming = res.runs < self.resources.warmup or (
                        calls is not None and seq.runs < self.sequences.warmup
                    )
                    self._learn(
                        tx,
                        sha256,
                        name,
                        function,
                        input_class,
                        calls,
                        figures,
                        usage_json,
                        whole=warming,
                    )
            return findings

    def _judge(
        self,
        tx: _Tx,
        sha256: str,
        function: str,
        input_class: str,
        calls: list[str] | None,
        figures: dict[str, float],
    ) -> list[Finding]:
        findings: list[Finding] = []
        seq = self._sequence_model(tx, sha256, function, create=False)
        if calls is not None and seq is not None and seq.runs >= self.sequences.warmup:
            check = seq.db.check(calls, self.sequences.frame)
            found = sequence_finding(
                check, self.sequences, function=function, baseline_runs=seq.runs
            )
            if found is not None:
                findings.append(found)
        res = self._resource_model(tx, sha256, function, input_class, create=False)
        if res is not None:
            outliers, _ = check_figures(
                figures,
                self._references(tx, res),
                self.resources,
                function=function,
                input_class=input_class,
            )
            findings.extend(outliers)
        return findings

    # -- the models, cached while their generation holds ----------------------

    def _sequence_model(
        self, tx: _Tx, sha256: str, function: str, *, create: bool
    ) -> _Sequences | None:
        row = tx.execute(
            "SELECT id, ngram_window, runs, generation FROM sequence_keys "
            "WHERE sha256 = ? AND function = ?",
            (sha256, function),
        ).fetchone()
        if row is None:
            if not create:
                return None
            cur = tx.execute(
                "INSERT INTO sequence_keys (sha256, function, ngram_window, runs, generation) "
                "VALUES (?, ?, ?, 0, 0)",
                (sha256, function, self.sequences.window),
            )
            row = (cur.lastrowid, self.sequences.window, 0, 0)
        key_id, window, runs, generation = row
        if window != self.sequences.window:
            raise UsageError(
                f"the baseline {self.path} learned {function or 'the module'} with n-grams of "
                f"{window} calls, not {self.sequences.window}"
            )
        cached = self._seq_cache.get((sha256, function))
        if cached is None or cached.id != key_id or cached.generation != generation:
            rows = tx.execute("SELECT ngram FROM ngrams WHERE key = ?", (key_id,)).fetchall()
            db = NgramDatabase(window, (tuple(r[0].split(_SEP)) for r in rows))
            cached = _Sequences(key_id, runs, generation, db)
            self._seq_cache[(sha256, function)] = cached
        cached.runs = runs
        return cached

    def _resource_model(
        self, tx: _Tx, sha256: str, function: str, input_class: str, *, create: bool
    ) -> _Resources | None:
        row = tx.execute(
            "SELECT id, runs, generation FROM resource_keys "
            "WHERE sha256 = ? AND function = ? AND input_class = ?",
            (sha256, function, input_class),
        ).fetchone()
        if row is None:
            if not create:
                return None
            cur = tx.execute(
                "INSERT INTO resource_keys (sha256, function, input_class, runs, generation) "
                "VALUES (?, ?, ?, 0, 0)",
                (sha256, function, input_class),
            )
            row = (cur.lastrowid, 0, 0)
        key_id, runs, generation = row
        cache_key = (sha256, function, input_class)
        cached = self._res_cache.get(cache_key)
        if cached is None or cached.id != key_id or cached.generation != generation:
            ewmas = {
                m: Ewma(v, n)
                for m, v, n in tx.execute(
                    "SELECT metric, value, count FROM ewma WHERE key = ?", (key_id,)
                )
            }
            cached = _Resources(key_id, runs, generation, ewmas)
            self._res_cache[cache_key] = cached
        cached.runs = runs
        return cached

    @staticmethod
    def _references(tx: _Tx, res: _Resources) -> dict[str, Reference]:
        if res.references is None:
            values: dict[str, list[float]] = {}
            for metric, value in tx.execute(
                "SELECT metric, value FROM samples WHERE key = ?", (res.id,)
            ):
                values.setdefault(metric, []).append(value)
            res.references = {m: Reference.of(vs) for m, vs in values.items()}
        return res.references

    # -- reading back -------------------------------------------------------

    def usages(self, sha256: str, function: str | None = None) -> list[dict[str, Any]]:
        """The usage objects of the module's learned runs, oldest first."""
        sql = "SELECT usage FROM usages WHERE sha256 = ?"
        params: tuple[str, ...] = (sha256,)
        if function is not None:
            sql += " AND function = ?"
            params += (function,)
        with self._lock, self._errors():
            rows = self._db().execute(sql + " ORDER BY id", params).fetchall()
        out: list[dict[str, Any]] = [json.loads(r[0]) for r in rows]
        return out

    def modules(self) -> list[ModuleSummary]:
        """Every module the baseline learned, by name."""
        with self._lock, self._errors():
            rows = self._db().execute("SELECT sha256, name, runs FROM modules").fetchall()
        return sorted((ModuleSummary(*r) for r in rows), key=lambda m: (m.name, m.sha256))

    def runs(self, sha256: str, function: str, input_class: str = "") -> int:
        """How many normal runs were learned for this function and input class."""
        with self._lock, self._errors():
            row = (
                self._db()
                .execute(
                    "SELECT runs FROM resource_keys WHERE sha256 = ? AND function = ? "
                    "AND input_class = ?",
                    (sha256, function, input_class),
                )
                .fetchone()
            )
        return 0 if row is None else int(row[0])

    def forget(self, sha256: str) -> None:
        """Drops everything learned about a module (to learn it again)."""
        with self._lock, self._errors(), self._write() as tx:
            for table, keys in (("ngrams", "sequence_keys"), ("samples", "resource_keys")):
                tx.execute(
                    f"DELETE FROM {table} WHERE key IN (SELECT id FROM {keys} WHERE sha256 = ?)",
                    (sha256,),
                )
            tx.execute(
                "DELETE FROM ewma WHERE key IN (SELECT id FROM resource_keys WHERE sha256 = ?)",
                (sha256,),
            )
            for table in ("sequence_keys", "resource_keys", "usages", "modules"):
                tx.execute(f"DELETE FROM {table} WHERE sha256 = ?", (sha256,))
        self._seq_cache = {k: v for k, v in self._seq_cache.items() if k[0] != sha256}
        self._res_cache = {k: v for k, v in self._res_cache.items() if k[0] != sha256}


class _Tx:
    """The connection inside one transaction (``executescript`` would commit)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def executescript_in_tx(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)
