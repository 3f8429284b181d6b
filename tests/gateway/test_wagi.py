"""The CGI/WAGI environment from an ASGI scope, argv, and the response parser."""

from __future__ import annotations

import pytest

from wasmscope.gateway.wagi import (
    BadResponse,
    argv_for,
    cgi_environ,
    parse_response,
)
from wasmscope.telemetry.tracecontext import valid_traceparent

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _scope(**over: object) -> dict[str, object]:
    scope: dict[str, object] = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/a b;c",
        "raw_path": b"/api/a%20b%3bc",
        "query_string": b"x=1&y=two",
        "headers": [
            (b"host", b"example.com:8080"),
            (b"content-type", b"text/plain"),
            (b"x-test", b"one"),
            (b"x-test", b"two"),
            (b"authorization", b"Bearer secret"),
            (b"connection", b"keep-alive"),
            (b"traceparent", TRACEPARENT.encode()),
        ],
        "client": ("10.0.0.7", 5555),
        "server": ("127.0.0.1", 9999),
    }
    scope.update(over)
    return scope


def test_cgi_environment_as_wagi() -> None:
    env = cgi_environ(_scope(), route_path="/api/...", script_name="/api", path_info_raw="/a%20b%3bc", content_length=5)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/api"
    assert env["X_MATCHED_ROUTE"] == "/api/..."
    assert env["PATH_INFO"] == env["PATH_TRANSLATED"] == "/a b;c"
    assert env["X_RAW_PATH_INFO"] == "/a%20b%3bc"
    assert env["QUERY_STRING"] == "x=1&y=two"
    assert env["CONTENT_TYPE"] == "text/plain" and env["CONTENT_LENGTH"] == "5"
    assert env["SERVER_NAME"] == "example.com" and env["SERVER_PORT"] == "8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1" and env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["REMOTE_ADDR"] == env["REMOTE_HOST"] == "10.0.0.7"
    assert env["X_FULL_URL"] == "http://example.com:8080/api/a%20b%3bc?x=1&y=two"
    assert env["HTTP_X_TEST"] == "one, two"
    assert env["HTTP_HOST"] == "example.com:8080"
    assert "HTTP_AUTHORIZATION" not in env and "HTTP_CONNECTION" not in env
    assert env["TRACEPARENT"] == TRACEPARENT
    assert env["AUTH_TYPE"] == env["REMOTE_USER"] == ""


def test_host_fallbacks_and_bad_traceparent() -> None:
    scope = _scope(headers=[(b"traceparent", b"garbage")], scheme="https")
    env = cgi_environ(scope, route_path="/x", script_name="/x", path_info_raw="", content_length=0)
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == "9999"
    assert "TRACEPARENT" not in env and env["CONTENT_TYPE"] == ""
    scope = _scope(headers=[(b"host", b"[::1]")], scheme="https")
    env = cgi_environ(scope, route_path="/x", script_name="/x", path_info_raw="", content_length=0)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("::1", "443")


def test_the_server_spans_traceparent_replaces_the_callers() -> None:
    ours = "00-4bf92f3577b34da6a3ce929d0e0e4736-1122334455667788-01"
    scope = _scope(headers=[(b"traceparent", TRACEPARENT.encode()), (b"tracestate", b"k=v")])
    env = cgi_environ(scope, route_path="/x", script_name="/x", path_info_raw="", content_length=0, traceparent=ours)
    assert env["TRACEPARENT"] == env["HTTP_TRACEPARENT"] == ours and env["TRACESTATE"] == "k=v"
    env = cgi_environ(_scope(headers=[]), route_path="/x", script_name="/x", path_info_raw="", content_length=0, traceparent=ours)
    assert env["TRACEPARENT"] == ours and "HTTP_TRACEPARENT" not in env and "TRACESTATE" not in env


def test_valid_traceparent() -> None:
    assert valid_traceparent(TRACEPARENT) == TRACEPARENT
    assert valid_traceparent("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    assert valid_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") is None
    assert valid_traceparent(None) is None


def test_argv() -> None:
    assert argv_for("/env", "greet=matt&foo=bar", ["-v"]) == ("/env", ["-v", "greet=matt", "foo=bar"])
    assert argv_for("/env", "", ()) == ("/env", [])


def test_parse_response() -> None:
    r = parse_response(b"Content-Type: text/plain\nX-Extra: 1\n\nhello\n\nworld")
    assert r.status == 200 and r.body == b"hello\n\nworld"
    assert r.headers == [("content-type", "text/plain"), ("x-extra", "1")]
    r = parse_response(b"status: 404 Not Found\r\ncontent-type: text/html\r\n\r\n<p>no</p>")
    assert r.status == 404 and r.body == b"<p>no</p>"
    r = parse_response(b"location: /elsewhere\n\n")
    assert r.status == 302 and r.headers == [("location", "/elsewhere")]
    r = parse_response(b"status: 301\nlocation: /moved\n\n")
    assert r.status == 301
    r = parse_response(b"content-type: text/plain\ncontent-length: 999\ntransfer-encoding: chunked\n\nx")
    assert r.headers == [("content-type", "text/plain")]  # framing is the server's


@pytest.mark.parametrize(
    "out",
    [
        b"",
        b"just a body",
        b"hello\nworld\n",  # no blank line
        b"x-only: 1\n\nbody",  # none of content-type, location, status
        b"not a header line\n\nbody",
        b"status: abc\n\n",
        b"status: 99\n\n",
        b"bad name: 1\n\n",
        b"content-type: text/plain" + b"\nx: y" * 20000 + b"\n\n",  # header block too long
    ],
)
def test_bad_responses(out: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_response(out)
