"""Which toolchain built a module, with the evidence for the guess.

Clues, strongest first: the ``producers`` section (``processed-by``
wasm-bindgen, clang ``...-wasi-sdk``, ``Go cmd/compile``...), import
conventions (``__wbindgen_*``, Go's ``gojs`` module, Emscripten's ``env``
helpers), export conventions, custom section names (``dylink``,
``component-type:wit-bindgen:*``) and function names from the name section
(``runtime.*``, ``~lib/``). Each rule that fires adds a weight to one
candidate and a line of evidence; the heaviest candidate wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Toolchain", "ToolchainFacts", "infer_toolchain", "language_name"]

# Display names of the producers section's language values.
_LANGUAGES = {
    "C_plus_plus": "C++",
    "C_plus_plus_03": "C++03",
    "C_plus_plus_11": "C++11",
    "C_plus_plus_14": "C++14",
    "C_plus_plus_17": "C++17",
    "C_plus_plus_20": "C++20",
    "C_plus_plus_23": "C++23",
    "ObjC_plus_plus": "Objective-C++",
}
_C_FAMILY = re.compile(r"^(C|C\d\d|C_plus_plus.*|ObjC.*)$")

_EMSCRIPTEN_IMPORT_PREFIXES = (
    "emscripten_", "_emscripten_", "__syscall_", "invoke_", "_embind_", "_emval_",
)
_EMSCRIPTEN_IMPORT_NAMES = frozenset(
    {
        "_abort_js", "_tzset_js", "_localtime_js", "_gmtime_js", "_mktime_js", "_timegm_js",
        "_mmap_js", "_munmap_js", "_dlopen_js", "_dlsym_js", "_setitimer_js", "__call_sighandler",
    }
)
_EMSCRIPTEN_EXPORTS = frozenset(
    {
        "emscripten_stack_init", "emscripten_stack_get_end", "emscripten_stack_get_base",
        "emscripten_stack_get_free", "emscripten_stack_get_current", "_emscripten_stack_restore",
        "_emscripten_stack_alloc", "stackSave", "stackRestore", "stackAlloc", "_emscripten_timeout",
        "_emscripten_tempret_set", "_emscripten_tempret_get", "emscripten_builtin_memalign",
        "_emscripten_thread_init", "__emscripten_stdout_close", "_emscripten_run_callback_on_thread",
    }
)
_WBG_EXPORT_PREFIXES = ("__wbindgen_", "__wbg_", "__externref_")
_AS_EXPORTS = frozenset({"__new", "__pin", "__unpin", "__collect", "__rtti_base", "__setArgumentsLength"})
_WASM_BINDGEN_MODULES = frozenset({"wbg", "__wbindgen_placeholder__", "__wbindgen_externref_xform__"})
_WASI_P1 = frozenset({"wasi_snapshot_preview1", "wasi_unstable"})


@dataclass(slots=True)
class ToolchainFacts:
    """What the inference looks at; built from a module or a component."""

    producers: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    imports: Sequence[tuple[str, str]] = ()  # (module, name)
    exports: Sequence[str] = ()
    custom_sections: Sequence[str] = ()
    function_names: Iterable[str] = ()
    module_name: str | None = None  # from the name section
    core_module_names: Sequence[str] = ()  # a component's core modules (name sections)
    core_toolchains: Sequence[tuple[str, int, str]] = ()  # (toolchain name, size, label) per core module
    is_component: bool = False


@dataclass(slots=True)
class Toolchain:
    name: str  # "clang/wasi-sdk", "Emscripten", "Rust/wasm-bindgen", "Go", ... or "unknown"
    confidence: str  # "high", "medium", "low" or "none"
    languages: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # processed-by / sdk entries, "name version"
    variant: str | None = None  # "side module", "minified", "WASI command"...
    evidence: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)  # other candidates that scored

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "confidence": self.confidence,
            "languages": list(self.languages),
            "tools": list(self.tools),
            "variant": self.variant,
            "evidence": list(self.evidence),
            "alternatives": list(self.alternatives),
        }


def language_name(raw: str) -> str:
    return _LANGUAGES.get(raw, raw)


class _Scores:
    def __init__(self) -> None:
        self.score: dict[str, int] = {}
        self.evidence: dict[str, list[tuple[int, str]]] = {}

    def add(self, name: str, weight: int, why: str) -> None:
        self.score[name] = self.score.get(name, 0) + weight
        self.evidence.setdefault(name, []).append((weight, why))


def _sample(names: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


# Candidates that refine another one: when both score, the refinement wins
# and takes the other's evidence.
_REFINES = {
    "Rust/wasm-bindgen": ("Rust",),
    "Rust/wit-bindgen": ("Rust", "wit-bindgen"),
    "clang/wasi-sdk": ("clang",),
    "Emscripten": ("clang",),
    "TinyGo": ("Go",),
    "componentize-py": ("wit-component", "clang/wasi-sdk", "clang", "Rust", "Rust/wit-bindgen", "wit-bindgen"),
}


def infer_toolchain(facts: ToolchainFacts) -> Toolchain:
    s = _Scores()
    languages: list[str] = []
    tools: list[str] = []
    variant: str | None = None
    producers = facts.producers

    # -- producers ------------------------------------------------------------
    for name, version in producers.get("language", ()):
        languages.append(f"{language_name(name)} {version}".strip())
        if name == "Rust":
            s.add("Rust", 6, "producers: language Rust")
        elif name == "Go":
            s.add("Go", 10, f"producers: language Go {version}".rstrip())
        elif _C_FAMILY.match(name):
            s.add("clang", 2, f"producers: language {language_name(name)}")
    c_family = any(_C_FAMILY.match(n) for n, _ in producers.get("language", ()))
    for fld in ("processed-by", "sdk"):
        for name, version in producers.get(fld, ()):
            tools.append(f"{name} {version}".strip())
            low = name.lower()
            label = f"producers: {fld} {name} {version}".rstrip()
            if low == "wasm-bindgen":
                s.add("Rust/wasm-bindgen", 12, label)
            elif low == "walrus":
                s.add("Rust/wasm-bindgen", 1, label)
            elif low == "rustc":
                s.add("Rust", 8, label)
            elif re.search(r"\bclang\b", low):  # clang, Debian clang, Apple clang...
                if "wasi-sdk" in version.lower():
                    s.add("clang/wasi-sdk", 12, label)
                elif "emscripten" in version.lower():
                    s.add("Emscripten", 12, label)
                else:
                    s.add("clang", 4, label)
            elif low in ("emscripten", "emcc"):
                s.add("Emscripten", 12, label)
            elif low == "wasi-sdk":
                s.add("clang/wasi-sdk", 12, label)
            elif low.startswith("go") and ("cmd/compile" in low or low == "go"):
                s.add("Go", 10, label)
            elif low == "tinygo":
                s.add("TinyGo", 14, label)
            elif low == "componentize-py":
                s.add("componentize-py", 16, label)
            elif low == "component-init-transform":
                s.add("componentize-py", 1, label)
            elif low in ("assemblyscript", "asc"):
                s.add("AssemblyScript", 12, label)
            elif low == "wit-component":
                s.add("wit-component", 2, label)
            elif low == "wit-bindgen-rust" or low == "wit-bindgen":
                s.add("Rust/wit-bindgen" if "Rust" in languages else "wit-bindgen", 6, label)

    # -- imports --------------------------------------------------------------
    imports = list(facts.imports)
    modules = {m for m, _ in imports}
    wbg = [n for m, n in imports if m in _WASM_BINDGEN_MODULES or n.startswith(("__wbindgen_", "__wbg_"))]
    if wbg:
        s.add("Rust/wasm-bindgen", 8, f"imports: {len(wbg)} wasm-bindgen glue functions ({_sample(wbg, 2)})")
    for gomod in ("gojs", "go"):
        gonames = [n for m, n in imports if m == gomod]
        if gonames:
            s.add("Go", 10, f"imports: {len(gonames)} functions from module {gomod!r}, Go's js/wasm ABI ({_sample(gonames, 2)})")
    ems = [
        f"{m}.{n}"
        for m, n in imports
        if m in ("env", "wasi_snapshot_preview1")
        and (n.startswith(_EMSCRIPTEN_IMPORT_PREFIXES) or n in _EMSCRIPTEN_IMPORT_NAMES)
    ]
    if ems:
        s.add("Emscripten", 8 if len(ems) > 1 else 5, f"imports: Emscripten runtime helpers ({_sample(ems)})")
    func_imports = [(m, n) for m, n in imports if m]
    if (
        len(modules) == 1
        and len(func_imports) >= 3
        and next(iter(modules)) in ("a", "env")
        and all(len(n) <= 3 for _, n in func_imports)
    ):
        s.add("Emscripten", 6, f"imports: {len(func_imports)} minified names from module {next(iter(modules))!r} (Emscripten's optimized builds)")
        variant = "minified"
    wasi = [n for m, n in imports if m in _WASI_P1]
    if wasi and not ems:
        s.add("clang/wasi-sdk", 3 if c_family else 2, f"imports: {len(wasi)} WASI preview 1 functions and no Emscripten helpers")
    if ("env", "abort") in imports:
        s.add("AssemblyScript", 2, "imports: env.abort")
    side = ("env", "__memory_base") in imports
    if side:
        variant = variant or "dynamic library (side module)"

    # -- exports --------------------------------------------------------------
    exports = list(facts.exports)
    ems_exports = [e for e in exports if e in _EMSCRIPTEN_EXPORTS or e.startswith("dynCall_")]
    if ems_exports:
        s.add("Emscripten", 6, f"exports: {_sample(ems_exports)}")
    wbg_exports = [e for e in exports if e.startswith(_WBG_EXPORT_PREFIXES)]
    if wbg_exports:
        s.add("Rust/wasm-bindgen", 6, f"exports: {_sample(wbg_exports)}")
    as_exports = [e for e in exports if e in _AS_EXPORTS]
    if len(as_exports) >= 2:
        s.add("AssemblyScript", 6, f"exports: AssemblyScript runtime ({_sample(as_exports)})")
    if "cabi_realloc" in exports or any(e.startswith("cabi_post_") for e in exports):
        s.add("wit-bindgen", 2, "exports: canonical ABI helpers (cabi_realloc)")
    if len(exports) >= 3 and variant == "minified":
        short = sum(1 for e in exports if len(e) <= 3)
        if short * 10 >= len(exports) * 9:
            s.add("Emscripten", 2, f"exports: {short} of {len(exports)} names minified")
    if "_start" in exports and wasi:
        variant = variant or "WASI command"
    elif "_initialize" in exports and wasi:
        variant = variant or "WASI reactor"

    # -- custom sections ------------------------------------------------------
    customs = list(facts.custom_sections)
    for name in customs:
        if name == "dylink":
            s.add("Emscripten", 8, "custom section 'dylink' (Emscripten's side-module format, before dylink.0)")
            variant = "dynamic library (side module)"
        elif name == "emscripten_metadata":
            s.add("Emscripten", 12, "custom section 'emscripten_metadata'")
        elif name in ("go.buildid", "go:buildid"):
            s.add("Go", 10, f"custom section {name!r}")
        elif name.startswith("component-type:wit-bindgen:") or name.startswith("component-type"):
            cand = "Rust/wit-bindgen" if s.score.get("Rust") else "wit-bindgen"
            s.add(cand, 6, f"custom section {shorten_name(name)!r} (wit-bindgen's component type)")
    if ("dylink.0" in customs or "GOT.mem" in modules or "GOT.func" in modules) and variant is None:
        variant = "main module with dynamic linking"

    # -- names ----------------------------------------------------------------
    mod_name = facts.module_name or ""
    if mod_name:
        if "componentize_py" in mod_name or "componentize-py" in mod_name:
            s.add("componentize-py", 10, f"name section: module {mod_name!r}")
        elif "component_adapter" in mod_name or mod_name.startswith("wit-component:adapter"):
            s.add("Rust/wit-bindgen" if s.score.get("Rust") else "wit-component", 4, f"name section: module {mod_name!r}")
            variant = "WASI preview 1 component adapter"
        elif mod_name.startswith("wit-component:"):
            s.add("wit-component", 8, f"name section: module {mod_name!r}")
            variant = mod_name.split(":", 1)[1]
    counts = dict.fromkeys(_NAME_KEYS, 0)
    samples: dict[str, str] = {}
    for fname in facts.function_names:
        if not fname.startswith(_NAME_PREFIXES):
            continue
        key = _name_key(fname)
        if key is not None:
            counts[key] += 1
            samples.setdefault(key, fname)
    if counts["go_runtime"] >= 5:
        s.add("Go", 6, f"name section: {counts['go_runtime']} runtime.* functions (e.g. {samples['go_runtime']})")
    if counts["go_js"]:
        s.add("Go", 2, f"name section: {counts['go_js']} syscall/js.* functions")
    if counts["tinygo"]:
        s.add("TinyGo", 8, f"name section: {counts['tinygo']} tinygo_* functions (e.g. {samples['tinygo']})")
    if counts["as_lib"]:
        s.add("AssemblyScript", 10, f"name section: {counts['as_lib']} ~lib/ functions (e.g. {samples['as_lib']})")
    if counts["ems"]:
        s.add("Emscripten", 3, f"name section: {counts['ems']} emscripten_* functions (e.g. {samples['ems']})")
    if counts["wasilibc"] and not counts["ems"]:
        s.add("clang/wasi-sdk", 3, f"name section: {counts['wasilibc']} wasi-libc functions (e.g. {samples['wasilibc']})")
    if counts["rust"] >= 3:
        s.add("Rust", 4, f"name section: {counts['rust']} Rust-mangled functions (e.g. {shorten_name(samples['rust'])})")

    # -- components -----------------------------------------------------------
    if facts.is_component:
        cpy = [n for n in facts.core_module_names if "componentize_py" in n or "componentize-py" in n]
        pylib = [n for n in facts.core_module_names if n.startswith("libpython")]
        if cpy:
            s.add("componentize-py", 12, f"core module {cpy[0]!r}")
        if pylib:
            s.add("componentize-py", 4, f"core module {pylib[0]!r} (CPython as a dynamic library)")
        if not s.score and facts.core_toolchains:
            known = [t for t in facts.core_toolchains if t[0] != "unknown"]
            if known:
                name, size, label = max(known, key=lambda t: t[1])
                s.add(name, 5, f"largest core module {label} ({size} bytes) looks built by {name}")

    return _decide(s, languages, tools, variant)


_NAME_KEYS = ("go_runtime", "go_js", "as_lib", "ems", "wasilibc", "rust", "tinygo")
_NAME_PREFIXES = (
    "runtime.", "syscall/js.", "~lib/", "emscripten_", "_emscripten_", "__emscripten_",
    "__wasilibc_", "__wasi_", "core::", "alloc::", "std::", "_ZN", "_R", "tinygo_", "<",
)
_RUST_HASH = re.compile(r"(::h[0-9a-f]{16}|17h[0-9a-f]{16}E)$")


def _name_key(fname: str) -> str | None:
    """Which family of names ``fname`` belongs to (it starts with one of _NAME_PREFIXES)."""
    if fname.startswith("runtime."):
        return "go_runtime"
    if fname.startswith("syscall/js."):
        return "go_js"
    if fname.startswith("~lib/"):
        return "as_lib"
    if fname.startswith(("emscripten_", "_emscripten_", "__emscripten_")):
        return "ems"
    if fname.startswith(("__wasilibc_", "__wasi_")):
        return "wasilibc"
    if fname.startswith("tinygo_"):
        return "tinygo"
    if _RUST_HASH.search(fname):
        return "rust"
    return None


def shorten_name(name: str, width: int = 60) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _decide(s: _Scores, languages: list[str], tools: list[str], variant: str | None) -> Toolchain:
    if not s.score:
        return Toolchain("unknown", "none", languages, tools, variant, ["no producers section, import convention or name pattern recognised"])
    score = dict(s.score)
    evidence = {k: list(v) for k, v in s.evidence.items()}
    # A refinement absorbs what it refines.
    for fine, coarse in _REFINES.items():
        if score.get(fine, 0) >= 3:
            for c in coarse:
                if c in score:
                    score[fine] += score.pop(c)
                    evidence[fine].extend(evidence.pop(c))
    ranked = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))
    best, top = ranked[0]
    confidence = "high" if top >= 10 else "medium" if top >= 5 else "low"
    ev = [why for _w, why in sorted(evidence[best], key=lambda wv: -wv[0])]
    alternatives = [f"{name} ({sc})" for name, sc in ranked[1:] if sc >= 3]
    return Toolchain(best, confidence, languages, tools, variant, ev, alternatives)
