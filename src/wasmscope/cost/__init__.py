"""What invocations cost on serverless hosts, per invocation, per function and per month.

``import wasmscope.cost`` is light: numpy, the one heavy dependency of this package (the
``cost`` extra), is imported only when a name below is first used.

Modules: :mod:`.prices` (price sheets: the shipped ones in ``data/prices/*.toml`` and a
user's own TOML), :mod:`.attribution` (each Wasm function's share of a profiled
invocation's cost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports

if TYPE_CHECKING:
    from wasmscope.cost.attribution import (
        FunctionCost,
        attribution_warning,
        function_costs,
        invocation_cost,
    )
    from wasmscope.cost.prices import (
        METERS,
        SHEETS,
        Bill,
        FreeTier,
        PriceSheet,
        Tier,
        load_price_sheet,
        parse_price_sheet,
    )

__all__ = [
    "METERS",
    "SHEETS",
    "Bill",
    "FreeTier",
    "FunctionCost",
    "PriceSheet",
    "Tier",
    "attribution_warning",
    "function_costs",
    "invocation_cost",
    "load_price_sheet",
    "parse_price_sheet",
]

_ATTRIBUTION = ("FunctionCost", "attribution_warning", "function_costs", "invocation_cost")
_LAZY = {name: "wasmscope.cost.attribution" if name in _ATTRIBUTION else "wasmscope.cost.prices" for name in __all__}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
