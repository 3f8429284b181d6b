"""Right-sizing from one recorded run against AWS Lambda Power Tuning's every-size sweep.

A workload of four real functions (C guests of ``tests/cost/guests``, built with clang-19):

    resize   memory-heavy: alloc 300 MiB, touched, read twice          (needs > 300 MiB)
    hash     CPU-heavy: crunch 40 million hash steps                   (128 KiB of memory)
    fanout   host-call-heavy: chatty 40 sleeps of 2 ms and 40 writes   (waits, little CPU)
    report   mixed: alloc 64 MiB, read 4 times, then a 30 ms wait

priced by the ``aws-lambda-x86`` sheet (CPU grows with memory: one vCPU at 1,769 MB).

- **Power Tuning**: each function is run ``--repeat`` times at every size of Power
  Tuning's default list (128, 256, 512, 1024, 1536, 3008 MB), each at that size's
  memory limit and vCPU share, and priced; the cheapest size that finished is its
  choice. The CPU share is applied by a CPU quota (:mod:`wasmscope.cost._throttle`,
  a cgroup: needs root); where none can be had the script says so and the shares are
  only modelled, which makes the comparison meaningless.
- **wasmscope**: one recorded run per function at a whole CPU (the records a
  deployment already has), read back as a ``run`` records file, then
  ``cost recommend`` (headroom 20%) picks a size from the model.
- The recommended size is measured like the others, in the same round robin
  (``--repeat`` runs, for grading only: not counted as wasmscope's runs), and priced.

Reported: per function the sizes and costs per million; in total the cost per million
invocations of each function (the sum over the workload) of wasmscope's choice and of
Power Tuning's, their ratio (target: at most 1.05), and the run counts. One warm-up
run per function (compiling it) is not counted for either method.

Usage: python benchmarks/cost.py [--repeat N] [--sheet NAME] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.cost._guests import build_guests  # noqa: E402

from wasmscope.cost import _throttle  # noqa: E402
from wasmscope.cost._measure import Measurer  # noqa: E402
from wasmscope.cost.prices import load_price_sheet  # noqa: E402
from wasmscope.cost.recommend import MIB, recommend  # noqa: E402
from wasmscope.cost.records import read_usage  # noqa: E402
from wasmscope.cost.sweep import sweep  # noqa: E402

POWER_TUNING_MB = (128, 256, 512, 1024, 1536, 3008)
CONFIGURED_MB = 1024  # what the recorded runs were configured with

WORKLOAD: list[tuple[str, str, list[str]]] = [
    ("resize", "alloc", ["300", "2"]),
    ("hash", "crunch", ["40"]),
    ("fanout", "chatty", ["40", "2000"]),
    ("report", "alloc", ["64", "4", "30"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per size (the median is priced)")
    ap.add_argument("--sheet", default="aws-lambda-x86")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = ap.parse_args()
    sheet = load_price_sheet(args.sheet)
    if not _throttle.available():
        print("note: no CPU quota can be had here (needs root and a cgroup cpu controller): the sizes' CPU shares are "
              "not applied, so Power Tuning's measurements do not show the host's behaviour", file=sys.stderr)  # fmt: skip
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="wasmscope-cost-bench-"))
    wasm = build_guests(tmp / "guests", names=sorted({g for _, g, _ in WORKLOAD}))
    rows: list[dict[str, Any]] = []
    recorded_runs = tuning_runs = grading_runs = 0
    with Measurer() as m:
        for name, guest, argv in WORKLOAD:
            path = tmp / f"{name}.wasm"  # one module file per function: its name is the function's
            path.write_bytes(wasm[guest].read_bytes())
            # wasmscope: one recorded run, at a whole CPU.
            rec = m.run(str(path), argv, memory_limit=CONFIGURED_MB * MIB, share=1.0)
            recorded_runs += 1
            records = tmp / f"{name}.jsonl"
            records.write_text(json.dumps(rec) + "\n")
            table = read_usage(str(records))
            (r,) = recommend(table, sheet, headroom=0.2)
            assert r.memory_mb is not None
            # Power Tuning: every size, measured and priced; the recommended size is
            # measured in the same round robin (for grading only).
            sizes = sorted({*POWER_TUNING_MB, r.memory_mb})
            tuned = sweep(str(path), argv, sheet, sizes, base=table, repeat=args.repeat, measurer=m)
            tuning_runs += len(POWER_TUNING_MB) * args.repeat
            grading_runs += (len(sizes) - len(POWER_TUNING_MB)) * args.repeat
            best = tuned.cheapest(among=POWER_TUNING_MB)
            assert best is not None, f"{name}: no size finished"
            (point,) = [p for p in tuned.points if p.memory_mb == r.memory_mb]
            rows.append({
                "function": name,
                "args": argv,
                "peak_memory": rec.get("peak_memory"),
                "cpu_s": rec.get("cpu_seconds"),
                "wall_s": rec.get("duration_seconds"),
                "finding": r.finding,
                "recommended_mb": r.memory_mb,
                "recommended_usd_per_million": point.usd_per_million,
                "recommended_predicted_usd_per_million": point.usd_per_million_predicted,
                "recommended_outcome": point.outcome,
                "power_tuning_mb": best.memory_mb,
                "power_tuning_usd_per_million": best.usd_per_million,
                "sizes": [
                    {"memory_mb": p.memory_mb, "outcome": p.outcome, "wall_s": p.wall_s, "wall_s_predicted": p.wall_s_predicted,
                     "usd_per_million": p.usd_per_million, "usd_per_million_predicted": p.usd_per_million_predicted}
                    for p in tuned.points if p.memory_mb in POWER_TUNING_MB
                ],
            })  # fmt: skip
        emulated = m.emulated
    ours = sum(r["recommended_usd_per_million"] for r in rows)
    theirs = sum(r["power_tuning_usd_per_million"] for r in rows)
    ratio = ours / theirs

    load = os.getloadavg()
    print(f"cost right-sizing, {dt.date.today().isoformat()}, sheet {sheet.name}, {args.repeat} runs per size, "
          f"CPU share {'applied by a CPU quota' if emulated else 'NOT applied (no quota here)'}, "
          f"load average at start {load_start[0]:.2f}, at end {load[0]:.2f} ({os.cpu_count()} CPUs)")  # fmt: skip
    print()
    print(f"{'function':<8} {'peak':>9} {'cpu':>8}   {'Power Tuning':>22}   {'wasmscope':>22}  {'pred.':>8}  ratio")
    for r in rows:
        print(f"{r['function']:<8} {r['peak_memory'] / MIB:>5.0f} MiB {r['cpu_s'] * 1e3:>5.0f} ms   "
              f"{r['power_tuning_mb']:>5} MB ${r['power_tuning_usd_per_million']:>9.4f}/M   "
              f"{r['recommended_mb']:>5} MB ${r['recommended_usd_per_million']:>9.4f}/M  "
              f"${r['recommended_predicted_usd_per_million']:>7.4f}  "
              f"{r['recommended_usd_per_million'] / r['power_tuning_usd_per_million']:.3f}")  # fmt: skip
        for p in r["sizes"]:
            err = p["wall_s"] / p["wall_s_predicted"] - 1 if p["wall_s_predicted"] else float("nan")
            print(f"{'':8}   {p['memory_mb']:>5} MB {p['outcome']:<14} measured {p['wall_s'] * 1e3:>8.1f} ms  predicted "
                  f"{p['wall_s_predicted'] * 1e3:>8.1f} ms ({err:+.0%})  ${p['usd_per_million']:.4f}/M")  # fmt: skip
    print()
    print(f"total per million invocations of each function: wasmscope ${ours:.4f}, Power Tuning ${theirs:.4f}, "
          f"ratio {ratio:.3f} (target <= 1.05)")  # fmt: skip
    print(f"runs: wasmscope {recorded_runs} (one recorded run per function), Power Tuning {tuning_runs} "
          f"({len(POWER_TUNING_MB)} sizes x {args.repeat} runs x {len(rows)} functions); "
          f"{grading_runs} more runs measured wasmscope's choice for this comparison")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": dt.date.today().isoformat(), "sheet": sheet.name, "repeat": args.repeat, "emulated": emulated,
            "load_average": [load_start[0], load[0]],
            "wasmscope_usd_per_million": ours, "power_tuning_usd_per_million": theirs, "ratio": ratio,
            "wasmscope_runs": recorded_runs, "power_tuning_runs": tuning_runs, "grading_runs": grading_runs,
            "functions": rows,
        }, indent=2) + "\n")  # fmt: skip
    return 0 if ratio <= 1.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
