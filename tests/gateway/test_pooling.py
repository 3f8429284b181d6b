"""wasmtime's pooling allocator under the gateway: instances come from reused slots,
and nothing of one request's memory reaches the next."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.manifest import load_manifest  # noqa: E402


def test_no_state_crosses_requests_in_reused_slots(wagi_modules: dict[str, Path], tmp_path: Path, gateway_cache: Path) -> None:
    manifest = tmp_path / "app.toml"
    manifest.write_text(f'[[route]]\npath = "/c"\nmodule = "{wagi_modules["counter"]}"\nmax_concurrency = 4\n')
    gw = Gateway(load_manifest(manifest), cache_dir=str(gateway_cache), pooling=True)
    gw.prepare()

    async def main() -> list[str]:
        transport = httpx.ASGITransport(app=gw)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            bodies = [(await client.get("/c")).text for _ in range(30)]  # one slot, reused
            for _ in range(5):  # and several slots at once
                answers = await asyncio.gather(*(client.get("/c") for _ in range(4)))
                bodies += [r.text for r in answers if r.status_code == 200]
            return bodies

    try:
        bodies = asyncio.run(main())
    finally:
        gw.close()
    assert len(bodies) >= 30 + 5
    assert set(bodies) == {"calls=1 dirty=0\n"}


def test_without_address_space_for_the_pools_instances_are_allocated_on_demand(wat_modules: dict[str, Path], tmp_path: Path) -> None:
    """Where the pools cannot be reserved (here: an 8 GiB address-space limit, where
    they need terabytes), the engine falls back to on-demand instances, with a warning."""
    script = textwrap.dedent(f"""
        import logging, resource, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        from wasmscope.runtime import Runtime
        from wasmscope.runtime.engine import Pooling
        with Runtime(cache=False, pooling=Pooling()) as rt:
            rec = rt.run({str(wat_modules["hello"])!r}, [])
        print(rec.outcome, rec.stdout.decode().split("\\n")[0])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("ok content-type:")
    assert "pooling allocator is not available here" in proc.stderr
