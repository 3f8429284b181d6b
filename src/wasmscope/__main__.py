"""``python -m wasmscope``: the same as the ``wasmscope`` command."""

from wasmscope.cli import main

raise SystemExit(main())
