"""The serve manifest: which path runs which module, with which world and limits.

::

    policy = "default.toml"       # the default capability policy of every route (or an
                                  # inline [policy] table); keys at the top come first
    [server]                      # defaults of every route (all optional)
    timeout = "10s"
    memory_limit = "128MiB"
    max_concurrency = 8

    [[route]]
    path = "/hello"               # exact; "/api/..." matches /api and everything under it
    module = "hello.wasm"         # relative to this file
    argv = ["--greeting", "hi"]   # after argv[0] (the request path), before the query args
    env = { MODE = "demo" }
    dirs = ["static::/static", "data::/data:rw"]   # read-only unless ":rw"
    timeout = "2s"                # also: memory_limit, fuel, max_request_bytes,
                                  # max_response_bytes, max_concurrency
    auth = "key"                  # "none" (default, or [server] auth) or "key"
    policy = "hello.policy.toml"  # its capability policy (wasmscope.guard.policy), or an
                                  # inline [route.policy] table, or false for none

    [[key]]                       # API keys (checked by wasmscope.gateway.auth)
    id = "ci"
    hash = "scrypt$16384$8$1$...$..."
    routes = ["/hello"]           # or ["*"]
    rate = "10/s"                 # optional, with an optional burst = N

:func:`load_manifest` reads a TOML file, :func:`manifest_from_dir` maps every
``*.wasm`` of a folder to ``/<stem>`` with the defaults. Every mistake is a
:class:`~wasmscope.errors.UsageError` naming the file and the key. No wasmtime here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmscope._files import read_toml
from wasmscope.errors import UsageError
from wasmscope.gateway.keys import parse_hash
from wasmscope.gateway.rates import parse_rate
from wasmscope.guard.policy import Policy, load_policy, parse_policy
from wasmscope.runtime.limits import Limits, parse_duration, parse_size
from wasmscope.runtime.wasi import DirSpec

__all__ = [
    "AUTH_MODES",
    "DEFAULTS",
    "RESERVED_PATHS",
    "ApiKey",
    "Manifest",
    "Route",
    "RouteSettings",
    "key_table",
    "load",
    "load_manifest",
    "manifest_from_dir",
]

RESERVED_PATHS = ("/healthz", "/readyz")
AUTH_MODES = ("none", "key")  # a route's auth: no key needed, or an API key
WILDCARD = "/..."


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """Limits of a route (or the ``[server]`` defaults)."""

    timeout: float | None = 30.0  # seconds, instantiate + execute
    memory_limit: int | None = 256 * 1024 * 1024  # bytes per linear memory
    fuel: int | None = None
    max_request_bytes: int = 1024 * 1024
    max_response_bytes: int = 16 * 1024 * 1024  # stdout (headers + body); also the stderr cap
    max_concurrency: int = 8  # instances at once; past it: 503

    def limits(self) -> Limits:
        return Limits(
            memory_limit=self.memory_limit,
            timeout=self.timeout,
            fuel=self.fuel,
            max_output=self.max_response_bytes,
        )


DEFAULTS = RouteSettings()


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # as written: "/hello" or "/api/..."
    module: Path  # absolute
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    dirs: tuple[DirSpec, ...] = ()
    settings: RouteSettings = DEFAULTS
    auth: str = "none"  # "key": an API key is needed (wasmscope.gateway.auth)
    policy: Policy | None = None  # its capability policy (the manifest's default if it has none)

    @property
    def wildcard(self) -> bool:
        return self.path.endswith(WILDCARD)

    @property
    def prefix(self) -> str:
        """The path without ``/...`` (WAGI's SCRIPT_NAME; ``""`` for the catch-all ``/...``)."""
        return self.path[: -len(WILDCARD)] if self.wildcard else self.path

    def matches(self, path: str) -> bool:
        if not self.wildcard:
            return path == self.path
        prefix = self.prefix
        return path == prefix or path.startswith(prefix + "/") or (prefix == "" and path.startswith("/"))

    def path_info(self, path: str) -> str:
        """What follows the route's prefix (CGI PATH_INFO); "" for an exact route."""
        return path[len(self.prefix) :] if self.wildcard else ""

    @property
    def limits(self) -> Limits:
        return self.settings.limits()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A ``[[key]]`` table: the key's name, its stored hash, the routes it may call
    and its rate (checked by :class:`~wasmscope.gateway.auth.ApiKeyAuth`)."""

    id: str
    hash: str = ""  # the stored hash, as written
    routes: tuple[str, ...] = ("*",)
    rate: float | None = None  # requests per second; None: unlimited
    burst: int = 1

    def allows(self, route_path: str) -> bool:
        return "*" in self.routes or route_path in self.routes


@dataclass(frozen=True, slots=True)
class Manifest:
    routes: tuple[Route, ...]
    source: str  # the file or folder it came from
    defaults: RouteSettings = DEFAULTS
    keys: tuple[ApiKey, ...] = ()
    policy: Policy | None = None  # the default policy (routes already carry theirs)

    def match(self, path: str) -> Route | None:
        """The exact route for ``path``, else the wildcard route with the longest prefix."""
        best: Route | None = None
        for route in self.routes:
            if not route.matches(path):
                continue
            if not route.wildcard:
                return route
            if best is None or len(route.prefix) > len(best.prefix):
                best = route
        return best


# -- parsing -----------------------------------------------------------------------------

_SETTING_KEYS = ("timeout", "memory_limit", "fuel", "max_request_bytes", "max_response_bytes", "max_concurrency")
_ROUTE_KEYS = ("path", "module", "argv", "env", "dirs", "auth", "policy", *_SETTING_KEYS)


def _err(where: str, message: str) -> UsageError:
    return UsageError(f"{where}: {message}")


def _settings(table: Mapping[str, Any], base: RouteSettings, where: str) -> RouteSettings:
    values: dict[str, Any] = {}
    for key in _SETTING_KEYS:
        if key not in table:
            continue
        value = table[key]
        try:
            if value is False or (isinstance(value, str) and value.strip().lower() in ("none", "unlimited")):
                if key in ("max_request_bytes", "max_response_bytes", "max_concurrency"):
                    raise UsageError("cannot be unlimited")
                values[key] = None
            elif isinstance(value, bool) or not isinstance(value, str | int | float):
                raise UsageError(f"expected a string or a number, not {type(value).__name__}")
            elif key == "timeout":
                values[key] = parse_duration(value)
            elif key == "fuel":
                fuel = Limits.parse(fuel=value if isinstance(value, str) else int(value)).fuel
                values[key] = fuel
            elif key == "max_concurrency":
                if not isinstance(value, int) or value < 1:
                    raise UsageError(f"expected a whole number >= 1, not {value!r}")
                values[key] = value
            else:
                size = parse_size(value if isinstance(value, str) else int(value))
                if key != "memory_limit" and size < 1:
                    raise UsageError("must be at least 1 byte")
                values[key] = size
        except UsageError as exc:
            raise _err(f"{where} key {key!r}", str(exc)) from None
    return RouteSettings(**{**_asdict(base), **values})


def _asdict(s: RouteSettings) -> dict[str, Any]:
    return {k: getattr(s, k) for k in _SETTING_KEYS}


def _check_path(path: Any, where: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise _err(f"{where} key 'path'", f"expected a path starting with '/', not {path!r}")
    body = path[: -len(WILDCARD)] if path.endswith(WILDCARD) else path
    if "..." in body or "?" in path or "#" in path or any(c.isspace() for c in path):
        raise _err(f"{where} key 'path'", f"{path!r}: only a trailing '/...' wildcard is allowed (no '?', '#', spaces)")
    if path in RESERVED_PATHS or body in RESERVED_PATHS:
        raise _err(f"{where} key 'path'", f"{path} is reserved by the server ({', '.join(RESERVED_PATHS)})")
    return path


def _module(value: Any, base: Path, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise _err(f"{where} key 'module'", f"expected a path to a .wasm file, not {value!r}")
    path = (base / os.path.expanduser(value)).resolve()
    if not path.is_file():
        raise _err(f"{where} key 'module'", f"{value}: no such file ({path})")
    return path


def _dir(text: Any, base: Path, where: str) -> DirSpec:
    if not isinstance(text, str) or not text:
        raise _err(where, f"expected 'HOST[::GUEST][:rw]', not {text!r}")
    spec, read_only = text, True
    for suffix, ro in ((":ro", True), (":rw", False)):
        if spec.endswith(suffix) and len(spec) > len(suffix):
            spec, read_only = spec[: -len(suffix)], ro
            break
    host, sep, guest = spec.partition("::")
    if not host or (sep and not guest):
        raise _err(where, f"{text!r}: expected 'HOST[::GUEST][:rw]'")
    host_path = (base / os.path.expanduser(host)).resolve()
    if not host_path.is_dir():
        raise _err(where, f"{text!r}: {host_path} is not a directory")
    return DirSpec(str(host_path), guest if sep else host, read_only)


def _policy(value: Any, base: Path, where: str, default: Policy | None = None) -> Policy | None:
    """A ``policy`` key: a file (relative to the manifest), an inline table, or false."""
    if value is False:
        return None
    if isinstance(value, dict):
        return parse_policy(value, where)
    if isinstance(value, str) and value:
        try:
            return load_policy(base / os.path.expanduser(value))
        except UsageError as exc:
            raise _err(where, str(exc)) from None
    if value is None:
        return default
    raise _err(where, f'expected a policy file (policy = "app.policy.toml"), an inline table or false, not {value!r}')


def _route(
    table: Any, index: int, base: Path, defaults: RouteSettings, file: str, auth: str = "none",
    policy: Policy | None = None,
) -> Route:
    where = f"{file}: [[route]] #{index + 1}"
    if not isinstance(table, dict):
        raise _err(where, "expected a table")
    unknown = sorted(set(table) - set(_ROUTE_KEYS))
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(_ROUTE_KEYS)})")
    for key in ("path", "module"):
        if key not in table:
            raise _err(where, f"missing key {key!r}")
    path = _check_path(table["path"], where)
    where = f"{file}: [[route]] {path}"
    argv = table.get("argv", [])
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise _err(f"{where} key 'argv'", "expected a list of strings")
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str | int | float | bool) for v in env.values()):
        raise _err(f"{where} key 'env'", "expected a table of NAME = \"value\"")
    for name in env:
        if not name or "=" in name or "\0" in name:
            raise _err(f"{where} key 'env'", f"invalid variable name {name!r}")
    dirs = table.get("dirs", [])
    if not isinstance(dirs, list):
        raise _err(f"{where} key 'dirs'", "expected a list of 'HOST[::GUEST][:rw]'")
    return Route(
        path=path,
        module=_module(table["module"], base, where),
        argv=tuple(argv),
        env={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()},
        dirs=tuple(_dir(d, base, f"{where} key 'dirs'") for d in dirs),
        settings=_settings(table, defaults, where),
        auth=_auth_mode(table.get("auth", auth), where),
        policy=_policy(table.get("policy"), base, f"{where} key 'policy'", policy),
    )


_KEY_KEYS = ("id", "hash", "routes", "rate", "burst")


def _keys(tables: Any, route_paths: Sequence[str], file: str) -> tuple[ApiKey, ...]:
    """The ``[[key]]`` tables of a manifest (``route_paths``: the routes as written)."""
    if not isinstance(tables, list):
        raise UsageError(f"{file}: 'key' must be an array of tables: [[key]]")
    keys: list[ApiKey] = []
    for index, table in enumerate(tables):
        where = f"{file}: [[key]] #{index + 1}"
        if not isinstance(table, dict):
            raise UsageError(f"{where}: expected a table")
        if "key" in table or "secret" in table:
            raise UsageError(f"{where}: store only the key's hash (hash = \"...\", from: wasmscope serve --hash-key), never the key")
        unknown = sorted(set(table) - set(_KEY_KEYS))
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(_KEY_KEYS)})")
        key_id = table.get("id")
        if not isinstance(key_id, str) or not key_id.strip():
            raise UsageError(f"{where}: missing key 'id' (a name for the access log)")
        where = f"{file}: [[key]] {key_id}"
        if any(k.id == key_id for k in keys):
            raise UsageError(f"{where}: the same id appears twice")
        stored = table.get("hash")
        if not isinstance(stored, str):
            raise UsageError(f"{where}: missing key 'hash' (make one with: wasmscope serve --hash-key)")
        try:
            parse_hash(stored)
        except UsageError as exc:
            raise UsageError(f"{where} key 'hash': {exc}") from None
        routes = table.get("routes")
        if routes == "*":
            routes = ["*"]
        if not isinstance(routes, list) or not routes or not all(isinstance(r, str) for r in routes):
            raise UsageError(f"{where} key 'routes': expected a list of route paths as written in [[route]], or \"*\"")
        for r in routes:
            if r != "*" and r not in route_paths:
                raise UsageError(f"{where} key 'routes': {r!r} is not the path of a [[route]] ({', '.join(route_paths)})")
        rate: float | None = None
        burst = 1
        if "rate" in table:
            try:
                rate, burst = parse_rate(table["rate"])
            except UsageError as exc:
                raise UsageError(f"{where} key 'rate': {exc}") from None
        if "burst" in table:
            value = table["burst"]
            if rate is None:
                raise UsageError(f"{where} key 'burst': needs a 'rate'")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{where} key 'burst': expected a whole number >= 1, not {value!r}")
            burst = value
        keys.append(ApiKey(key_id, stored, tuple(routes), rate, burst))
    return tuple(keys)


def _auth_mode(value: Any, where: str) -> str:
    if value not in AUTH_MODES:
        raise UsageError(f"{where} key 'auth': expected \"none\" or \"key\", not {value!r}")
    return str(value)


def key_table(key_id: str, stored_hash: str, routes: Sequence[str] = ("*",)) -> str:
    """The ``[[key]]`` table to paste into a manifest (what ``serve --hash-key`` prints)."""
    return f'[[key]]\nid = {json.dumps(key_id)}\nhash = "{stored_hash}"\nroutes = {json.dumps(list(routes))}\n'


def parse_manifest(doc: Mapping[str, Any], base: Path, file: str) -> Manifest:
    """A :class:`Manifest` from a parsed TOML document; paths relative to ``base``."""
    unknown = sorted(set(doc) - {"server", "route", "key", "policy"})
    if unknown:
        raise _err(file, f"unknown key(s) {', '.join(map(repr, unknown))} (expected policy, [server], [[route]] and [[key]])")
    default_policy = _policy(doc.get("policy"), base, f"{file}: key 'policy'")
    server = doc.get("server", {})
    if not isinstance(server, dict):
        raise _err(f"{file}: [server]", "expected a table")
    bad = sorted(set(server) - {*_SETTING_KEYS, "auth"})
    if bad:
        raise _err(f"{file}: [server]", f"unknown key(s) {', '.join(map(repr, bad))} (known: {', '.join(_SETTING_KEYS)}, auth)")
    auth = _auth_mode(server.get("auth", "none"), f"{file}: [server]")
    defaults = _settings(server, DEFAULTS, f"{file}: [server]")
    tables = doc.get("route", [])
    if not isinstance(tables, list):
        raise _err(file, "'route' must be an array of tables: [[route]]")
    if not tables:
        raise _err(file, "no routes: add at least one [[route]] with path and module")
    routes = [_route(t, i, base, defaults, file, auth, default_policy) for i, t in enumerate(tables)]
    seen: set[str] = set()
    for r in routes:
        if r.path in seen:
            raise _err(f"{file}: [[route]] {r.path}", "the same path appears twice")
        seen.add(r.path)
    keys = _keys(doc.get("key", []), [r.path for r in routes], file)
    if not keys and any(r.auth == "key" for r in routes):
        raise _err(file, 'a route has auth = "key" but there is no [[key]] (make one with: wasmscope serve --hash-key)')
    return Manifest(tuple(routes), file, defaults, keys, default_policy)


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a TOML manifest; module and dir paths are relative to its folder."""
    file = os.fspath(path)
    doc = read_toml(file, "file")
    return parse_manifest(doc, Path(file).resolve().parent, file)


def manifest_from_dir(path: str | os.PathLike[str], defaults: RouteSettings = DEFAULTS) -> Manifest:
    """One route per ``*.wasm`` file of a folder: ``hello.wasm`` -> ``/hello``."""
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    routes = []
    for file in sorted(folder.glob("*.wasm")):
        if not file.is_file():
            continue
        route_path = f"/{file.stem}"
        if route_path in RESERVED_PATHS:
            raise UsageError(f"{file}: /{file.stem} is reserved by the server; rename the file")
        routes.append(Route(path=route_path, module=file.resolve(), settings=defaults))
    if not routes:
        raise UsageError(f"{folder}: no *.wasm files to serve")
    return Manifest(tuple(routes), os.fspath(folder), defaults)


def load(path: str | os.PathLike[str]) -> Manifest:
    """A manifest file, or a folder of handlers."""
    return manifest_from_dir(path) if os.path.isdir(path) else load_manifest(path)
