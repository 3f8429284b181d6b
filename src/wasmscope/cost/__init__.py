"""What invocations cost on serverless hosts, per invocation, per function and per month.

``import wasmscope.cost`` is light: numpy, the one heavy dependency of this package (the
``cost`` extra), is imported only when a name below is first used.

Modules, one concept each: :mod:`.prices` (price sheets: the shipped ones in
``data/prices/*.toml`` and a user's own TOML), :mod:`.attribution` (each Wasm
function's share of a profiled invocation's cost), :mod:`.records` (the usage table:
one row per invocation, from records, ``run --report`` files, JSON lines or the
``collect`` store), :mod:`.summary` (per function and in total: the distributions and
the cost under a sheet), :mod:`.accounting` (``serve --usage``: the per-request tally).

    from wasmscope.cost import load_price_sheet, read_usage, summarize
    s = summarize(read_usage("runs.jsonl"), load_price_sheet("aws-lambda-arm64"), memory_mb=128)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports

if TYPE_CHECKING:
    from wasmscope.cost.accounting import UsageAccount
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
    from wasmscope.cost.records import UsageTable, read_usage
    from wasmscope.cost.summary import Cost, FunctionSummary, Stats, Summary, summarize

__all__ = [
    "METERS",
    "SHEETS",
    "Bill",
    "Cost",
    "FreeTier",
    "FunctionCost",
    "FunctionSummary",
    "PriceSheet",
    "Stats",
    "Summary",
    "Tier",
    "UsageAccount",
    "UsageTable",
    "attribution_warning",
    "function_costs",
    "invocation_cost",
    "load_price_sheet",
    "parse_price_sheet",
    "read_usage",
    "summarize",
]

_MODULES = {
    "wasmscope.cost.prices": ("METERS", "SHEETS", "Bill", "FreeTier", "PriceSheet", "Tier", "load_price_sheet",
                              "parse_price_sheet"),
    "wasmscope.cost.attribution": ("FunctionCost", "attribution_warning", "function_costs", "invocation_cost"),
    "wasmscope.cost.summary": ("Cost", "FunctionSummary", "Stats", "Summary", "summarize"),
    "wasmscope.cost.records": ("UsageTable", "read_usage"),
    "wasmscope.cost.accounting": ("UsageAccount",),
}  # fmt: skip
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
