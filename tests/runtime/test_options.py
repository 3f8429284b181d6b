"""RunOptions: one definition of what a run takes; keywords are applied over it."""

from __future__ import annotations

import pytest

from wasmscope.runtime.options import RunOptions, with_changes


def test_keywords_replace_fields_of_the_options_given() -> None:
    base = RunOptions(env={"A": "1"}, stdin=b"in")
    opts = with_changes(base, {"stdin": b"other"})
    assert opts.env == {"A": "1"} and opts.stdin == b"other"
    assert base.stdin == b"in"
    assert with_changes(base, {}) is base
    assert with_changes(None, {}) == RunOptions()


def test_an_unknown_keyword_is_refused() -> None:
    with pytest.raises(TypeError):
        with_changes(None, {"enviroment": {}})


def test_an_observer_implies_an_instrumented_run() -> None:
    assert not RunOptions().instrumented
    assert RunOptions(instrument=True).instrumented
    assert RunOptions(observer=object()).instrumented  # type: ignore[arg-type]


def test_options_and_keywords_run_the_same() -> None:
    wasmtime = pytest.importorskip("wasmtime")
    from wasmscope.runtime import Runtime

    wasm = wasmtime.wat2wasm('(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))')
    with Runtime(cache=False) as rt:
        assert rt.invoke(wasm, "add", [2, 3], RunOptions(attributes={"k": "v"})).results == [5]
        rec = rt.invoke(wasm, "add", [2, 3], attributes={"k": "v"})
        assert rec.results == [5] and rec.attributes["k"] == "v"
