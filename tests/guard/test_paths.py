"""Guest path globs, joining, and the traversal kinds."""

from __future__ import annotations

import pytest

from wasmscope.guard._paths import glob_matches, guest_join, traversal, under


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("/data/*.csv", "/data/a.csv", True),
        ("/data/*.csv", "/data/sub/a.csv", False),
        ("/data/**", "/data", True),
        ("/data/**", "/data/a/b/c", True),
        ("/data/**", "/database", False),
        ("/data/**/x.txt", "/data/x.txt", True),
        ("/data/**/x.txt", "/data/a/b/x.txt", True),
        ("/data/?.txt", "/data/a.txt", True),
        ("/data/?.txt", "/data/ab.txt", False),
        ("/data/[ab].txt", "/data/b.txt", True),
        ("/data/[!ab].txt", "/data/b.txt", False),
        ("/data/[[]1].txt", "/data/[1].txt", True),
        ("**", "rel/any/thing", True),
        ("*.txt", "notes.txt", True),
    ],
)
def test_globs(glob: str, path: str, matches: bool) -> None:
    assert glob_matches(glob, path) is matches


def test_join_and_under() -> None:
    assert guest_join("/data", "a/../b/./c/") == "/data/b/c"
    assert guest_join("/data", ".") == "/data"
    assert guest_join(".", "x/y") == "x/y"
    assert guest_join("/", "etc/passwd") == "/etc/passwd"
    assert under("/data", "/data/x") and under("/data", "/data") and not under("/data", "/database")
    assert under(".", "x/y") and not under(".", "../x") and not under(".", "/x")
    assert under("/", "/etc")


@pytest.mark.parametrize(
    ("path", "kind"),
    [("../x", "parent"), ("..", "parent"), ("a/../../x", "escape"), ("a/b/../../../x", "escape"),
     ("/etc/passwd", "absolute"), ("a\0b", "nul"), ("dir/", "trailing-slash"),
     ("a/../b", None), ("./a", None), ("a", None), ("/", "absolute")],
)  # fmt: skip
def test_traversal_kinds(path: str, kind: str | None) -> None:
    assert traversal(path) == kind
