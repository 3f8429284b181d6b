"""The fast path into the guest: exports looked up and called through the raw C API.

wasmtime-py's ``Func.__call__`` costs ~25 µs a call (it re-reads the function type and
boxes every value); ``wasmtime_func_call_unchecked`` with a reused ``wasmtime_val_raw_t``
array costs ~1.4 µs (DESIGN.md). Unchecked means wasmtime trusts the caller about the
types, so :class:`RawFunc` takes them from wasmtime once, when the export is looked up,
and converts every argument to exactly those types.

Only numbers cross here (i32, i64, f32, f64): what a command line can express.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.runtime.gil_calls import bindings

if TYPE_CHECKING:
    import wasmtime

__all__ = ["RawFunc", "Signature", "export_func", "func_signature", "parse_value"]

NUMERIC = ("i32", "i64", "f32", "f64")

Signature = tuple[list[str], list[str]]  # (parameter types, result types), e.g. (["i32"], [])


def func_signature(store: wasmtime.Store, func: wasmtime.Func) -> Signature:
    """The types of a function, as wasmtime knows them (``"i32"``, ``"f64"``, ...)."""
    ty = func.type(store)
    return [str(t) for t in ty.params], [str(t) for t in ty.results]


def parse_value(text: str | int | float, ty: str) -> int | float:
    """A command-line argument as a value of Wasm type ``ty``. Integers accept decimal,
    ``0x`` hex and negative numbers (wrapped to the type's width); floats accept
    ``inf``, ``-inf`` and ``nan``."""
    if ty in ("i32", "i64"):
        bits = 32 if ty == "i32" else 64
        if isinstance(text, bool | float):
            raise UsageError(f"expected an integer for {ty}, got {text!r}")
        try:
            value = text if isinstance(text, int) else int(str(text).strip(), 0)
        except ValueError:
            raise UsageError(f"expected an integer for {ty}, got {text!r}") from None
        if not -(2 ** (bits - 1)) <= value < 2**bits:
            raise UsageError(f"{text} does not fit in {ty}")
        if value >= 2 ** (bits - 1):
            value -= 2**bits
        return value
    if ty in ("f32", "f64"):
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"expected a number for {ty}, got {text!r}") from None
    raise UsageError(f"cannot pass a {ty} value from here (numbers only: i32, i64, f32, f64)")


class RawFunc:
    """An exported function of one instance, callable without the stock wrapper."""

    __slots__ = ("_arr", "_call", "_ctx", "_func", "name", "params", "results")

    def __init__(
        self,
        store: wasmtime.Store,
        func: wasmtime.Func,
        name: str,
        signature: Signature | None = None,
    ) -> None:
        if signature is None:
            signature = func_signature(store, func)
        self.name = name
        self.params, self.results = signature
        internals = bindings().internals
        self._call = internals.call_unchecked
        self._func = internals.func_struct(func)
        self._ctx = internals.store_context(store)
        self._arr = internals.raw_values(max(1, len(self.params), len(self.results)))

    def __call__(self, *args: Any) -> list[int | float]:
        if len(args) != len(self.params):
            raise UsageError(
                f"{self.name} takes {len(self.params)} argument(s) ({', '.join(self.params) or 'none'}), got {len(args)}"
            )
        arr = self._arr
        for i, (value, ty) in enumerate(zip(args, self.params, strict=True)):
            if ty not in NUMERIC:
                raise UsageError(f"{self.name}: cannot pass a {ty} parameter (numbers only)")
            v = parse_value(value, ty)
            if ty == "i32":
                arr[i].i32 = int(v)
            elif ty == "i64":
                arr[i].i64 = int(v)
            elif ty == "f32":
                arr[i].f32 = float(v)
            else:
                arr[i].f64 = float(v)
        self._call(self._ctx, self._func, arr)
        out: list[int | float] = []
        for i, ty in enumerate(self.results):
            if ty == "i32":
                out.append(arr[i].i32)
            elif ty == "i64":
                out.append(arr[i].i64)
            elif ty == "f32":
                out.append(arr[i].f32)
            elif ty == "f64":
                out.append(arr[i].f64)
            else:
                out.append(math.nan)  # a reference: not representable here
        return out


def export_func(
    store: wasmtime.Store, instance: wasmtime.Instance, name: str
) -> wasmtime.Func | None:
    """The exported function ``name`` (None if absent or not a function), looked up
    without building the whole export map."""
    h = bindings()
    internals = h.internals
    item = internals.extern()
    # the GIL stays (wasmscope.runtime.gil_calls)
    if not h.instance_export_get(*internals.export_get_args(store, instance, name.encode(), item)):
        return None
    if int(item.kind) != internals.EXTERN_FUNC:
        return None
    func: wasmtime.Func = internals.func_from_extern(item)
    return func


def exported_names(store: wasmtime.Store, instance: wasmtime.Instance) -> Sequence[str]:
    return list(instance.exports(store))
