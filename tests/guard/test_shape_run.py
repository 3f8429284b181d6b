"""Policy.shape with a real guest: in enforce the C program sees only the allowed
variables and cannot write in a dir the policy grants read-only, nor see a dir the
policy does not grant; in monitor it sees everything and the findings say what."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.analysis.tools import c_to_wasm
from wasmscope.guard.policy import parse_policy
from wasmscope.runtime import Runtime
from wasmscope.runtime.options import RunOptions
from wasmscope.runtime.wasi import DirSpec

PROBE_C = r"""
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    const char *names[] = {"LANG", "AWS_SECRET"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        printf("%s=%s\n", names[i], v ? v : "(unset)");
    }
    FILE *f = fopen("/data/new.txt", "w");
    printf("write /data: %s\n", f ? "ok" : "refused");
    if (f) fclose(f);
    f = fopen("/secret/key", "r");
    printf("read /secret: %s\n", f ? "ok" : "refused");
    if (f) fclose(f);
    return 0;
}
"""

POLICY = '[filesystem]\ndirs = ["/data:ro"]\n[environment]\nallow = ["LANG"]\n'


def test_the_guest_sees_the_world_the_policy_cuts(tmp_path: Path) -> None:
    wasm = c_to_wasm(PROBE_C, tmp_path, "probe")
    (tmp_path / "data").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_text("k")
    policy = parse_policy(tomllib.loads(POLICY), "p.toml")
    options = RunOptions(
        env={"LANG": "C", "AWS_SECRET": "hunter2"},
        dirs=[
            DirSpec(str(tmp_path / "data"), "/data"),
            DirSpec(str(tmp_path / "secret"), "/secret"),
        ],
    )
    with Runtime(cache_dir=tmp_path / "cache") as rt:
        shaped, findings = policy.shape(options, "enforce")
        out = rt.run(wasm, [], shaped).stdout.decode()
        assert "LANG=C\nAWS_SECRET=(unset)\n" in out
        assert "write /data: refused" in out and "read /secret: refused" in out
        assert {f.rule for f in findings} == {"env.variable", "fs.dir"}
        assert not (tmp_path / "data" / "new.txt").exists()
        same, reported = policy.shape(options, "monitor")
        rec = rt.run(wasm, [], same)
        out = rec.stdout.decode()
        assert (
            "AWS_SECRET=hunter2" in out and "write /data: ok" in out and "read /secret: ok" in out
        )
        assert {f.target for f in reported} == {"AWS_SECRET", "/secret", "/data"}
        # the secret's value in the output, even without an audit log
        assert [f.rule for f in policy.evaluate(rec, None, same)] == ["env.exfiltration"]
