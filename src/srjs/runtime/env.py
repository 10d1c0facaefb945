"""Where the TF.js runtimes live: node, Debian chromium and the js/ folder with node_modules.

js/ sits at the repository root (DESIGN.md layout); SRJS_JS_DIR, SRJS_NODE and SRJS_CHROMIUM
override the lookups. Anything missing is a BadInput whose one line says how to fix it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from srjs.errors import BadInput

# Packages the harnesses import; checked up front so a missing install is one clear line
# instead of a Node stack trace.
_NODE_DEPS = ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm")
_BROWSER_DEPS = _NODE_DEPS + ("playwright-core",)
_UPSCALERJS_DEPS = ("tfjs-4.11", "upscaler", "playwright-core")


def js_dir() -> Path:
    """The js/ folder holding package.json, harness/ and (after `make setup`) node_modules/."""
    override = os.environ.get("SRJS_JS_DIR")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parents[3] / "js"


def harness(name: str) -> Path:
    path = js_dir() / "harness" / name
    if not path.is_file():
        raise BadInput(f"TF.js harness {path} is missing; srjs needs its repository checkout (js/)")
    return path


def require_js_deps(kind: str = "node") -> Path:
    """js/ after checking node_modules holds what the `kind` harness ('node', 'browser',
    'upscalerjs') imports."""
    deps = {"node": _NODE_DEPS, "browser": _BROWSER_DEPS, "upscalerjs": _UPSCALERJS_DEPS}[kind]
    root = js_dir()
    missing = [d for d in deps if not (root / "node_modules" / d / "package.json").is_file()]
    if missing:
        raise BadInput(
            f"TF.js runtime not installed ({root / 'node_modules'} lacks {', '.join(missing)}); "
            "run `make setup`"
        )
    return root


def node() -> str:
    found = os.environ.get("SRJS_NODE") or shutil.which("node")
    if not found:
        raise BadInput("node (Node.js 18+) is not on PATH; install it, then run `make setup`")
    return found


def chromium() -> str:
    override = os.environ.get("SRJS_CHROMIUM")
    if override:
        return override
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise BadInput("chromium is not on PATH; run `make setup` (installs Debian's chromium)")
