"""The capability policy of a module: what its guest may touch, as TOML.

::

    mode = "enforce"                       # monitor (default) | enforce | kill

    [filesystem]
    dirs = ["/data:ro", "/out:rw"]         # preopens (guest paths) the guest may have
    read = ["/data/*.csv"]                 # what it may open for reading (default: all of dirs)
    write = ["/out/**"]                    # what it may create or change (default: all rw dirs)

    [environment]
    allow = ["LANG", "LC_*"]               # variable names (globs) the guest may see

    [arguments]
    allow = ["--verbose", "*.txt"]         # each argv item after argv[0] (absent: any)

    [clocks]
    allow = ["realtime", "monotonic"]      # also process_cputime, thread_cputime
    max_calls = 10000                      # clock calls per invocation
    max_sleep = "1s"                       # longest poll_oneoff (a sleep)

    [random]
    max_bytes = "64KiB"                    # random_get bytes per invocation

    [sockets]
    allow = ["api.example.com:443"]        # outbound hosts (components)

    [exit]
    codes = [0]                            # expected exit codes (absent: [0])

    [budgets]
    host_calls = 100000                    # WASI calls per invocation
    output_bytes = "1MiB"                  # stdout + stderr
    open_fds = 64                          # descriptors open at once

    [imports]
    allow = ["env.log_*"]                  # "module.name" or interface globs linked anyway
    deny = ["wasi_snapshot_preview1.sock_*"]   # refused at link time (enforce, kill)
    strict = false                         # true: an import no section grants is refused too

A section that is absent grants nothing (no preopen, no variable, no clock, no
random bytes, no socket), except ``arguments`` (absent: any argv), ``exit`` (absent:
``[0]``) and ``budgets`` (absent: no ceiling). Stdio on descriptors the guest holds,
``proc_exit``, argv and the environment calls are always allowed: the policy cuts
the environment's values before the guest starts instead (:meth:`Policy.shape`).

:func:`load_policy` reads a file, :func:`parse_policy` a parsed table (a manifest's
inline ``[route.policy]``). Every mistake is a :class:`~wasmscope.errors.UsageError`
naming the file, the key and the fix. The reference is ``docs/guard.md``.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from wasmscope._files import read_toml
from wasmscope.errors import UsageError
from wasmscope.guard import _preview1 as p1
from wasmscope.guard._paths import (
    Preopen,
    dir_guest,
    glob_matches,
    guest_join,
    preopens_of,
    traversal,
    under,
)
from wasmscope.guard._verdict import breach, suggest
from wasmscope.guard.findings import Severity
from wasmscope.runtime.host_calls import Action, AuditSettings, Budgets, HostCall
from wasmscope.runtime.limits import parse_duration, parse_size

if TYPE_CHECKING:
    from wasmscope.guard.findings import Finding
    from wasmscope.runtime.host_calls import AuditLog
    from wasmscope.runtime.options import RunOptions
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "CLOCKS",
    "MODES",
    "BudgetRules",
    "ClockRules",
    "DirGrant",
    "FilesystemRules",
    "ImportRules",
    "Policy",
    "RandomRules",
    "load_policy",
    "parse_policy",
]

MODES = ("monitor", "enforce", "kill")
CLOCKS = tuple(p1.CLOCK_IDS.values())

SECTIONS: dict[str, tuple[str, ...]] = {
    "filesystem": ("dirs", "read", "write"),
    "environment": ("allow",),
    "arguments": ("allow",),
    "clocks": ("allow", "max_calls", "max_sleep"),
    "random": ("max_bytes",),
    "sockets": ("allow",),
    "exit": ("codes",),
    "budgets": ("host_calls", "output_bytes", "open_fds"),
    "imports": ("allow", "deny", "strict"),
}
TOP_KEYS = ("mode", *SECTIONS)


@dataclass(frozen=True, slots=True)
class DirGrant:
    """A preopen the guest may have, by its guest path."""

    guest: str
    read_only: bool = True

    @property
    def text(self) -> str:
        return f"{self.guest}:{'ro' if self.read_only else 'rw'}"


@dataclass(frozen=True, slots=True)
class FilesystemRules:
    """``read`` / ``write`` None: everything under the (read-write) dirs."""

    dirs: tuple[DirGrant, ...] = ()
    read: tuple[str, ...] | None = None
    write: tuple[str, ...] | None = None

    def grant(self, path: str) -> DirGrant | None:
        """The granted dir a normalized guest path is in (the deepest one)."""
        best: DirGrant | None = None
        for d in self.dirs:
            if under(d.guest, path) and (best is None or len(d.guest) > len(best.guest)):
                best = d
        return best


@dataclass(frozen=True, slots=True)
class ClockRules:
    allow: tuple[str, ...] = CLOCKS
    max_calls: int | None = None
    max_sleep: float | None = None  # seconds, one poll_oneoff


@dataclass(frozen=True, slots=True)
class RandomRules:
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetRules:
    host_calls: int | None = None
    output_bytes: int | None = None
    open_fds: int | None = None


@dataclass(frozen=True, slots=True)
class ImportRules:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    strict: bool = False


@functools.lru_cache(maxsize=8192)
def _any(globs: tuple[str, ...], text: str) -> bool:
    # Cached: serve asks it for every CGI variable of every request, with the same names.
    return any(fnmatch.fnmatchcase(text, g) for g in globs)


@functools.lru_cache(maxsize=1024)
def _outside(globs: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    # Cached per set of names: a route's requests carry the same CGI variables.
    return tuple(n for n in names if not _any(globs, n))


@dataclass(frozen=True, slots=True)
class Policy:
    """One module's policy (see the module docstring for the TOML).

    ``clocks`` / ``random`` None: not granted. ``arguments`` None: any argv.
    ``source`` names the file (or manifest table) it came from, for messages."""

    mode: str = "monitor"
    filesystem: FilesystemRules = FilesystemRules()
    environment: tuple[str, ...] = ()
    arguments: tuple[str, ...] | None = None
    clocks: ClockRules | None = None
    random: RandomRules | None = None
    sockets: tuple[str, ...] = ()
    exit_codes: tuple[int, ...] = (0,)
    budgets: BudgetRules = BudgetRules()
    imports: ImportRules = ImportRules()
    source: str = field(default="<policy>", compare=False)

    # -- questions the checks ask -----------------------------------------------------
    def env_allowed(self, name: str) -> bool:
        return _any(self.environment, name)

    def env_outside(self, names: Iterable[str]) -> tuple[str, ...]:
        """The names the environment allowlist does not allow, in order."""
        if "*" in self.environment:  # what serve's routes often say: no names to match
            return ()
        return _outside(self.environment, tuple(names))

    def arg_allowed(self, value: str) -> bool:
        return self.arguments is None or _any(self.arguments, value)

    def import_verdict(self, qualified: str) -> str | None:
        """``"deny"`` / ``"allow"`` when an ``[imports]`` glob names it, else None."""
        if _any(self.imports.deny, qualified):
            return "deny"
        if _any(self.imports.allow, qualified):
            return "allow"
        return None

    def granted(self, section: str) -> bool:
        """Whether a policy section grants its family at all."""
        if section == p1.ALWAYS:
            return True
        if section == "filesystem":
            return bool(self.filesystem.dirs)
        if section == "clocks":
            return self.clocks is not None and bool(self.clocks.allow)
        if section == "random":
            return self.random is not None and self.random.max_bytes != 0
        if section == "sockets":
            return bool(self.sockets)
        return False

    def path_allowed(self, path: str, write: bool) -> tuple[bool, str]:
        """Whether the normalized guest ``path`` may be opened (for writing when
        ``write``); the reason when not: ``dir`` (no granted dir holds it),
        ``read-only`` (its dir is granted read-only) or ``glob`` (no glob names it)."""
        fs = self.filesystem
        grant = fs.grant(path)
        if grant is None:
            return False, "dir"
        if write and grant.read_only:
            return False, "read-only"
        globs = fs.write if write else fs.read
        if globs is not None and not any(glob_matches(g, path) for g in globs):
            return False, "glob"
        return True, ""

    def suggestion_for_path(
        self, path: str, write: bool, reason: str, preopen: str | None = None
    ) -> str:
        """The one policy line that would allow opening ``path`` (``reason`` from
        :meth:`path_allowed`; ``preopen``: the guest dir the call went through)."""
        if reason == "dir":
            return suggest(
                "filesystem", "dirs", [f"{preopen or _parent(path)}:{'rw' if write else 'ro'}"]
            )
        if reason == "read-only":
            grant = self.filesystem.grant(path)
            return suggest("filesystem", "dirs", [f"{grant.guest if grant else _parent(path)}:rw"])
        return suggest("filesystem", "write" if write else "read", [path])

    # -- what the run is given --------------------------------------------------------
    def _mode(self, mode: str | None) -> str:
        chosen = self.mode if mode is None else mode
        if chosen not in MODES:
            raise UsageError(f"unknown guard mode {chosen!r}: use monitor, enforce or kill")
        return chosen

    def _fine_paths(self) -> bool:
        """Whether path globs say more than the preopens (then each path call is checked)."""
        fs = self.filesystem
        for globs, dirs in (
            (fs.read, fs.dirs),
            (fs.write, [d for d in fs.dirs if not d.read_only]),
        ):
            if (
                globs is not None
                and "**" not in globs
                and any(whole_dir_glob(d.guest) not in globs for d in dirs)
            ):
                return True
        return False

    def audit_settings(
        self, mode: str | None = None, options: RunOptions | None = None
    ) -> AuditSettings:
        """What the in-module audit does under this policy (``mode``: the policy's own
        by default). ``monitor`` allows every call and keeps every record; ``enforce``
        answers a call of a family the policy does not grant with ``notcapable`` and
        ``kill`` traps the instance instead. Path calls get ``Action.CHECK`` only when
        the path globs are finer than the preopens; ``options`` (the shaped ones) give
        the preopens' descriptor order, the policy's own order otherwise."""
        chosen = self._mode(mode)
        b = self.budgets
        budgets = Budgets(
            host_calls=b.host_calls,
            random_bytes=self.random.max_bytes if self.random is not None else None,
            output_bytes=b.output_bytes,
            open_fds=b.open_fds,
        )
        if chosen == "monitor":
            return AuditSettings(record=True, budgets=budgets, over_budget=Action.ALLOW)
        refuse = Action.KILL if chosen == "kill" else Action.DENY
        actions: dict[str, Action] = {}
        for func, section in p1.SECTION.items():
            if not self.granted(section):
                actions[func] = refuse
        check: Callable[[HostCall], bool] | None = None
        if self.granted("filesystem") and self._fine_paths():
            for func in p1.PATH_FUNCTIONS:
                actions[func] = Action.CHECK
            check = self.path_checker(self.preopens(options))
        return AuditSettings(
            record=True,
            actions=actions,
            budgets=budgets,
            over_budget=refuse,
            check=check,
            check_refused=refuse,
        )

    def preopens(self, options: RunOptions | None) -> list[Preopen]:
        """The run's preopens in descriptor order (the policy's dirs without options)."""
        if options is None:
            return [Preopen(d.guest, d.read_only) for d in self.filesystem.dirs]
        return preopens_of(options.dirs)

    def path_checker(self, preopens: Sequence[Preopen]) -> Callable[[HostCall], bool]:
        """The ``AuditSettings.check`` of a path call: its path resolved against the
        preopen its descriptor names, normalized, against the globs. A path that plays
        a trick (``..`` out, absolute, NUL) or goes through a descriptor that is not a
        preopen (it cannot be resolved before the call) is refused."""
        by_fd = {3 + i: p for i, p in enumerate(preopens)}

        def check(call: HostCall) -> bool:
            fd = p1.arg(call, "fd", "dirfd", "old_fd")
            preopen = by_fd.get(fd if fd is not None else -1)
            if preopen is None or call.path is None or call.path_truncated:
                return False
            if traversal(call.path) in ("nul", "absolute", "parent", "escape"):
                return False
            return self.path_allowed(guest_join(preopen.guest, call.path), p1.is_write(call))[0]

        return check

    def shape(
        self, options: RunOptions, mode: str | None = None
    ) -> tuple[RunOptions, list[Finding]]:
        """The run's WASI world cut to the policy. In ``enforce`` and ``kill``: only the
        allowed variables, only the granted dirs, read-only where the policy says so.
        In ``monitor`` nothing changes, and what lies outside the policy is reported."""
        chosen = self._mode(mode)
        cut = chosen != "monitor"
        findings: list[Finding] = []
        env = options.env or {}
        outside = self.env_outside(env)
        if outside:  # one finding for them all: serve's CGI variables are a score of them
            shown = ", ".join(outside[:8]) + (f" and {len(outside) - 8} more" if len(outside) > 8 else "")
            findings.append(breach(
                "env.variable", "environment",
                f"the environment has {len(outside)} variable{'s' if len(outside) != 1 else ''} the policy does "
                f"not allow ({shown})" + (": removed" if cut else ""),
                refused=cut, severity=Severity.INFO, target=",".join(outside),
                suggestion=suggest("environment", "allow", outside), details={"variables": len(outside)},
            ))  # fmt: skip
            if cut:
                env = {k: v for k, v in env.items() if k not in set(outside)}
        dirs: list[DirSpec] = []
        if options.dirs:  # an import statement costs µs, and serve shapes every request
            from wasmscope.runtime.wasi import DirSpec
        for d in options.dirs:
            spec = d if isinstance(d, DirSpec) else DirSpec.parse(d)
            grant = next(
                (g for g in self.filesystem.dirs if g.guest == dir_guest(spec.guest)), None
            )
            if grant is None:
                findings.append(breach(
                    "fs.dir", "filesystem",
                    f"{spec.guest} is preopened but the policy grants no such dir" + (": dropped" if cut else ""),
                    refused=cut, severity=Severity.INFO, target=spec.guest,
                    suggestion=suggest("filesystem", "dirs", [f"{spec.guest}:{'ro' if spec.read_only else 'rw'}"]),
                ))  # fmt: skip
                if not cut:
                    dirs.append(spec)
                continue
            if grant.read_only and not spec.read_only:
                findings.append(breach(
                    "fs.dir", "filesystem",
                    f"{spec.guest} is preopened read-write but the policy grants it read-only"
                    + (": made read-only" if cut else ""),
                    refused=cut, severity=Severity.INFO, target=spec.guest,
                    suggestion=suggest("filesystem", "dirs", [f"{spec.guest}:rw"]),
                ))  # fmt: skip
                if cut:
                    spec = replace(spec, read_only=True)
            dirs.append(spec)
        if not cut:
            return options, findings
        return replace(options, env=env, dirs=tuple(dirs)), findings

    def evaluate(
        self, rec: InvocationRecord, log: AuditLog | None, options: RunOptions | None = None
    ) -> list[Finding]:
        """Denials and violations of one run (see :mod:`wasmscope.guard.evaluate`)."""
        return _evaluate()(self, rec, log, options)

    def to_toml(self, comments: bool = True, notes: Mapping[str, str] | None = None) -> str:
        """The policy as TOML that :func:`parse_policy` reads back the same, with a
        comment on every key (``notes``: one more per key, ``{"clocks.max_calls": ...}``)."""
        from wasmscope.guard._toml_out import policy_toml

        return policy_toml(self, comments, notes)


@functools.cache
def _evaluate() -> Callable[..., list[Finding]]:
    # evaluate imports this module; the import statement is paid once, not per run
    from wasmscope.guard.evaluate import evaluate

    return evaluate


def whole_dir_glob(guest: str) -> str:
    """The glob of everything in a dir (``/data/**``; ``**`` for the relative ``.``)."""
    return "**" if guest in (".", "") else f"{guest.rstrip('/')}/**"


def _glob_base(glob: str) -> str:
    """The literal directory a glob starts with (``/data`` of ``/data/*.csv``)."""
    cut = min((i for i in (glob.find(c) for c in "*?[") if i >= 0), default=len(glob))
    return glob[:cut].rstrip("/")


def _parent(path: str) -> str:
    return posixpath.dirname(path) or "."


# -- parsing -------------------------------------------------------------------------


class _Where:
    """Names the place of a value in messages: ``p.toml: [clocks] key 'max_calls'``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, section: str | None, key: str | None, message: str) -> UsageError:
        where = self.source
        if section:
            where += f": [{section}]"
        if key:
            where += f" key {key!r}" if section else f": key {key!r}"
        return UsageError(f"{where}: {message}")


def _strings(w: _Where, section: str, key: str, value: Any, example: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise w.err(section, key, f"expected a list of non-empty strings, like {key} = {example}")
    return tuple(value)


def _count(w: _Where, section: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise w.err(section, key, f"expected a whole number >= 0, like {key} = 1000, not {value!r}")
    return value


def _size(w: _Where, section: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise w.err(
            section, key, f'expected a size, like {key} = "64KiB" or {key} = 65536, not {value!r}'
        )
    try:
        return parse_size(value)
    except UsageError as exc:
        raise w.err(section, key, f'{exc}; write it like {key} = "64KiB"') from None


def _table(w: _Where, doc: Mapping[str, Any], section: str) -> Mapping[str, Any] | None:
    if section not in doc:
        return None
    table = doc[section]
    if not isinstance(table, dict):
        raise w.err(
            None,
            section,
            f"expected a table: write [{section}] on a line of its own, then its keys",
        )
    known = SECTIONS[section]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise w.err(
            section,
            None,
            f"unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})",
        )
    return table


def _dir_grant(w: _Where, text: str) -> DirGrant:
    spec, read_only = text, True
    for suffix, ro in ((":ro", True), (":rw", False)):
        if spec.endswith(suffix) and len(spec) > len(suffix):
            spec, read_only = spec[: -len(suffix)], ro
            break
    if not spec or "\0" in spec or "::" in spec or ".." in spec.split("/"):
        raise w.err(
            "filesystem",
            "dirs",
            f'{text!r}: expected a guest path with an optional ":ro" or ":rw", like dirs = ["/data:ro"]',
        )
    guest = spec if spec in (".", "/") else spec.rstrip("/")
    return DirGrant(guest, read_only)


def _filesystem(w: _Where, table: Mapping[str, Any]) -> FilesystemRules:
    dirs = tuple(
        _dir_grant(w, d)
        for d in _strings(w, "filesystem", "dirs", table.get("dirs", []), '["/data:ro"]')
    )
    if len({d.guest for d in dirs}) != len(dirs):
        raise w.err(
            "filesystem", "dirs", "the same guest path appears twice: keep one, with :ro or :rw"
        )
    read = write = None
    for key in ("read", "write"):
        if key in table:
            globs = _strings(w, "filesystem", key, table[key], '["/data/**"]')
            for g in globs:
                base = _glob_base(g)
                holders = [d for d in dirs if not base or under(d.guest, base)]
                if not holders:
                    known = ", ".join(d.guest for d in dirs) or "none yet"
                    raise w.err(
                        "filesystem",
                        key,
                        f"{g!r} is in none of the dirs ({known}): add its dir to dirs, or fix the glob",
                    )
                if key == "write" and all(d.read_only for d in holders):
                    raise w.err(
                        "filesystem",
                        "write",
                        f'{g!r} is only in read-only dirs: mark its dir ":rw" in dirs',
                    )
            if key == "read":
                read = globs
            else:
                write = globs
    return FilesystemRules(dirs, read, write)


def _clocks(w: _Where, table: Mapping[str, Any]) -> ClockRules:
    allow = _strings(
        w, "clocks", "allow", table.get("allow", list(CLOCKS)), '["realtime", "monotonic"]'
    )
    bad = [c for c in allow if c not in CLOCKS]
    if bad:
        raise w.err(
            "clocks",
            "allow",
            f"unknown clock(s) {', '.join(map(repr, bad))} (known: {', '.join(CLOCKS)})",
        )
    max_calls = (
        _count(w, "clocks", "max_calls", table["max_calls"]) if "max_calls" in table else None
    )
    max_sleep = None
    if "max_sleep" in table:
        value = table["max_sleep"]
        try:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise UsageError(f"not {value!r}")
            max_sleep = parse_duration(value)
        except UsageError as exc:
            raise w.err(
                "clocks", "max_sleep", f'{exc}; write it like max_sleep = "500ms"'
            ) from None
    return ClockRules(allow, max_calls, max_sleep)


def parse_policy(doc: Mapping[str, Any], source: str = "<policy>") -> Policy:
    """A :class:`Policy` from a parsed TOML table (a file, or a manifest's inline table)."""
    w = _Where(source)
    if not isinstance(doc, Mapping):
        raise w.err(None, None, "expected a table of policy keys")
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise w.err(
            None,
            None,
            f"unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(TOP_KEYS)})",
        )
    mode = doc.get("mode", "monitor")
    if mode not in MODES:
        raise w.err(None, "mode", f'expected "monitor", "enforce" or "kill", not {mode!r}')
    fs_table = _table(w, doc, "filesystem")
    env_table = _table(w, doc, "environment")
    args_table = _table(w, doc, "arguments")
    clocks_table = _table(w, doc, "clocks")
    random_table = _table(w, doc, "random")
    sockets_table = _table(w, doc, "sockets")
    exit_table = _table(w, doc, "exit")
    budgets_table = _table(w, doc, "budgets") or {}
    imports_table = _table(w, doc, "imports") or {}
    random = None
    if random_table is not None:
        random = RandomRules(
            _size(w, "random", "max_bytes", random_table["max_bytes"])
            if "max_bytes" in random_table
            else None
        )
    codes: tuple[int, ...] = (0,)
    if exit_table is not None and "codes" in exit_table:
        raw = exit_table["codes"]
        if not isinstance(raw, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in raw
        ):
            raise w.err("exit", "codes", "expected a list of whole numbers, like codes = [0, 1]")
        codes = tuple(raw)
    strict = imports_table.get("strict", False)
    if not isinstance(strict, bool):
        raise w.err("imports", "strict", f"expected true or false, not {strict!r}")
    return Policy(
        mode=mode,
        filesystem=_filesystem(w, fs_table) if fs_table is not None else FilesystemRules(),
        environment=_strings(
            w, "environment", "allow", env_table.get("allow", []), '["LANG", "LC_*"]'
        )
        if env_table
        else (),
        arguments=_strings(
            w, "arguments", "allow", args_table.get("allow", []), '["--verbose", "*.txt"]'
        )
        if args_table is not None
        else None,
        clocks=_clocks(w, clocks_table) if clocks_table is not None else None,
        random=random,
        sockets=_strings(
            w, "sockets", "allow", sockets_table.get("allow", []), '["api.example.com:443"]'
        )
        if sockets_table
        else (),
        exit_codes=codes,
        budgets=BudgetRules(
            host_calls=_count(w, "budgets", "host_calls", budgets_table["host_calls"])
            if "host_calls" in budgets_table
            else None,
            output_bytes=_size(w, "budgets", "output_bytes", budgets_table["output_bytes"])
            if "output_bytes" in budgets_table
            else None,
            open_fds=_count(w, "budgets", "open_fds", budgets_table["open_fds"])
            if "open_fds" in budgets_table
            else None,
        ),
        imports=ImportRules(
            allow=_strings(w, "imports", "allow", imports_table.get("allow", []), '["env.log_*"]'),
            deny=_strings(
                w,
                "imports",
                "deny",
                imports_table.get("deny", []),
                '["wasi_snapshot_preview1.sock_*"]',
            ),
            strict=strict,
        ),
        source=source,
    )


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read a policy file."""
    file = os.fspath(path)
    doc = read_toml(file, "policy file")
    return parse_policy(doc, file)
