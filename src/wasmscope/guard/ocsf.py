"""Findings as OCSF events, one JSON object per line (``--ocsf FILE``), for SIEMs.

Schema: OCSF 1.5.0 (:data:`OCSF_VERSION`). Each finding becomes one event of

- File System Activity (1001) for filesystem findings,
- Process Activity (1007) for environment, argv, exit codes and limits that stopped
  the guest,
- Network Activity (4001) for sockets,
- API Activity (6003) for the other host calls and imports,
- Detection Finding (2004) for anomalies, advisories, sanitized output and audit drops.

Every event has the base attributes (``class_uid``, ``category_uid``, ``activity_id``,
``type_uid = class_uid * 100 + activity_id``, ``severity_id``, ``time`` in ms,
``metadata.product`` and ``metadata.version``, ``status``/``status_id``, ``message``)
and the objects its class requires (from the class definitions of the OCSF schema: ``actor`` and ``device`` for System Activity, ``file``, ``process``,
``src_endpoint``/``dst_endpoint``, ``api``, ``finding_info``). The activity classes
also carry the ``security_control`` profile's ``action_id`` and ``disposition_id``
(allowed, or blocked for denials and kills). The guest is the actor's process (the
module's name, the invocation id as its ``uid``); wasm values without an OCSF place
(rule, target, suggestion, details, trace ids) are under ``unmapped.wasm``.

:class:`OcsfWriter` appends the lines of one invocation with one ``write(2)`` on a
file opened with ``O_APPEND``: once :meth:`OcsfWriter.write` returns, the lines are in
the kernel's hands and a ``kill -9`` of wasmscope loses none of them; with
``fsync=True`` they are also on disk (a power loss loses none) at the cost of one
``fsync`` per invocation.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.guard.events import event_time_ns
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "CLASS_API",
    "CLASS_DETECTION",
    "CLASS_FILE",
    "CLASS_NETWORK",
    "CLASS_PROCESS",
    "OCSF_VERSION",
    "Host",
    "OcsfWriter",
    "class_of",
    "ocsf_event",
    "ocsf_events",
]

OCSF_VERSION = "1.5.0"

CLASS_FILE = 1001
CLASS_PROCESS = 1007
CLASS_NETWORK = 4001
CLASS_API = 6003
CLASS_DETECTION = 2004

#: ``class_uid -> (class_name, category_uid, category_name)``.
CLASSES: dict[int, tuple[str, int, str]] = {
    CLASS_FILE: ("File System Activity", 1, "System Activity"),
    CLASS_PROCESS: ("Process Activity", 1, "System Activity"),
    CLASS_NETWORK: ("Network Activity", 4, "Network Activity"),
    CLASS_API: ("API Activity", 6, "Application Activity"),
    CLASS_DETECTION: ("Detection Finding", 2, "Findings"),
}

# severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical
_SEVERITY = {Severity.INFO: 1, Severity.WARN: 3, Severity.ERROR: 4, Severity.FATAL: 5}
_SEVERITY_NAMES = {
    0: "Unknown",
    1: "Informational",
    2: "Low",
    3: "Medium",
    4: "High",
    5: "Critical",
}
# status_id: 0 Unknown, 1 Success, 2 Failure (of what the guest attempted)
_STATUS = {Outcome.DENIED: (2, "Failure"), Outcome.KILLED: (2, "Failure"), Outcome.ALLOWED: (1, "Success"),
           Outcome.UNKNOWN: (0, "Unknown")}  # fmt: skip
_DETECTION_NAMES = frozenset(
    {EventName.ANOMALY, EventName.ADVISORY, EventName.OUTPUT, EventName.DROPPED}
)
_PROCESS_CATEGORIES = frozenset({"environment", "argv", "process", "process-exit"})

# activity_id by WASI preview 1 function, per class (absent: 99 Other)
_FILE_ACTIVITY = {
    "path_open": (14, "Open"), "fd_read": (2, "Read"), "fd_pread": (2, "Read"), "fd_readdir": (2, "Read"),
    "path_readlink": (2, "Read"), "fd_write": (3, "Update"), "fd_pwrite": (3, "Update"),
    "fd_allocate": (3, "Update"), "fd_filestat_set_size": (3, "Update"), "path_create_directory": (1, "Create"),
    "path_symlink": (1, "Create"), "path_link": (1, "Create"), "path_unlink_file": (4, "Delete"),
    "path_remove_directory": (4, "Delete"), "path_rename": (5, "Rename"),
    "fd_filestat_set_times": (6, "Set Attributes"), "path_filestat_set_times": (6, "Set Attributes"),
    "fd_fdstat_set_flags": (6, "Set Attributes"), "fd_filestat_get": (8, "Get Attributes"),
    "path_filestat_get": (8, "Get Attributes"), "fd_fdstat_get": (8, "Get Attributes"),
}  # fmt: skip
_API_READ = frozenset({"clock_time_get", "clock_res_get", "random_get", "poll_oneoff", "fd_prestat_get",
                       "fd_prestat_dir_name"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Host:
    """Where the guest ran: the ``device`` and the actor's process id."""

    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def class_of(finding: Finding) -> int:
    """The OCSF class of a finding (see the module doc)."""
    if finding.name in _DETECTION_NAMES:
        return CLASS_DETECTION
    if finding.category == "filesystem":
        return CLASS_FILE
    if finding.category in _PROCESS_CATEGORIES or (
        finding.call is None and finding.name is EventName.LIMIT
    ):
        return CLASS_PROCESS
    if finding.category in ("sockets", "network"):
        return CLASS_NETWORK
    return CLASS_API


def _activity(cls: int, finding: Finding) -> tuple[int, str]:
    func = finding.call.func if finding.call is not None else ""
    denied = finding.outcome in (Outcome.DENIED, Outcome.KILLED)
    if cls == CLASS_FILE:
        return _FILE_ACTIVITY.get(func, (99, func or "Other"))
    if cls == CLASS_PROCESS:
        if func == "proc_exit" or finding.outcome is Outcome.KILLED:
            return 2, "Terminate"
        return 99, func or finding.rule
    if cls == CLASS_NETWORK:
        if denied:
            return 5, "Refuse"
        if func in ("sock_accept",):
            return 1, "Open"
        if func == "sock_shutdown":
            return 2, "Close"
        return 6, "Traffic"
    if cls == CLASS_API:
        if func in _API_READ:
            return 2, "Read"
        return 99, func or finding.rule
    return 1, "Create"  # a new detection finding


def _file(finding: Finding) -> dict[str, Any]:
    path = finding.target or (finding.call.path if finding.call is not None else None) or ""
    name = path.rstrip("/").rsplit("/", 1)[-1] or path or "(unknown)"
    # type_id: 1 Regular File, 2 Folder, 0 Unknown (the guest's request says no more)
    return {"name": name, "path": path, "type_id": 2 if path.endswith("/") else 0,
            "type": "Folder" if path.endswith("/") else "Unknown"}  # fmt: skip


def _unmapped(
    finding: Finding, record: InvocationRecord, trace: tuple[str, str] | None
) -> dict[str, Any]:
    wasm: dict[str, Any] = {"rule_id": finding.rule, "event_name": str(finding.name), "category": finding.category,
                            "outcome": str(finding.outcome), "invocation_id": record.invocation_id,
                            "module": {"name": record.module.name, "sha256": record.module.sha256}}  # fmt: skip
    if finding.target is not None:
        wasm["target"] = finding.target
    if finding.suggestion is not None:
        wasm["policy_suggestion"] = finding.suggestion
    call = finding.call
    if call is not None:
        wasm["host_call"] = {"func": call.func, "seq": call.seq, "errno": call.errno, "args": dict(call.args),
                             "path": call.path, "denied": call.denied}  # fmt: skip
    if finding.details:
        wasm["details"] = json.loads(json.dumps(dict(finding.details), default=str))
    if trace is not None:
        wasm["trace_id"], wasm["span_id"] = trace
    return {"wasm": wasm}


def ocsf_event(finding: Finding, record: InvocationRecord, *, host: Host, product_version: str,
               trace: tuple[str, str] | None = None, time_ns: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The OCSF event of ``finding`` (found in ``record``) as a JSON-ready dict.
    ``trace`` is the invocation span's (trace id, span id) in hex, when known."""
    cls = class_of(finding)
    class_name, category_uid, category_name = CLASSES[cls]
    activity_id, activity_name = _activity(cls, finding)
    severity_id = _SEVERITY.get(finding.severity, 0)
    status_id, status = _STATUS.get(finding.outcome, (0, "Unknown"))
    at = time_ns if time_ns is not None else event_time_ns(record)
    ev: dict[str, Any] = {
        "class_uid": cls, "class_name": class_name, "category_uid": category_uid, "category_name": category_name,
        "activity_id": activity_id, "activity_name": activity_name, "type_uid": cls * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}", "severity_id": severity_id,
        "severity": _SEVERITY_NAMES[severity_id], "time": at // 1_000_000, "message": finding.message,
        "status_id": status_id, "status": status,
        "metadata": {"version": OCSF_VERSION, "product": {"name": "wasmscope", "vendor_name": "wasmscope",
                                                           "version": product_version},
                     "correlation_uid": record.invocation_id, "log_name": "wasmscope.guard",
                     "event_code": finding.rule},
    }  # fmt: skip
    process = {"name": record.module.name, "uid": record.invocation_id, "pid": host.pid,
               "cmd_line": " ".join([record.module.name, *record.args])}  # fmt: skip
    actor = {"process": process, "app_name": "wasmscope"}
    device = {"hostname": host.hostname, "type_id": 0, "type": "Unknown"}
    call = finding.call
    if cls != CLASS_DETECTION:
        ev["metadata"]["profiles"] = ["security_control", "host"]
        blocked = finding.outcome in (Outcome.DENIED, Outcome.KILLED)
        ev.update({"action_id": 2 if blocked else 1, "action": "Denied" if blocked else "Allowed",
                   "disposition_id": 2 if blocked else 1, "disposition": "Blocked" if blocked else "Allowed",
                   "actor": actor, "device": device})  # fmt: skip
    if cls == CLASS_FILE:
        ev["file"] = _file(finding)
    elif cls == CLASS_PROCESS:
        ev["process"] = dict(process)
        if call is not None and call.func == "proc_exit" and "rval" in call.args:
            ev["exit_code"] = call.args["rval"]
        elif record.exit_code is not None:
            ev["exit_code"] = record.exit_code
    elif cls == CLASS_NETWORK:
        ev["src_endpoint"] = {"hostname": host.hostname, "name": record.module.name}
        dst: dict[str, Any] = {"name": finding.target or "(unknown)"}
        if call is not None and "fd" in call.args:
            dst["uid"] = f"fd:{call.args['fd']}"
        ev["dst_endpoint"] = dst
    elif cls == CLASS_API:
        operation = call.func if call is not None else (finding.target or finding.rule)
        service = "wasi_snapshot_preview1" if call is not None else "import"
        ev["api"] = {"operation": operation, "service": {"name": service}}
        if call is not None and call.errno is not None:
            ev["api"]["response"] = {"code": call.errno}
        ev["src_endpoint"] = {"hostname": host.hostname, "name": record.module.name}
    else:
        ev["finding_info"] = {
            "uid": f"{record.invocation_id}:{finding.rule}:{call.seq if call is not None else 0}",
            "title": finding.message, "desc": finding.message, "types": [str(finding.name)],
            "analytic": {"name": finding.rule, "type_id": 99 if finding.name is EventName.ADVISORY else 4,
                         "type": "Other" if finding.name is EventName.ADVISORY else "Statistical"},
            "created_time": at // 1_000_000, "src_url": None,
        }  # fmt: skip
        ev["finding_info"] = {k: v for k, v in ev["finding_info"].items() if v is not None}
        ev["is_alert"] = finding.name is EventName.ANOMALY
        ev["resources"] = [
            {"name": record.module.name, "uid": record.module.sha256, "type": "wasm module"}
        ]
        ev["actor"] = actor
        ev["device"] = device
    ev["unmapped"] = _unmapped(finding, record, trace)
    return ev


def ocsf_events(record: InvocationRecord, findings: Iterable[Finding], *, host: Host, product_version: str,
                trace: tuple[str, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    return [
        ocsf_event(f, record, host=host, product_version=product_version, trace=trace)
        for f in findings
    ]


def _product_version() -> str:
    import wasmscope

    return str(wasmscope.__version__)


class OcsfWriter:
    """Appends OCSF events to ``path``, one JSON object a line (see the module doc
    for what survives a crash). Thread-safe; a context manager."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False, host: Host | None = None,
                 product_version: str | None = None) -> None:  # fmt: skip
        self.path = os.fspath(path)
        self.fsync = fsync
        self.host = host or Host()
        self.product_version = product_version or _product_version()
        self.lines = 0
        self._lock = threading.Lock()
        try:
            self._fd: int | None = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as exc:
            raise UsageError(f"cannot open the OCSF output {self.path}: {exc.strerror}") from exc

    def write(self, findings: Iterable[Finding], record: InvocationRecord,
              trace: tuple[str, str] | None = None) -> int:  # fmt: skip
        """Append the events of one invocation's findings; how many lines were written."""
        events = ocsf_events(
            record, findings, host=self.host, product_version=self.product_version, trace=trace
        )
        if not events:
            return 0
        data = "".join(
            json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events
        )
        # a path's undecodable bytes (surrogates) become \udcXX escapes: the file stays UTF-8
        buf = memoryview(data.encode("utf-8", "backslashreplace"))
        with self._lock:
            if self._fd is None:
                raise UsageError("the OCSF writer is closed")
            while buf:  # a regular file takes it all at once; a short write is finished here
                n = os.write(self._fd, buf)
                buf = buf[n:]
            if self.fsync:
                os.fsync(self._fd)
            self.lines += len(events)
        return len(events)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> OcsfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
