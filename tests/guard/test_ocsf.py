"""Findings as OCSF JSON lines: one golden record per class, every record against its
class definition's required attributes and enums, and the writer (append, one write
per invocation, nothing lost on kill -9 once written).

The table below is written from the OCSF schema's class definitions
(ocsf/ocsf-schema: events/base_event.json and traits, events/system/system.json,
file_activity.json, process_activity.json, events/network/network.json and
network_activity.json, events/application/api_activity.json,
events/findings/finding.json and detection_finding.json; objects file, device, api,
finding_info, metadata, product). Regenerate the golden files with
``WASMSCOPE_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import REPO_ROOT
from tests.guard import findings_data as fd
from tests.telemetry.records import make_record
from wasmscope.errors import UsageError
from wasmscope.guard.findings import Finding
from wasmscope.guard.ocsf import OCSF_VERSION, Host, OcsfWriter, class_of, ocsf_event
from wasmscope.runtime.record import InvocationRecord

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_790_000_000_000_000_000  # ns
HOST = Host("guard-host", 4242)
TRACE = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")

BASE = ("activity_id", "category_uid", "class_uid", "metadata", "metadata.product", "metadata.version",
        "severity_id", "time", "type_uid")  # fmt: skip
#: class_uid -> (category_uid, required attributes beside BASE, activity_id values)
CLASSES: dict[int, tuple[int, tuple[str, ...], set[int]]] = {
    1001: (1, ("actor", "device", "device.type_id", "file", "file.name", "file.type_id"), {0, *range(1, 15), 99}),
    1007: (1, ("actor", "device", "device.type_id", "process"), {0, 1, 2, 3, 4, 5, 99}),
    # network.json: at least one of the endpoints (1.x releases require both: both are set)
    4001: (4, ("dst_endpoint", "src_endpoint"), {0, 1, 2, 3, 4, 5, 6, 7, 99}),
    6003: (6, ("actor", "api", "api.operation", "src_endpoint"), {0, 1, 2, 3, 4, 99}),
    2004: (2, ("finding_info", "finding_info.uid", "finding_info.title"), {0, 1, 2, 3, 99}),
}  # fmt: skip
SEVERITY_IDS = {0, 1, 2, 3, 4, 5, 6, 99}
STATUS_IDS = {0, 1, 2, 99}
ACTION_IDS = {0, 1, 2, 3, 4, 99}  # security_control profile
GOLDEN_OF = {
    "file_system_activity": (1001, fd.passwd_denied),
    "process_activity": (1007, fd.exit_code),
    "network_activity": (4001, fd.socket_denied),
    "api_activity": (6003, fd.random_budget),
    "detection_finding": (2004, fd.fuel_anomaly),
}


def record() -> InvocationRecord:
    return make_record(
        start_ns=T0, invocation_id="inv-golden", name="reader.wasm", args=["--in", "/data/x"]
    )


def event(finding: Finding) -> dict[str, Any]:
    return ocsf_event(finding, record(), host=HOST, product_version="0.1.0", trace=TRACE)


def missing(ev: Mapping[str, Any], names: tuple[str, ...]) -> list[str]:
    out = []
    for name in names:
        value: Any = ev
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or value == "" or value == {}:
            out.append(name)
    return out


def check_against_class(ev: dict[str, Any]) -> None:
    cls = ev["class_uid"]
    category, required, activities = CLASSES[cls]
    assert missing(ev, BASE + required) == [], cls
    assert ev["category_uid"] == category
    assert ev["activity_id"] in activities
    assert ev["type_uid"] == cls * 100 + ev["activity_id"]
    assert ev["severity_id"] in SEVERITY_IDS and ev["status_id"] in STATUS_IDS
    assert isinstance(ev["time"], int) and ev["time"] > 1_000_000_000_000  # ms since the epoch
    assert (
        ev["metadata"]["version"] == OCSF_VERSION
        and ev["metadata"]["product"]["name"] == "wasmscope"
    )
    if "action_id" in ev:
        assert ev["action_id"] in ACTION_IDS and "security_control" in ev["metadata"]["profiles"]
    json.dumps(ev, allow_nan=False)  # plain JSON


@pytest.mark.parametrize("name", sorted(GOLDEN_OF))
def test_golden_record_of_each_class(name: str) -> None:
    cls, make = GOLDEN_OF[name]
    ev = event(make())
    assert ev["class_uid"] == cls
    path = GOLDEN / f"{name}.json"
    if os.environ.get("WASMSCOPE_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(ev, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert ev == json.loads(path.read_text()), (
        f"{path} differs (WASMSCOPE_UPDATE_GOLDEN=1 rewrites it)"
    )
    check_against_class(ev)


@pytest.mark.parametrize("finding", fd.all_findings(), ids=lambda f: f.rule)
def test_every_record_meets_its_class_definition(finding: Finding) -> None:
    check_against_class(event(finding))


def test_classes_and_activities_of_the_findings() -> None:
    got = {f.rule: (class_of(f), event(f)["activity_id"]) for f in fd.all_findings()}
    assert got == {
        "fs.path": (1001, 14),  # Open
        "env.variable": (1007, 99),
        "exit.code": (1007, 2),  # Terminate
        "sockets.accept": (4001, 5),  # Refuse
        "budget.random_bytes": (6003, 2),  # Read
        "anomaly.fuel": (2004, 1),
        "anomaly.sequence": (2004, 1),
        "runtime.advisory": (2004, 1),
    }


def test_the_golden_denial_says_what_was_asked_and_the_fix() -> None:
    ev = json.loads((GOLDEN / "file_system_activity.json").read_text())
    assert ev["file"] == {"name": "passwd", "path": "/etc/passwd", "type_id": 0, "type": "Unknown"}
    assert (ev["action"], ev["disposition"], ev["status"]) == ("Denied", "Blocked", "Failure")
    wasm = ev["unmapped"]["wasm"]
    assert wasm["policy_suggestion"] == 'filesystem.read = ["/etc/passwd"]'
    assert wasm["host_call"]["errno"] == 76 and (wasm["trace_id"], wasm["span_id"]) == TRACE
    assert ev["actor"]["process"] == {"name": "reader.wasm", "uid": "inv-golden", "pid": 4242,
                                      "cmd_line": "reader.wasm --in /data/x"}  # fmt: skip


def test_writer_appends_one_line_per_event(tmp_path: Path) -> None:
    out = tmp_path / "guard.ocsf.jsonl"
    out.write_text('{"earlier":true}\n')
    with OcsfWriter(out, host=HOST, product_version="0.1.0") as w:
        assert w.write(fd.all_findings(), record(), TRACE) == 8
        assert w.write([], record()) == 0
        assert w.write([fd.passwd_denied()], record()) == 1
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10 and json.loads(lines[0]) == {"earlier": True}
    assert [json.loads(x)["class_uid"] for x in lines[1:]] == [
        1001,
        1007,
        1007,
        4001,
        6003,
        2004,
        2004,
        2004,
        1001,
    ]
    with pytest.raises(UsageError):
        w.write([fd.advisory()], record())


def test_undecodable_path_bytes_keep_the_file_utf8(tmp_path: Path) -> None:
    f = fd.passwd_denied()
    bad = Finding(f.name, f.rule, f.severity, f.message, f.category, f.outcome,
                  target=b"/etc/\xff\x00x".decode("utf-8", "surrogateescape"))  # fmt: skip
    out = tmp_path / "o.jsonl"
    with OcsfWriter(out, host=HOST, product_version="0.1.0") as w:
        w.write([bad], record())
    ev = json.loads(out.read_bytes().decode("utf-8"))
    assert ev["file"]["path"] == "/etc/\udcff\x00x"


def test_an_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot open the OCSF output"):
        OcsfWriter(tmp_path / "missing-dir" / "o.jsonl")


KILLER = r"""
import os, signal, sys
from tests.guard import findings_data as fd
from tests.telemetry.records import make_record
from wasmscope.guard.ocsf import Host, OcsfWriter
w = OcsfWriter(sys.argv[1], host=Host("h", 1), product_version="0")
for i in range(int(sys.argv[2])):
    w.write(fd.all_findings(), make_record(invocation_id=f"inv-{i}"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_nothing_written_is_lost_on_kill_9(tmp_path: Path) -> None:
    out = tmp_path / "killed.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(out), "25"], env=env, cwd=REPO_ROOT, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 25 * 8
    assert {json.loads(x)["unmapped"]["wasm"]["invocation_id"] for x in lines[:-1]} == {
        f"inv-{i}" for i in range(25)
    }
