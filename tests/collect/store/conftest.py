"""Fixtures of the store tests: a schema'd :class:`Store` in the test's own database
on the process's shared chDB backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.store import Store


@pytest.fixture
def store(chdb_backend: ChdbBackend, database: str) -> Iterator[Store]:
    s = Store(chdb_backend, database)
    s.ensure_schema()
    yield s
    s.close()
