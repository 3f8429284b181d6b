"""A CPU-share emulation: a process gets at most ``share`` of one CPU, by a CFS quota.

Hosts such as AWS Lambda give a function a share of a vCPU that grows with its memory
size (one vCPU at 1,769 MB). To measure a guest at such a share on this machine,
:class:`CpuShare` puts the measuring child process in a cgroup of its own and sets the
kernel's CFS bandwidth control on it: at most ``share * period`` seconds of CPU in
every ``period`` (20 ms), the rest of the period stopped. The kernel does the
accounting, so a guest that waits in a host call uses none of its quota, as on the
host. This is the mechanism, not the host: this machine's cores stand in for the
host's vCPUs.

It needs a writable cgroup ``cpu`` controller (cgroup v2 with ``cpu.max``, or v1 with
``cpu.cfs_quota_us``), which in practice means root; :func:`available` says whether
it can be had, and the sweep falls back to modelling the share when it cannot.
(An emulation from outside, stopping and continuing the process by signals, was
tried: the kernel updates another process's CPU clock only at scheduler ticks,
4 ms here, so it overshot small quotas by 2x. A 100 ms period, Linux's default, was
tried too: invocations of tens of milliseconds then run in one or two periods, and
their time follows the period's quantisation more than the share.) The kernel hands
quota out in 5 ms slices (``sched_cfs_bandwidth_slice_us``), which costs small
quotas: on an idle machine a CPU-bound guest at 0.29 vCPU or less took 12-16% longer
than its CPU time over the share, at 0.58 or more 1-3%.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["MIN_QUOTA_S", "PERIOD_S", "CpuShare", "available", "cpu_root"]

PERIOD_S = 0.020
MIN_QUOTA_S = 0.001  # the kernel refuses quotas under 1 ms

_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")


def cpu_root() -> tuple[Path, int] | None:
    """The cgroup folder to make groups in and its version (1 or 2), or None."""
    if (_V1 / "cpu.cfs_quota_us").is_file() and os.access(_V1, os.W_OK):
        return _V1, 1
    if (_V2 / "cgroup.subtree_control").is_file() and os.access(_V2, os.W_OK):
        try:
            if "cpu" in (_V2 / "cgroup.subtree_control").read_text().split():
                return _V2, 2
        except OSError:
            return None
    return None


def available() -> bool:
    """True where this process may make a cgroup with a CPU quota."""
    return cpu_root() is not None


class CpuShare:
    """Holds process ``pid`` (all its threads) to a share of one CPU.

        with CpuShare(child.pid) as throttle:
            throttle.set(0.25)   # the child now runs at a quarter of a CPU
            throttle.set(1.0)    # a whole CPU: no limit (a guest runs on one thread)
    """

    def __init__(self, pid: int, *, period: float = PERIOD_S) -> None:
        root = cpu_root()
        if root is None:
            raise OSError("no writable cgroup cpu controller (CPU quotas need root)")
        base, self.version = root
        self.period = period
        self.path = base / f"wasmscope-share-{os.getpid()}-{pid}"
        self.path.mkdir(exist_ok=True)
        if self.version == 1:
            (self.path / "cpu.cfs_period_us").write_text(str(round(period * 1e6)))
        (self.path / "cgroup.procs").write_text(str(pid))
        self.pid = pid
        self.share = 1.0

    def __enter__(self) -> CpuShare:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set(self, share: float) -> None:
        """At most ``share`` of one CPU from now on (1 or more: no limit)."""
        if not share > 0:
            raise ValueError(f"CPU share must be positive, not {share}")
        period_us = round(self.period * 1e6)
        quota_us = -1 if share >= 1.0 else max(round(MIN_QUOTA_S * 1e6), round(share * period_us))
        if self.version == 1:
            (self.path / "cpu.cfs_quota_us").write_text(str(quota_us))
        else:
            (self.path / "cpu.max").write_text(f"{'max' if quota_us < 0 else quota_us} {period_us}")
        self.share = share

    def close(self) -> None:
        """Moves the process back to the parent group (if alive) and removes the group."""
        try:
            procs = (self.path / "cgroup.procs").read_text().split()
            for p in procs:
                with contextlib.suppress(OSError):
                    (self.path.parent / "cgroup.procs").write_text(p)
            self.path.rmdir()
        except OSError:
            pass
