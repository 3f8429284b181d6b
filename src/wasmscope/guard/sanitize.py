"""The guest's output, sanitized before it is logged: terminal escapes and control
characters made visible, and counted in a finding.

A guest that writes ``ESC ] 52 ; c ; ...`` sets the clipboard of whoever tails its
logs; ``ESC ] 8 ; ; URL`` makes a hidden hyperlink; ``ESC [ 2 J``, ``\\r`` and
backspaces rewrite what a log line seems to say. :func:`neutralize` replaces every
control character but ``\\n`` and ``\\t`` by its visible escape (``\\x1b`` becomes the
four characters ``\\x1b``), which disarms every sequence: a terminal acts on none
of them without the ESC (or C1) character. :func:`scan` counts what there was, by kind:

==========  ==========================================================================
``csi``     Control Sequence Introducer sequences (``ESC [`` or C1 ``0x9b``): colours,
            cursor moves, screen clears
``osc``     Operating System Commands (``ESC ]``, C1 ``0x9d``) other than these two:
``osc8``    OSC 8 hyperlinks
``osc52``   OSC 52 clipboard writes
``dcs``     Device Control Strings (``ESC P``) and the other string sequences (SOS
            ``ESC X``, PM ``ESC ^``, APC ``ESC _``)
``esc``     other escape sequences (``ESC c`` resets the terminal, ``ESC 7``...)
``c0``      other C0 control bytes (NUL, BEL, backspace, ...) and DEL
``c1``      C1 control characters (U+0080 to U+009F, or raw bytes 0x80 to 0x9f
            that are not UTF-8)
``cr``      carriage returns not followed by a newline (flagged: they can overwrite
            a line on a terminal; a CRLF line end is not counted)
==========  ==========================================================================

:func:`sanitize_output` turns a run's stdout and stderr into :class:`Finding` values
(``wasm.output.sanitized``). The telemetry pipelines neutralize the guest's log lines
when built with ``sanitize_output=True`` (see :meth:`Telemetry.from_options`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wasmscope.guard.findings import EventName, Finding, Outcome, Severity

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["KINDS", "RULE", "neutralize", "sanitize_bytes", "sanitize_output", "scan"]

RULE = "output.control"
KINDS = ("csi", "osc", "osc8", "osc52", "dcs", "esc", "c0", "c1", "cr")
_NAMES = {"csi": "CSI sequence", "osc": "OSC sequence", "osc8": "OSC 8 hyperlink", "osc52": "OSC 52 clipboard write",
          "dcs": "DCS/string sequence", "esc": "escape sequence", "c0": "control byte", "c1": "C1 control",
          "cr": "carriage return"}  # fmt: skip

# Every character a terminal may act on, but \t and \n; \r only when a \n does not follow.
_CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\udc80-\udc9f]|\r(?!\n)")
# Where to look: one character class, which the regex engine scans fast (\r included,
# a CRLF's is then skipped).
_FIND = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\udc80-\udc9f]")
# The sequences, most specific first; a string sequence ends at BEL or ST (ESC \ or 0x9c),
# else at the end of the text (a sequence cut there is still one).
_ST = "(?:\x07|\x1b\\\\|\x9c|\udc9c|$)"
_SEQUENCES = re.compile(
    f"(?P<osc52>(?:\x1b\\]|[\x9d\udc9d])52;[^\x07\x1b\x9c\udc9c]*{_ST})"
    f"|(?P<osc8>(?:\x1b\\]|[\x9d\udc9d])8;[^\x07\x1b\x9c\udc9c]*{_ST})"
    f"|(?P<osc>(?:\x1b\\]|[\x9d\udc9d])[^\x07\x1b\x9c\udc9c]*{_ST})"
    f"|(?P<dcs>(?:\x1b[PX^_]|[\x90\x98\x9e\x9f\udc90\udc98\udc9e\udc9f])[^\x07\x1b\x9c\udc9c]*{_ST})"
    "|(?P<csi>(?:\x1b\\[|[\x9b\udc9b])[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?)"
    "|(?P<esc>\x1b[\x20-\x2f]*[\x30-\x7e]?)"
    "|(?P<cr>\r(?!\n))"
    "|(?P<c1>[\x80-\x9f\udc80-\udc9f])"
    "|(?P<c0>[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f])",
    re.DOTALL,
)


# Bytes that can only be plain text (printable ASCII, \t, \n, UTF-8 lead and high
# continuation bytes): output made of these alone needs no regex (translate is ~20x faster).
_PLAIN = bytes(i for i in range(256) if i in (9, 10) or 0x20 <= i < 0x7F or i >= 0xA0)


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        code -= 0xDC00
    return f"\\x{code:02x}"


def neutralize(text: str) -> str:
    """``text`` with each control character but ``\\n``, ``\\t`` (and the ``\\r`` of a
    ``\\r\\n``) replaced by its visible escape (``\\x1b``)."""
    if text.isprintable() or _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escape, text)


def scan(text: str) -> dict[str, int]:
    """How many of each kind of :data:`KINDS` ``text`` holds (kinds not found left out)."""
    counts: dict[str, int] = {}
    if text.isprintable():
        return counts
    # Only where a control character is: trying every alternative at every position of
    # a long output would cost a hundred times more.
    i = 0
    while (m := _FIND.search(text, i)) is not None:
        seq = _SEQUENCES.match(text, m.start())
        if seq is None or seq.lastgroup is None:  # the \r of a \r\n
            i = m.end()
            continue
        counts[seq.lastgroup] = counts.get(seq.lastgroup, 0) + 1
        i = max(seq.end(), m.end())
    return counts


def sanitize_bytes(data: bytes) -> tuple[str, dict[str, int]]:
    """``data`` (UTF-8, other bytes kept as escapes) neutralized, and its counts."""
    text = data.decode("utf-8", "surrogateescape")
    counts = scan(text) if data.translate(None, _PLAIN) else {}
    if not counts:
        return text, counts
    out = _CONTROL.sub(_escape, text)
    return out.encode("utf-8", "backslashreplace").decode("utf-8"), counts


def _describe(stream: str, counts: dict[str, int]) -> str:
    parts = [
        f"{n} {_NAMES[k]}{'s' if n != 1 else ''}"
        for k, n in sorted(counts.items(), key=lambda kv: KINDS.index(kv[0]))
    ]
    return f"{stream}: {', '.join(parts)} neutralized before logging"


def sanitize_output(
    record: InvocationRecord, streams: Iterable[str] = ("stdout", "stderr")
) -> list[Finding]:
    """One finding per stream of ``record`` that holds terminal escapes or control
    characters: what and how many (``details``: the counts by kind, ``total``)."""
    out: list[Finding] = []
    for stream in streams:
        data: bytes = getattr(record, stream)
        if not data or not data.translate(None, _PLAIN):
            continue
        counts = scan(data.decode("utf-8", "surrogateescape"))
        if not counts:
            continue
        dangerous = "osc52" in counts or "osc8" in counts or "dcs" in counts
        details: dict[str, object] = {"output.stream": stream, "output.total": sum(counts.values())}
        details.update({f"output.{k}": n for k, n in counts.items()})
        out.append(Finding(EventName.OUTPUT, RULE, Severity.ERROR if dangerous else Severity.WARN,
                           _describe(stream, counts), "stdio", Outcome.ALLOWED, target=stream,
                           details=details))  # fmt: skip
    return out
