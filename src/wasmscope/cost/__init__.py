"""``wasmscope cost``: what each invocation and each Wasm function costs.

Modules, one concept each: :mod:`.records` (the usage table: one row per invocation,
read from records, report files, JSON lines or the ``collect`` store), :mod:`.summary`
(per function and in total: the distributions and the cost under a price sheet),
:mod:`.accounting` (``serve --usage``: the cheap per-request tally). numpy is imported
by the modules that need it, never by this package.

    from wasmscope.cost import read_usage, summarize
    from wasmscope.cost.prices import load_price_sheet
    summary = summarize(read_usage("runs.jsonl"), load_price_sheet("aws-lambda-x86"), memory_mb=128)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports

if TYPE_CHECKING:
    from wasmscope.cost.accounting import UsageAccount
    from wasmscope.cost.records import UsageTable, read_usage
    from wasmscope.cost.summary import FunctionSummary, Stats, Summary, summarize

__all__ = ["FunctionSummary", "Stats", "Summary", "UsageAccount", "UsageTable", "read_usage", "summarize"]

_LAZY = {
    "UsageTable": "wasmscope.cost.records",
    "read_usage": "wasmscope.cost.records",
    "FunctionSummary": "wasmscope.cost.summary",
    "Stats": "wasmscope.cost.summary",
    "Summary": "wasmscope.cost.summary",
    "summarize": "wasmscope.cost.summary",
    "UsageAccount": "wasmscope.cost.accounting",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
