"""Session fixtures shared by every test: the two corpora.

Helpers that are not fixtures (listing modules, reading the manifest) live in
``tests/corpus.py``: ``from tests.corpus import real_modules, spec_files, read_manifest``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.corpus import real_corpus_dir, real_modules, spec_corpus_dir


@pytest.fixture(scope="session")
def spec_corpus() -> Path:
    """The spec corpus folder (``$WASMSCOPE_SPEC_CORPUS`` or ``../shared/spec-corpus``)."""
    path = spec_corpus_dir()
    if not (path / "MANIFEST.tsv").is_file():
        pytest.skip(f"spec corpus not found at {path}: set WASMSCOPE_SPEC_CORPUS or SHARED=")
    return path


@pytest.fixture(scope="session")
def real_corpus() -> Path:
    """The real-module corpus (``$WASMSCOPE_REAL_CORPUS`` or ``~/.cache/wasm-real-corpus``)."""
    path = real_corpus_dir()
    if not path.is_dir() or not real_modules(path):
        pytest.skip(f"real-module corpus absent or empty at {path}: run `make corpus`")
    return path
