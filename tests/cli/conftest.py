"""Fixtures the CLI tests share with other test packages."""

from tests.runtime.conftest import c_modules, legacy_eh_wasm, lib_wasm  # noqa: F401  (run tests' guests)
