"""yosys (the real-corpus module, 66 MB) synthesizing a 48x48 multiplier, profiled:
the same output and exit code as the uninstrumented run, exact counts, a sampled
profile. The first session instruments (~10 s) and compiles (~1 min) it; both are
cached (pytest's cache folder) for later sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

import wasmscope
from tests.runtime.conftest import MUL_V, YOSYS_SCRIPT
from wasmscope.runtime import Outcome, Runtime

pytestmark = [pytest.mark.slow, pytest.mark.realcorpus]

_VOLATILE = ("End of script.", "Time spent:")  # timings differ from run to run


def _stable(output: bytes) -> list[str]:
    return [line for line in output.decode().splitlines() if not line.startswith(_VOLATILE)]


def test_yosys_profiled_gives_the_same_synthesis(
    yosys_wasm: Path, yosys_share: Path, shared_cache: Path, tmp_path: Path
) -> None:
    (tmp_path / "mul.v").write_text(MUL_V)
    dirs = [f"{yosys_share}::/share:ro", f"{tmp_path}::/tmp"]
    with Runtime(cache_dir=shared_cache) as rt:
        plain = rt.run(yosys_wasm, ["-p", YOSYS_SCRIPT], dirs=dirs)
        rec, prof = wasmscope.profile(yosys_wasm, ["-p", YOSYS_SCRIPT], dirs=dirs, runtime=rt)
    assert plain.outcome == rec.outcome == Outcome.OK, rec.error or rec.trap
    assert rec.exit_code == plain.exit_code == 0
    assert b"    14242 cells\n" in rec.stdout
    assert _stable(rec.stdout) == _stable(plain.stdout)
    assert rec.stderr == plain.stderr
    assert rec.module.sha256 == plain.module.sha256
    # exact counts and a profile worth reading
    assert prof.calls["main"] == 1
    assert sum(prof.calls.values()) > 1_000_000
    assert prof.host_calls["wasi_snapshot_preview1.fd_write"] >= 1
    assert prof.sampled > 100
    assert prof.bad_samples <= prof.sampled // 20
    top = prof.top(10)
    assert top[0].self_pct > 1 and all(r.name for r in top)
    assert max(len(s) for s in prof.samples) > 10  # real call depth, outermost first
