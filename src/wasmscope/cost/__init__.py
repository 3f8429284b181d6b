"""What WebAssembly invocations cost under serverless price models, per invocation and
per Wasm function, and the limits they should run with (issue 14).

Modules: :mod:`.attribution` (per-function shares of one profiled invocation's cost).
numpy is this package's one heavy dependency (``pip install 'wasmscope[cost]'``),
imported only inside it.
"""

__all__: list[str] = []
