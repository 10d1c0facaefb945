"""The package's demo page: demo/index.html + demo.js + tiling.mjs (srjs/package/page/),
demo/entries.mjs importing each entry's ESM definition, and demo/vendor/ with TF.js.

Vendor choice: tf.min.js, the wasm backend (script + its three .wasm builds) and the webgpu
backend are copied from js/node_modules (about 3.1 MB, 0.9 MB gzipped) so the page works
from any static server with no network and no install step. Files are copied as they are,
so two runs give the same bytes.
"""
from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

from srjs import strict_json
from srjs.errors import BadInput
from srjs.package.definitions import ESM_DIR, Definition
from srjs.runtime import env

PAGE_FILES = ("index.html", "demo.js", "tiling.mjs", "ort-demo.mjs")  # ort-demo: ONNX entries, loaded lazily
VENDOR = {  # file in the package's demo/vendor/ -> path under js/node_modules
    "tf.min.js": "@tensorflow/tfjs/dist/tf.min.js",
    "tf-backend-wasm.min.js": "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "tfjs-backend-wasm.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm-threaded-simd.wasm":
        "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
    "tf-backend-webgpu.min.js": "@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js",
}


def _version(node_modules: Path, package: str) -> str:
    return json.loads((node_modules / package / "package.json").read_text())["version"]


def write_demo(root: Path, defs: list[Definition], about: dict[str, dict] | None = None) -> None:
    """Write demo/ into the package folder `root`.

    about: per entry, what the page's model list shows to choose by ({gzip_bytes, psnr_y,
    dataset}, measured; missing keys are left out).
    """
    demo = root / "demo"
    (demo / "vendor").mkdir(parents=True)
    page = resources.files("srjs.package") / "page"
    for name in PAGE_FILES:
        (demo / name).write_bytes((page / name).read_bytes())
    lines = [f"import e{i} from '../{ESM_DIR}/{d.entry}.mjs';" for i, d in enumerate(defs)]
    lines.append("export default [")
    lines += [f"  {{ entry: {strict_json.dumps(d.entry)}, definition: e{i}, "
              f"about: {strict_json.dumps((about or {}).get(d.entry, {}), sort_keys=True)} }},"
              for i, d in enumerate(defs)]
    lines.append("];\n")
    (demo / "entries.mjs").write_text("\n".join(lines))

    node_modules = env.require_js_deps("node") / "node_modules"
    for name, rel in VENDOR.items():
        src = node_modules / rel
        if not src.is_file():
            raise BadInput(f"{src} is missing; run `make setup` (the demo page ships TF.js from it)")
        shutil.copyfile(src, demo / "vendor" / name)
    versions = ", ".join(f"`{p}` {_version(node_modules, p)}" for p in (
        "@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm", "@tensorflow/tfjs-backend-webgpu"))
    (demo / "vendor" / "README.md").write_text(
        f"TensorFlow.js builds from npm, unmodified: {versions}. Apache License 2.0, Copyright Google "
        "LLC. Copied here so the demo runs offline from any static server.\n")
