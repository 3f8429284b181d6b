"""The serve manifest: routes, defaults, paths relative to the file, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmscope.errors import UsageError
from wasmscope.gateway.manifest import load, load_manifest, manifest_from_dir


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "app.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "app.toml"
    path.write_text(text)
    return path


def test_routes_defaults_and_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, """
[server]
timeout = "5s"
memory_limit = "64MiB"
max_concurrency = 4

[[route]]
path = "/hello"
module = "app.wasm"
argv = ["-v"]
env = { MODE = "demo", N = 3, ON = true }
dirs = ["data::/data", "data::/rw:rw"]

[[route]]
path = "/api/..."
module = "./app.wasm"
timeout = "250ms"
fuel = "1e6"
max_request_bytes = "2KiB"
max_response_bytes = 1000
max_concurrency = 1
""")
    m = load_manifest(path)
    hello, api = m.routes
    assert hello.module == (tmp_path / "app.wasm").resolve()
    assert hello.argv == ("-v",) and hello.env == {"MODE": "demo", "N": "3", "ON": "true"}
    assert [(d.host, d.guest, d.read_only) for d in hello.dirs] == [
        (str((tmp_path / "data").resolve()), "/data", True),
        (str((tmp_path / "data").resolve()), "/rw", False),
    ]
    assert hello.settings.timeout == 5.0 and hello.settings.memory_limit == 64 << 20
    assert hello.settings.max_concurrency == 4 and hello.settings.fuel is None
    assert api.settings.timeout == 0.25 and api.settings.fuel == 10**6
    assert api.settings.memory_limit == 64 << 20  # from [server]
    assert api.settings.max_request_bytes == 2048 and api.settings.max_response_bytes == 1000
    assert api.limits.max_output == 1000 and api.limits.timeout == 0.25
    assert api.wildcard and api.prefix == "/api"


def test_matching_exact_then_longest_wildcard(tmp_path: Path) -> None:
    path = _write(tmp_path, """
[[route]]
path = "/..."
module = "app.wasm"
[[route]]
path = "/api/..."
module = "app.wasm"
[[route]]
path = "/api/v2/..."
module = "app.wasm"
[[route]]
path = "/api/exact"
module = "app.wasm"
""")
    m = load_manifest(path)

    def match(p: str) -> str | None:
        r = m.match(p)
        return r.path if r else None

    assert match("/api/exact") == "/api/exact"
    assert match("/api") == "/api/..."
    assert match("/api/x/y") == "/api/..."
    assert match("/api/v2/z") == "/api/v2/..."
    assert match("/apiary") == "/..."
    assert match("/") == "/..."
    r = m.match("/api/x/y")
    assert r is not None and r.path_info("/api/x/y") == "/x/y"


def test_exact_route_does_not_match_below(tmp_path: Path) -> None:
    m = load_manifest(_write(tmp_path, '[[route]]\npath = "/hello"\nmodule = "app.wasm"\n'))
    assert m.match("/hello") is not None
    assert m.match("/hello/x") is None and m.match("/hell") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[route]]\npath = "/x"\n', "missing key 'module'"),
        ('[[route]]\nmodule = "app.wasm"\n', "missing key 'path'"),
        ('[[route]]\npath = "x"\nmodule = "app.wasm"\n', "key 'path'"),
        ('[[route]]\npath = "/a/.../b"\nmodule = "app.wasm"\n', "wildcard"),
        ('[[route]]\npath = "/healthz"\nmodule = "app.wasm"\n', "reserved"),
        ('[[route]]\npath = "/x"\nmodule = "missing.wasm"\n', "missing.wasm: no such file"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\ntimeout = "soon"\n', "[[route]] /x key 'timeout'"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\nmemory_limit = "12 parsecs"\n', "key 'memory_limit'"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\nmax_concurrency = 0\n', "key 'max_concurrency'"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\nmax_request_bytes = "none"\n', "cannot be unlimited"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\ndirs = ["nowhere::/n"]\n', "is not a directory"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\nargv = "a b"\n', "key 'argv'"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\ncolour = "red"\n', "unknown key(s) 'colour'"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\n[[route]]\npath = "/x"\nmodule = "app.wasm"\n', "twice"),
        ('[server]\ntimeout = "-1s"\n[[route]]\npath = "/x"\nmodule = "app.wasm"\n', "[server] key 'timeout'"),
        ('[server]\nport = 8080\n[[route]]\npath = "/x"\nmodule = "app.wasm"\n', "[server]: unknown key(s) 'port'"),
        ("[server]\n", "no routes"),
        ("[[route]\n", "not valid TOML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_manifest(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load(tmp_path / "nope.toml")


def test_dir_mode(tmp_path: Path) -> None:
    (tmp_path / "hello.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "echo.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "notes.txt").write_text("not a handler")
    m = load(tmp_path)
    assert [r.path for r in m.routes] == ["/echo", "/hello"]
    assert m.routes[1].module == (tmp_path / "hello.wasm").resolve()
    assert all(r.dirs == () for r in m.routes)


def test_dir_mode_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no \*\.wasm files"):
        manifest_from_dir(tmp_path)
    (tmp_path / "healthz.wasm").write_bytes(b"\0asm\1\0\0\0")
    with pytest.raises(UsageError, match="reserved"):
        manifest_from_dir(tmp_path)


def test_a_policy_per_route_inline_or_from_a_file_and_a_default(tmp_path: Path) -> None:
    (tmp_path / "default.toml").write_text('mode = "monitor"\n[clocks]\nallow = ["monotonic"]\n')
    (tmp_path / "strict.toml").write_text('mode = "kill"\n')
    path = _write(tmp_path, """
policy = "default.toml"

[[route]]
path = "/a"
module = "app.wasm"

[[route]]
path = "/b"
module = "app.wasm"
policy = "strict.toml"

[[route]]
path = "/c"
module = "app.wasm"
[route.policy]
mode = "enforce"
[route.policy.environment]
allow = ["LANG"]

[[route]]
path = "/d"
module = "app.wasm"
policy = false
""")
    m = load_manifest(path)
    a, b, c, d = m.routes
    assert m.policy is not None and m.policy.clocks is not None
    assert a.policy == m.policy
    assert b.policy is not None and b.policy.mode == "kill" and b.policy.source.endswith("strict.toml")
    assert c.policy is not None and c.policy.mode == "enforce" and c.policy.environment == ("LANG",)
    assert d.policy is None
    inline = load_manifest(_write(tmp_path, '[policy]\nmode = "enforce"\n[[route]]\npath = "/x"\nmodule = "app.wasm"\n'))
    assert inline.routes[0].policy is not None and inline.routes[0].policy.mode == "enforce"
    assert load_manifest(_write(tmp_path, '[[route]]\npath = "/x"\nmodule = "app.wasm"\n')).routes[0].policy is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\npolicy = "nope.toml"\n',
         "app.toml: [[route]] /x key 'policy': "),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\npolicy = 3\n',
         "[[route]] /x key 'policy': expected a policy file"),
        ('[[route]]\npath = "/x"\nmodule = "app.wasm"\n[route.policy]\nmode = "loud"\n',
         "app.toml: [[route]] /x key 'policy': key 'mode': expected \"monitor\", \"enforce\" or \"kill\""),
        ('[policy]\n[policy.clocks]\nmax_calls = "x"\n[[route]]\npath = "/x"\nmodule = "app.wasm"\n',
         "app.toml: key 'policy': [clocks] key 'max_calls'"),
    ],
)  # fmt: skip
def test_policy_errors_name_the_route_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        load_manifest(_write(tmp_path, text))
    assert message in str(info.value)
