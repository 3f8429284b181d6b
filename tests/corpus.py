"""Where the test corpora are, and helpers to list them.

Two corpora, neither committed to this repository:

* the spec corpus: the official core test suite as binaries, in ``shared/spec-corpus``
  beside the repository (env ``WASMSCOPE_SPEC_CORPUS`` overrides);
* the real corpus: modules from npm and PyPI packages, fetched by ``make corpus``
  into ``~/.cache/wasm-real-corpus`` (env ``WASMSCOPE_REAL_CORPUS`` overrides).

Import as ``from tests.corpus import real_modules, spec_files, read_manifest``.
The fixtures ``spec_corpus`` and ``real_corpus`` are in ``tests/conftest.py``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

__all__ = [
    "MANIFEST_COLUMNS",
    "REPO_ROOT",
    "SPEC_KINDS",
    "read_manifest",
    "real_corpus_dir",
    "real_modules",
    "spec_corpus_dir",
    "spec_files",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_KINDS = ("valid", "invalid", "malformed")
MANIFEST_COLUMNS = ("file", "kind", "source", "expected_message", "line", "origin", "level")


def spec_corpus_dir() -> Path:
    """``$WASMSCOPE_SPEC_CORPUS``, else ``shared/spec-corpus`` beside the repository."""
    env = os.environ.get("WASMSCOPE_SPEC_CORPUS")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "spec-corpus"


def real_corpus_dir() -> Path:
    """``$WASMSCOPE_REAL_CORPUS``, else ``~/.cache/wasm-real-corpus``."""
    env = os.environ.get("WASMSCOPE_REAL_CORPUS")
    return Path(env) if env else Path.home() / ".cache" / "wasm-real-corpus"


def real_modules(corpus: Path | None = None) -> list[Path]:
    """Every ``*.wasm`` in the real corpus, smallest first (ties by name)."""
    root = real_corpus_dir() if corpus is None else corpus
    return sorted(root.glob("*.wasm"), key=lambda p: (p.stat().st_size, p.name))


def spec_files(kind: str, corpus: Path | None = None) -> list[Path]:
    """The spec corpus's ``.wasm`` files of one kind (valid, invalid, malformed), by name."""
    if kind not in SPEC_KINDS:
        raise ValueError(f"kind must be one of {SPEC_KINDS}, not {kind!r}")
    root = spec_corpus_dir() if corpus is None else corpus
    return sorted((root / kind).glob("*.wasm"))


def read_manifest(corpus: Path | None = None) -> list[dict[str, str]]:
    """The rows of ``MANIFEST.tsv``, one dict per file, keyed by its column names.

    Lines starting with ``#`` are comments; the first other line names the columns
    (file, kind, source, expected_message, line, origin, level). Empty cells are ``""``.
    """
    root = spec_corpus_dir() if corpus is None else corpus
    with (root / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        lines = (line for line in f if not line.startswith("#"))
        reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{root / 'MANIFEST.tsv'}: missing columns {sorted(missing)}")
        return [{k: v or "" for k, v in row.items() if k is not None} for row in reader]
