"""Every CLI flag is on its command's page in docs/, and every manifest key on docs/serve.md.

The flags come from the real argparse parsers. The manifest keys come from the loader
itself: an unknown key is refused with the list of the known ones, which is parsed here.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from wasmscope.cli import build_parser
from wasmscope.errors import WasmscopeError
from wasmscope.gateway.manifest import load

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _flags(parser: argparse.ArgumentParser, nested: bool = False) -> list[str]:
    """A parser's flags; with ``nested``, its subcommands' too (``guard check --policy``)."""
    out: list[str] = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            if nested:
                for sub in a.choices.values():
                    out.extend(f for f in _flags(sub, nested) if f not in out)
        else:
            out.extend(s for s in a.option_strings if s not in out)
    return out


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


COMMANDS = _commands()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_is_on_its_commands_page(command: str) -> None:
    page = DOCS / f"{command}.md"
    assert page.is_file(), f"docs/{command}.md is missing"
    text = page.read_text()
    missing = [f for f in _flags(COMMANDS[command], nested=True) if not _mentions(text, f)]
    assert not missing, f"docs/{command}.md does not mention {missing}"


def test_the_top_level_flags_are_in_the_readme_or_docs() -> None:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    missing = [
        f for f in _flags(build_parser()) if f not in ("-h", "--help") and not _mentions(text, f)
    ]
    assert missing == ["--version"] or not missing


def _known_keys(tmp_path: Path, toml: str) -> list[str]:
    (tmp_path / "m.wasm").write_bytes(b"\0asm\1\0\0\0")
    manifest = tmp_path / "app.toml"
    manifest.write_text(toml)
    with pytest.raises(WasmscopeError) as info:
        load(manifest)
    found = re.search(r"\(known: ([^)]*)\)", str(info.value))
    assert found, str(info.value)
    return [k.strip() for k in found.group(1).split(",")]


@pytest.mark.parametrize(
    "toml",
    [
        "[server]\nnot_a_key = 1\n",
        '[[route]]\npath = "/x"\nmodule = "m.wasm"\nnot_a_key = 1\n',
        '[[route]]\npath = "/x"\nmodule = "m.wasm"\n[[key]]\nid = "a"\nhash = "x"\nroutes = ["*"]\nnot_a_key = 1\n',
    ],
    ids=["server", "route", "key"],
)
def test_every_manifest_key_is_on_the_serve_page(tmp_path: Path, toml: str) -> None:
    keys = _known_keys(tmp_path, toml)
    assert keys
    text = (DOCS / "serve.md").read_text()
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"docs/serve.md does not document the manifest key(s) {missing}"


def test_every_telemetry_name_is_in_the_telemetry_reference() -> None:
    from wasmscope.telemetry import semconv

    text = (DOCS / "telemetry.md").read_text()
    names = {getattr(semconv, n) for n in semconv.__all__ if isinstance(getattr(semconv, n), str)}
    names |= {m.name for m in semconv.METRICS}
    names = {n for n in names if "." in n}
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"docs/telemetry.md does not mention {missing}"


def test_every_policy_key_is_on_the_guard_page() -> None:
    from wasmscope.guard.policy import SECTIONS

    text = (DOCS / "guard.md").read_text()
    assert "| `mode` |" in text
    missing = [f"[{s}] {k}" for s, keys in SECTIONS.items() for k in keys if f"| `[{s}]` `{k}` |" not in text]
    assert not missing, f"docs/guard.md does not document the policy key(s) {missing}"
