"""Wasm binary format, stdlib only: decode and encode core modules (Wasm 3.0)
and the outer layer of components, lazily over one buffer."""
