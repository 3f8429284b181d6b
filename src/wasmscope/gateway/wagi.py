"""The WAGI convention: an HTTP request as a CGI 1.1 environment, and the handler's
output as an HTTP response.

Request (as WAGI does it, https://github.com/deislabs/wagi docs/environment_variables.md):

- environment: ``REQUEST_METHOD``, ``SCRIPT_NAME`` (the route without ``/...``),
  ``PATH_INFO`` / ``PATH_TRANSLATED`` (what follows it, URL-decoded),
  ``X_RAW_PATH_INFO`` (the same, not decoded), ``QUERY_STRING``, ``CONTENT_TYPE``,
  ``CONTENT_LENGTH``, ``SERVER_NAME`` / ``SERVER_PORT`` (from ``Host``),
  ``SERVER_PROTOCOL`` (``HTTP/1.1``), ``SERVER_SOFTWARE``, ``GATEWAY_INTERFACE``
  (``CGI/1.1``), ``REMOTE_ADDR`` / ``REMOTE_HOST``, ``REMOTE_USER`` and ``AUTH_TYPE``
  (empty), ``X_MATCHED_ROUTE`` (the route as written), ``X_FULL_URL``, one ``HTTP_*``
  per request header (``Authorization``, ``X-API-Key`` and ``Connection`` are never passed), and
  ``TRACEPARENT`` when the request carries a W3C ``traceparent``;
- argv: the request path, then the route's ``argv``, then the query string split on
  ``&`` (not decoded), as WAGI does;
- stdin: the request body.

Response: header lines until the first blank line (``\\n`` or ``\\r\\n``), then the body.
``status: 404 Not Found`` sets the status, ``location:`` without a status gives 302,
other valid headers are passed on. At least one of ``content-type``, ``location`` or
``status`` must be present, else :class:`BadResponse` (the server answers 502).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from wasmscope.telemetry.tracecontext import valid_traceparent

__all__ = ["SERVER_SOFTWARE", "BadResponse", "CgiResponse", "argv_for", "cgi_environ", "parse_response"]

SERVER_SOFTWARE = "wasmscope/0 (WAGI/1)"
MAX_HEADER_BLOCK = 64 * 1024  # bytes of header lines before the blank line
_SKIPPED_HEADERS = frozenset({"authorization", "connection", "proxy-authorization", "x-api-key"})
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Hop-by-hop and framing headers the server sets itself; a handler cannot set them.
_RESERVED_RESPONSE = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive", "upgrade", "te", "trailer"})


def _host_port(headers: Mapping[str, str], server: tuple[str, int] | None, scheme: str) -> tuple[str, str]:
    default_port = "443" if scheme in ("https", "wss") else "80"
    host, port = (server[0], str(server[1])) if server else ("localhost", default_port)
    header = headers.get("host", "")
    if header:
        if header.startswith("["):  # [v6]:port
            name, _, rest = header[1:].partition("]")
            host = name or host
            port = rest[1:] if rest.startswith(":") and rest[1:] else default_port
        else:
            name, sep, p = header.partition(":")
            host = name or host
            port = p if sep and p else default_port
    return host, port


def cgi_environ(
    scope: Mapping[str, Any],
    *,
    route_path: str,
    script_name: str,
    path_info_raw: str,
    content_length: int,
    traceparent: str | None = None,
) -> dict[str, str]:
    """The CGI/WAGI variables of one request (an ASGI HTTP ``scope``). ``traceparent``:
    the request's server span: ``TRACEPARENT``, and ``HTTP_TRACEPARENT`` in place of
    the caller's when the request has that header (a guest that passes its headers on
    makes children of the server span)."""
    headers: dict[str, str] = {}
    http_vars: dict[str, str] = {}
    for name_b, value_b in scope.get("headers") or ():
        name = bytes(name_b).decode("latin-1").lower()
        value = bytes(value_b).decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if traceparent is not None and "traceparent" in headers:
        headers["traceparent"] = traceparent
    for name, value in headers.items():
        if name in _SKIPPED_HEADERS or not _TOKEN.match(name):
            continue
        http_vars["HTTP_" + name.upper().replace("-", "_")] = value
    scheme = str(scope.get("scheme") or "http")
    server = scope.get("server")
    host, port = _host_port(headers, tuple(server) if isinstance(server, tuple | list) else None, scheme)
    client = scope.get("client")
    remote = str(client[0]) if isinstance(client, tuple | list) and client else ""
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    raw_path = scope.get("raw_path")
    path = str(scope.get("path") or "/")
    raw = bytes(raw_path).decode("latin-1") if isinstance(raw_path, bytes | bytearray) and raw_path else quote(path)
    raw = raw.partition("?")[0]
    full_url = f"{scheme}://{host}:{port}{raw}" + (f"?{query}" if query else "")
    http_version = str(scope.get("http_version") or "1.1")
    env = {
        **http_vars,
        "AUTH_TYPE": "",
        "CONTENT_LENGTH": str(content_length),
        "CONTENT_TYPE": headers.get("content-type", ""),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "PATH_INFO": unquote(path_info_raw, errors="replace"),
        "PATH_TRANSLATED": unquote(path_info_raw, errors="replace"),
        "QUERY_STRING": query,
        "REMOTE_ADDR": remote,
        "REMOTE_HOST": remote,
        "REMOTE_USER": "",
        "REQUEST_METHOD": str(scope.get("method") or "GET"),
        "SCRIPT_NAME": script_name,
        "SERVER_NAME": host,
        "SERVER_PORT": port,
        "SERVER_PROTOCOL": f"HTTP/{http_version}",
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "X_FULL_URL": full_url,
        "X_MATCHED_ROUTE": route_path,
        "X_RAW_PATH_INFO": path_info_raw,
    }
    if traceparent is None:
        traceparent = valid_traceparent(headers.get("traceparent"))
    if traceparent:
        env["TRACEPARENT"] = traceparent
        if "tracestate" in headers:
            env["TRACESTATE"] = headers["tracestate"]
    return env


def argv_for(path: str, query_string: str, route_argv: Iterable[str] = ()) -> tuple[str, list[str]]:
    """``(argv0, args)``: the request path, then the route's argv, then the query items."""
    items = [q for q in query_string.split("&") if q] if query_string else []
    return path, [*route_argv, *items]


class BadResponse(Exception):
    """The handler's output is not a CGI response (no header block, no usable header)."""


@dataclass(slots=True)
class CgiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _split_header_block(out: bytes) -> tuple[bytes, bytes]:
    """Header block and body, split at the first empty line (LF or CRLF)."""
    pos = 0
    while True:
        nl = out.find(b"\n", pos)
        if nl < 0:
            raise BadResponse(
                "the handler printed no blank line after its headers (expected e.g. "
                "'content-type: text/plain', an empty line, then the body)"
            )
        line = out[pos:nl]
        if line in (b"", b"\r"):
            return out[:pos], out[nl + 1 :]
        pos = nl + 1
        if pos > MAX_HEADER_BLOCK:
            raise BadResponse(f"the handler's header block is longer than {MAX_HEADER_BLOCK} bytes")


def parse_response(out: bytes) -> CgiResponse:
    """The HTTP response a WAGI handler printed on stdout."""
    block, body = _split_header_block(out)
    status: int | None = None
    location = False
    content_type = False
    headers: list[tuple[str, str]] = []
    for raw_line in block.split(b"\n"):
        line = raw_line.rstrip(b"\r").decode("latin-1")
        if not line:
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _TOKEN.match(name):
            raise BadResponse(f"the handler printed a malformed header line: {line[:80]!r}")
        if any(ord(c) < 0x20 and c != "\t" for c in value):
            raise BadResponse(f"header {name!r} has a control character in its value")
        low = name.lower()
        if low == "status":
            code = value.split(" ", 1)[0]
            if not (code.isdigit() and len(code) == 3 and 100 <= int(code) <= 599):
                raise BadResponse(f"the handler printed an invalid status: {value[:40]!r}")
            status = int(code)
            continue
        if low in _RESERVED_RESPONSE:
            continue
        if low == "location":
            location = True
        elif low == "content-type":
            content_type = True
        headers.append((low, value))
    if status is None and not location and not content_type:
        raise BadResponse("the handler's header block has none of content-type, location or status")
    if status is None:
        status = 302 if location else 200
    return CgiResponse(status, headers, body)
