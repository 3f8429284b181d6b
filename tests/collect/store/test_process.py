"""The store across processes: one owner per data directory, and kill -9 during ingest
loses no acknowledged span and stores none twice.

chDB allows one data directory per process, and this process's is the session's
``chdb_backend``: the other stores here live in subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from wasmscope.collect.store.embedded import ChdbBackend

# Opens the store at argv[1] and delivers requests of 10 spans from 3 threads through
# the writer, printing each acknowledged batch's span ids (flushed) once deliver returned.
FEEDER = r"""
import sys, threading
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store.store import Store

store = Store.open(sys.argv[1])
store.ensure_schema()
writer = store.writer()
out = threading.Lock()
T0 = 1_764_763_200_000_000_000

def feed(worker):
    i = 0
    while True:
        ids = [(worker << 40) + i * 10 + k + 1 for k in range(10)]
        req = ExportTraceServiceRequest()
        ss = req.resource_spans.add().scope_spans.add()
        for x in ids:
            ss.spans.append(Span(trace_id=x.to_bytes(16, "big"), span_id=x.to_bytes(8, "big"),
                                 name="GET /k", start_time_unix_nano=T0 + x,
                                 end_time_unix_nano=T0 + x + 5))
        writer.deliver(Signal.TRACES, req, len(ids))
        with out:
            sys.stdout.write(" ".join(f"{x:016x}" for x in ids) + "\n")
            sys.stdout.flush()
        i += 1

print("ready", flush=True)
threads = [threading.Thread(target=feed, args=(w,), daemon=True) for w in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

READER = r"""
import json, sys
from wasmscope.collect.store.store import Store
with Store.open(sys.argv[1]) as store:
    rows = store.backend.query("SELECT SpanId, count() FROM otel.otel_traces GROUP BY SpanId").rows
    print(json.dumps(dict(rows)))
"""

OPENER = r"""
import sys
from wasmscope.collect.store.store import Store
from wasmscope.errors import StoreLockedError
try:
    Store.open(sys.argv[1])
except StoreLockedError as exc:
    print("locked:", exc, "|", exc.path)
else:
    print("opened")
"""


def run(script: str, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_second_process_on_the_same_directory_is_refused(chdb_backend: ChdbBackend) -> None:
    out = run(OPENER, str(chdb_backend.path))
    assert out.startswith("locked:"), out
    assert f"in use by process {os.getpid()}" in out
    assert str(chdb_backend.path) in out


def test_kill_9_loses_no_acknowledged_span_and_stores_none_twice(tmp_path: Path) -> None:
    data = tmp_path / "store"
    feeder = subprocess.Popen(
        [sys.executable, "-c", FEEDER, str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[str] = []
    try:
        assert feeder.stdout is not None
        assert feeder.stdout.readline().strip() == "ready", (
            feeder.stderr.read() if feeder.stderr else ""
        )
        while len(acknowledged) < 300:  # 30 batches answered, more in flight
            line = feeder.stdout.readline()
            assert line, feeder.stderr.read() if feeder.stderr else ""
            acknowledged.extend(line.split())
        feeder.send_signal(signal.SIGKILL)
        feeder.wait(30)
        # Lines printed before the kill were acknowledged too.
        acknowledged.extend(feeder.stdout.read().split())
    finally:
        if feeder.poll() is None:
            feeder.kill()
            feeder.wait()
        if feeder.stdout is not None:
            feeder.stdout.close()
        if feeder.stderr is not None:
            feeder.stderr.close()
    assert feeder.returncode == -signal.SIGKILL

    stored: dict[str, int] = json.loads(run(READER, str(data)))
    missing = [s for s in acknowledged if s not in stored]
    assert not missing, f"{len(missing)} acknowledged spans lost, e.g. {missing[:3]}"
    twice = {s: n for s, n in stored.items() if n != 1}
    assert not twice, f"spans stored more than once: {list(twice.items())[:3]}"
    assert len(stored) >= len(acknowledged)  # plus, perhaps, the unacknowledged in flight
