"""Measuring a guest at a memory limit and a CPU share, in a child process.

The child (``python -m wasmscope.cost._measure``) keeps one :class:`Runtime` and answers
one JSON line per request on stdin with the run's record as one JSON line on stdout.
The parent (:class:`Measurer`) holds the child to the request's CPU share while it runs
(:mod:`wasmscope.cost._throttle`), so a record's wall time is what the guest takes at
that share; its CPU time is the guest's own and does not change with the share.
Each module is run once at full speed before it is measured (compiled, cached, warm).
Every run counts host calls (an audit without records), so records carry host_calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Any

from wasmscope.errors import UsageError

__all__ = ["Measurer", "main"]


class Measurer:
    """Runs guests in a child process at a memory limit and a CPU share (``emulated``:
    False where no CPU quota can be had, and then every run is at a whole CPU).

        with Measurer() as m:
            rec = m.run("app.wasm", ["arg"], memory_limit=256 << 20, share=0.14)
            rec["duration_seconds"], rec["cpu_seconds"], rec["outcome"]

    ``runs`` counts the measured runs (warm-up runs are not counted)."""

    def __init__(self) -> None:
        from wasmscope.cost import _throttle

        env = dict(os.environ)
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "wasmscope.cost._measure"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1,
        )  # fmt: skip
        # Without a CPU quota (not root, no cgroup): every run is at a whole CPU.
        self._throttle = _throttle.CpuShare(self._proc.pid) if _throttle.available() else None
        self.emulated = self._throttle is not None
        self._warm: set[tuple[str, tuple[str, ...]]] = set()
        self.runs = 0
        self._read()  # "ready"

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._throttle is not None:
            self._throttle.close()
        proc = self._proc
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the measuring process ended (exit {self._proc.wait()})")
        doc: dict[str, Any] = json.loads(line)
        if "failure" in doc:
            raise UsageError(str(doc["failure"]))
        return doc

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] | None = self._proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        return self._read()

    def run(
        self,
        path: str,
        args: Sequence[str] = (),
        *,
        memory_limit: int | None = None,
        share: float = 1.0,
        fuel: int | None = None,
    ) -> dict[str, Any]:
        """One run of ``path`` at ``memory_limit`` bytes and ``share`` of a CPU: its
        record as JSON (``InvocationRecord.to_json``)."""
        if not share > 0:
            raise UsageError(f"CPU share must be positive, not {share}")
        request = {"path": str(path), "args": list(args), "memory_limit": memory_limit, "fuel": fuel}
        key = (str(path), tuple(args))
        if key not in self._warm:
            self._ask({**request, "memory_limit": None})
            self._warm.add(key)
        if self._throttle is not None:
            self._throttle.set(share)
        try:
            rec = self._ask(request)
        finally:
            if self._throttle is not None:
                self._throttle.set(1.0)
        self.runs += 1
        return rec


def main() -> int:
    """The child: one Runtime, one record per request line."""
    from wasmscope.runtime import Limits, RunOptions, Runtime
    from wasmscope.runtime.host_calls import AuditSettings

    out = sys.stdout
    with Runtime() as rt:
        out.write('{"ready": true}\n')
        out.flush()
        for line in sys.stdin:
            try:
                req = json.loads(line)
                limits = Limits(memory_limit=req.get("memory_limit"), fuel=req.get("fuel") or 2**62)
                options = RunOptions(limits=limits, audit=AuditSettings(record=False))
                rec = rt.run(req["path"], list(req.get("args", [])), options)
                doc = rec.to_json()
            except Exception as exc:  # reported to the parent, which raises it
                doc = {"failure": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(doc, default=str) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
