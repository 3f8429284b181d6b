"""The guest's world: --dir and --env parsing, and the in-memory output capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmscope.errors import UsageError
from wasmscope.runtime.wasi import DirSpec, OutputCapture, parse_env


def test_dir_spec(tmp_path: Path) -> None:
    d = str(tmp_path)
    assert DirSpec.parse(d) == DirSpec(d, d, False)
    assert DirSpec.parse(f"{d}::/data") == DirSpec(d, "/data", False)
    assert DirSpec.parse(f"{d}::/data:ro") == DirSpec(d, "/data", True)
    assert DirSpec.parse(f"{d}:ro") == DirSpec(d, d, True)
    assert DirSpec.parse(f"{d}::/data:rw") == DirSpec(d, "/data", False)


@pytest.mark.parametrize("spec", ["", "::/x", "{d}::", "{d}/missing::/x", "{d}/file.txt"])
def test_dir_spec_refuses(tmp_path: Path, spec: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError):
        DirSpec.parse(spec.format(d=tmp_path))


def test_parse_env() -> None:
    env = parse_env(["A=1", "B=x=y", "EMPTY="], ["HOME_LIKE", "UNSET"], {"HOME_LIKE": "/h"})
    assert env == {"HOME_LIKE": "/h", "A": "1", "B": "x=y", "EMPTY": ""}
    for bad in (["NOEQUALS"], ["=v"]):
        with pytest.raises(UsageError):
            parse_env(bad)
    with pytest.raises(UsageError):
        parse_env([], ["A=B"])


def test_output_capture_cap_and_reuse() -> None:
    cap = OutputCapture(10)
    try:
        with open(cap.paths[0], "wb") as f:
            f.write(b"0123456789abcdef")
        with open(cap.paths[1], "wb") as f:
            f.write(b"err")
        assert cap.sizes() == (16, 3)
        assert cap.over_cap()
        assert cap.read(0) == (b"0123456789", 16, True)
        assert cap.read(0, 4) == (b"456789", 16, True)
        assert cap.read(1) == (b"err", 3, False)
        cap.reset(None)
        assert cap.sizes() == (0, 0)
        assert not cap.over_cap()
    finally:
        cap.close()
        cap.close()  # idempotent
