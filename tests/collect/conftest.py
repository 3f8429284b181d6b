"""Fixtures of the collect tests.

chDB runs one engine per process over one data directory, and the embedded
backend locks that directory: every test of this process shares one
:class:`ChdbBackend` (``chdb_backend``) and gets a database of its own
(``database``), dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("chdb")

from wasmscope.collect.store.embedded import ChdbBackend


@pytest.fixture(scope="session")
def chdb_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbBackend]:
    backend = ChdbBackend(Path(tmp_path_factory.mktemp("chdb")))
    yield backend
    backend.close()


@pytest.fixture
def database(chdb_backend: ChdbBackend) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    chdb_backend.command(f"DROP DATABASE IF EXISTS {name}")
