"""WAGI handlers written in WAT (text Wasm), for the serve tests that need only a
response, a loop or a trap: they build with ``wasmtime.wat2wasm``, so these tests never
skip for want of clang (the C fixtures stay for the tests of real toolchain output).
Each reads what it needs through the WASI imports and writes its CGI response to fd 1."""

from __future__ import annotations

from pathlib import Path

__all__ = ["HELLO", "SPIN", "build"]

_WASI = "wasi_snapshot_preview1"

# Like fixtures/hello.c: "hello QUERY_STRING". Memory: 0 the environment's count and
# size, 16 the header, 64 the variable's name, 80 "\n", 96 an iovec, 128 bytes
# written, 1024 the environment's pointers, 8192 its strings.
HELLO = f"""
(module
  (import "{_WASI}" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "{_WASI}" "environ_get" (func $environ (param i32 i32) (result i32)))
  (import "{_WASI}" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "content-type: text/plain\\n\\nhello ")
  (data (i32.const 64) "QUERY_STRING=")
  (data (i32.const 80) "\\n")
  (func $is_query (param $p i32) (result i32)
    (local $i i32)
    (block $differs
      (loop $next
        (br_if $differs (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i)))
                                (i32.load8_u (i32.add (i32.const 64) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (i32.const 13))))
      (return (i32.const 1)))
    (i32.const 0))
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end
      (loop $next
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  (func (export "_start")
    (local $i i32) (local $entry i32) (local $value i32) (local $len i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $environ (i32.const 1024) (i32.const 8192)))
    (block $found
      (loop $next
        (br_if $found (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
        (local.set $entry (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (if (call $is_query (local.get $entry))
          (then
            (local.set $value (i32.add (local.get $entry) (i32.const 13)))
            (local.set $len (call $strlen (local.get $value)))
            (br $found)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $print (i32.const 16) (i32.const 32))
    (call $print (local.get $value) (local.get $len))
    (call $print (i32.const 80) (i32.const 1)))
  (func $print (param $at i32) (param $len i32)  ;; one write per buffer: WASI may write only the first of several
    (i32.store (i32.const 96) (local.get $at))
    (i32.store (i32.const 100) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 96) (i32.const 1) (i32.const 128)))))
"""

# Like fixtures/spin.c: a header, then a loop that never ends (only a timeout stops it).
SPIN = f"""
(module
  (import "{_WASI}" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "content-type: text/plain\\n\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 26))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $forever (br $forever))))
"""


def build(folder: Path, **sources: str) -> dict[str, Path]:
    """Each WAT source as ``folder/NAME.wasm``, by name."""
    import wasmtime

    built: dict[str, Path] = {}
    for name, text in sources.items():
        path = built[name] = folder / f"{name}.wasm"
        path.write_bytes(wasmtime.wat2wasm(text))
    return built
