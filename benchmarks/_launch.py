"""Start ``uvicorn`` or ``wasmscope`` with uvicorn's multi-process listener given
``IPPROTO_TCP``, so that ``--workers N`` answers without Nagle's delay.

    python benchmarks/_launch.py uvicorn  _hello_asgi:app --workers 2 ...
    python benchmarks/_launch.py wasmscope serve app.toml --workers 2 ...

uvicorn's ``Config.bind_socket()`` (used for ``--workers N``, and by
``wasmscope serve --workers N``) leaves the socket's ``proto`` at 0; accepted
connections inherit it and asyncio sets ``TCP_NODELAY`` only when it is
``IPPROTO_TCP``. Every keep-alive request after the first then waits ~40 ms for the
client's delayed ACK (uvicorn issue #3149, open; uvicorn 0.54 here). The single-process
path is not affected. Here the bound socket is wrapped again from its file descriptor,
whose protocol the kernel reports as TCP: the same fix for both servers, so that
``benchmarks/serve.py --workers 2`` compares the servers, not the bug (and a no-op once
uvicorn or serve has the fix).
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn.config

_bind_socket = uvicorn.config.Config.bind_socket


def _bind_socket_tcp(self: Any) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        return socket.socket(fileno=sock.detach())  # family, type and proto read from the fd
    return sock


def main(argv: list[str]) -> int:
    uvicorn.config.Config.bind_socket = _bind_socket_tcp  # type: ignore[method-assign]
    tool, rest = argv[0], argv[1:]
    if tool == "uvicorn":
        from uvicorn.main import main as uvicorn_main

        sys.argv = ["uvicorn", *rest]
        uvicorn_main()  # a click command: exits itself
        return 0
    if tool == "wasmscope":
        from wasmscope.cli import main as wasmscope_main

        return wasmscope_main(rest)
    raise SystemExit(f"_launch.py: expected uvicorn or wasmscope, not {tool!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
