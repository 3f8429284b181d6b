"""Running guests under wasmtime with limits, and observing them.

This is the only package that imports ``wasmtime``.
"""
