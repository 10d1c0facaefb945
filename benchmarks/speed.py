"""Speed in headless Chromium: UpscalerJS's own model packages vs srjs packages of the same model.

Issue 9's measurement. One Chromium, one page (js/harness/speed.html: TF.js 4.22 + its wasm
backend + UpscalerJS 1.0.0 UMD) for every row, a fresh page per row, so only the model package
and the tiling options differ. Each row times `upscaler.execute(image, options)` end to end
(decode, patches, stitching, reading the result back) on one size x size photo crop: the
first call, then the median of --runs more.

Packages:
- upscalerjs: the npm package (`@upscalerjs/esrgan-<m>@1.0.0`), its UMD x4 definition with
  `path` pointed at the same package's model.json served locally (self-hosting, as UpscalerJS's
  docs describe). Tiling as UpscalerJS's patch-size guide shows: patchSize 32, padding 2.
- srjs: `srjs package` of the converted model (`float`) and of `--prune-channels R` variants
  (`chNN`), loaded through the package's own ESM definition. Tiling: tile --tile px plus the
  seam-free padding measured on that model (evaluate's rule: tiled == whole within one level).
Each package also runs whole-image (no patchSize: UpscalerJS's default), so the gain from the
model and the gain from tiling can be told apart.

Backends: wasm with 1 thread; wasm with every core (TF.js 4.22 caps threads at
hardwareConcurrency / 2, so the page reports twice the cores for that row); webgl, which runs
on SwiftShader (software) here: no GPU on this machine.

Quality (Python, on the weights the package ships): Y-PSNR against HR and fidelity against the
original's output on centre crops of the builtin held-out images (never seen by the pruning
fine-tune).

    .venv/bin/python benchmarks/speed.py --models medium --ratios 0.3 --time-budget 420
    .venv/bin/python benchmarks/speed.py --models thick --ratios 0.3 --backends wasm1,wasm --runs 1
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

NPM = {  # --models name -> (npm package, its UMD global for x4, UMD file)
    "slim": ("@upscalerjs/esrgan-slim", "ESRGANSlim4x", "dist/umd/models/esrgan-slim/src/x4/index.js"),
    "medium": ("@upscalerjs/esrgan-medium", "ESRGANMedium4x", "dist/umd/models/esrgan-medium/src/x4/index.js"),
    "thick": ("@upscalerjs/esrgan-thick", "ESRGANThick4x", "dist/umd/models/esrgan-thick/src/x4/index.js"),
}
VERSION = "1.0.0"
BACKENDS = {"wasm1": ("wasm", 1), "wasm": ("wasm", "all"), "webgl": ("webgl", None)}
UPSCALERJS_DOCS_TILING = (32, 2)  # patchSize, padding: upscalerjs.com's patch-size guide


def converted(model: str, work: Path) -> Path:
    from srjs.convert.run import convert_checkpoint

    out = work / model / "float"
    if not (out / "manifest.json").is_file():
        convert_checkpoint(f"npm:{NPM[model][0]}@{VERSION}/models/x4", out)
    return out


def variant(parent: Path, ratio: float, budget_s: float) -> Path:
    from srjs.optimize.run import Recipe, make_variant

    out = parent.parent / f"ch{int(round(ratio * 100))}"
    if not (out / "manifest.json").is_file():
        make_variant(parent, out, Recipe(prune_channels=ratio, time_budget_s=budget_s), progress=True)
    return out


def seam_free_padding(model_dir: Path) -> int:
    """Measured once per model dir (evaluate's rule) and recorded in its manifest."""
    from srjs import modeldir
    from srjs.evaluate.run import load_dataset, measure_seam_free_padding
    from srjs.evaluate.shipped import load_shipped
    from srjs.runtime.python import keras_runner

    manifest = modeldir.read_manifest(model_dir)
    if "seam_free_padding" not in manifest.results:
        pad, patch = measure_seam_free_padding(keras_runner(load_shipped(model_dir)), load_dataset("builtin", 1)[0],
                                               manifest.scale, manifest.value_max)
        modeldir.record_results(model_dir, seam_free_padding=pad, seam_patch=patch)
        manifest = modeldir.read_manifest(model_dir)
    return int(manifest.results["seam_free_padding"])


@functools.lru_cache(maxsize=None)
def heldout_outputs(model_dir: Path, lr_side: int):
    """(held-out crops, the shipped model's outputs on them), once per model dir."""
    from srjs import modeldir
    from srjs.evaluate.shipped import load_shipped
    from srjs.optimize import calib

    manifest = modeldir.read_manifest(model_dir)
    crops = calib.heldout_crops("builtin", manifest.scale, manifest.value_max, lr_side)
    model = load_shipped(model_dir)
    outputs = np.concatenate([model(crops.lr[i:i + 1], training=False).numpy() for i in range(len(crops.lr))])
    return crops, outputs


def quality(model_dir: Path, original: Path, lr_side: int) -> dict:
    from srjs import modeldir
    from srjs.optimize import calib

    manifest = modeldir.read_manifest(model_dir)
    crops, reference = heldout_outputs(original, lr_side)
    _, mine = heldout_outputs(model_dir, lr_side)
    q = calib.quality(mine, crops, manifest.scale, manifest.value_max, reference)
    q0 = calib.quality(reference, crops, manifest.scale, manifest.value_max)
    return {"psnr_y": q.psnr_y, "drop_db": q0.psnr_y - q.psnr_y,
            "fidelity_db": q.fidelity_psnr_y if model_dir != original else None, "images": crops.names}


def package(model_dir: Path, name: str) -> Path:
    from srjs.package import write_package

    out = model_dir.parent / f"pkg-{model_dir.name}"
    if not (out / "package.json").is_file():
        write_package([model_dir], out, name=name, version="1.0.0", exports=("layers",))
    return out


def time_row(session, how: dict, image_png: Path, backend: str, threads, tiling, runs: int) -> dict:
    from srjs.runtime.browser import page_job

    with page_job(session, "srjs-speed-") as (session, tmp, mount):
        (tmp / "image.png").write_bytes(image_png.read_bytes())
        job = {**{k: (mount(v[0]) + v[1]) if isinstance(v, tuple) else v for k, v in how.items()},
               "backend": backend, "image_url": mount(tmp) + "image.png", "runs": runs,
               "patch_size": tiling[0] if tiling else None, "padding": tiling[1] if tiling else 0}
        if threads == "all":
            import os

            cores = os.cpu_count() or 1
            job.update(threads=cores, report_cores=2 * cores)
        elif threads:
            job["threads"] = threads
        reply = session.call("speed.html", "srjsSpeed", job, 3600)
    if not reply.get("ok"):
        return {"error": reply.get("error")}
    result = reply["result"]
    result["warm_ms"] = statistics.median(result["runs_ms"]) if result["runs_ms"] else None
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="medium,thick")
    parser.add_argument("--ratios", default="0.3", help="--prune-channels ratios of the srjs variants")
    parser.add_argument("--time-budget", type=float, default=420.0, help="fine-tune seconds per variant")
    parser.add_argument("--size", type=int, default=256, help="input image side, px")
    parser.add_argument("--tile", type=int, default=128, help="srjs tiling: tile px (patchSize = tile + 2 pad)")
    parser.add_argument("--backends", default="wasm1,wasm,webgl")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the first (median)")
    parser.add_argument("--quality-lr", type=int, default=96, help="LR side of the held-out quality crops, px")
    parser.add_argument("--webgl-size", type=int, default=None,
                        help="image side for webgl rows (SwiftShader is slow); default --size")
    parser.add_argument("--work", type=Path, default=Path("/tmp/srjs-speed"))
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()

    import srjs  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
    from PIL import Image

    from srjs.convert import npm
    from srjs.evaluate.run import center_crop, load_dataset
    from srjs.package.definitions import ESM_DIR
    from srjs.runtime.browser import BrowserSession

    photo = load_dataset("builtin", 1)[0].hr
    rows, started = [], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.work.mkdir(parents=True, exist_ok=True)
    images = {}
    for side in {args.size, args.webgl_size or args.size}:
        images[side] = args.work / f"image-{side}.png"
        Image.fromarray(center_crop(photo, side)[0]).save(images[side])
    with BrowserSession() as session:
        for model in args.models.split(","):
            npm_name, umd_global, umd_file = NPM[model]
            upstream = npm.package_dir(npm_name, VERSION)
            original = converted(model, args.work)
            dirs = [original] + [variant(original, float(r), args.time_budget) for r in args.ratios.split(",") if r]
            packages = []
            for d in dirs:
                pkg = package(d, f"srjs-{model}-{d.name}")
                entry = json.loads((pkg / "package.json").read_text())["exports"]
                module = next(v["import"] for k, v in entry.items() if k.startswith("./") and isinstance(v, dict)
                              and "import" in v)
                pad = seam_free_padding(d)
                q = quality(d, original, args.quality_lr)
                macs = _macs(d)
                packages.append((f"srjs {d.name}", {"definition_url": (pkg, module[2:])},
                                 (args.tile + 2 * pad, pad), q, macs))
            q0 = quality(original, original, args.quality_lr)
            how = {"definition_script": (upstream, umd_file), "definition_global": umd_global,
                   "path": (upstream, "models/x4/model.json")}
            packages.insert(0, ("upscalerjs", how, UPSCALERJS_DOCS_TILING, q0, _macs(original)))
            for label in args.backends.split(","):
                backend, threads = BACKENDS[label]
                side = args.webgl_size if backend == "webgl" and args.webgl_size else args.size
                for name, how, tiling, q, macs in packages:
                    for tiled in (tiling, None):
                        t = time_row(session, how, images[side], backend, threads, tiled, args.runs)
                        t["backend_used"] = t.pop("backend", None)
                        row = {"model": model, "package": name, "backend": label, "size": side,
                               "tiling": f"{tiled[0]}/{tiled[1]}" if tiled else "whole", **q, **macs, **t}
                        rows.append(row)
                        print(_line(row), flush=True)
    print()
    print(table(rows, started))
    if args.json:
        args.json.write_text(json.dumps({"started": started, "rows": rows}, indent=1, default=str))
    return 0


def _macs(model_dir: Path) -> dict:
    from srjs.evaluate.shipped import load_shipped
    from srjs.optimize import channels

    model = load_shipped(model_dir)
    return {"macs_per_px": sum(channels.conv_macs(model).values()), "params": channels.params(model)}


def _line(row: dict) -> str:
    if row.get("error"):
        return f"{row['model']:7} {row['package']:14} {row['backend']:6} {row['tiling']:8} ERROR {row['error'][:200]}"
    return (f"{row['model']:7} {row['package']:14} {row['backend']:6} {row['tiling']:8} threads {row['threads']} "
            f"first {row['first_ms']:.0f} ms warm {row['warm_ms']:.0f} ms")


def table(rows: list[dict], started: str) -> str:
    """Markdown: one line per row, with its speed-up over UpscalerJS's documented setup and over
    UpscalerJS on the whole image (the same tiling: the model's own gain)."""
    base = {(r["model"], r["backend"], r["tiling"] == "whole"): r.get("warm_ms") for r in rows
            if r["package"] == "upscalerjs"}
    out = [f"Measured {started}.", "",
           "| model | package | backend | tiling (patchSize/padding) | MACs/px | warm ms | first ms | "
           "vs UpscalerJS docs | vs UpscalerJS whole | Y-PSNR drop (dB) | fidelity (dB) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            out.append(f"| {r['model']} | {r['package']} | {r['backend']} | {r['tiling']} | | error: "
                       f"{r['error'][:80]} | | | | | |")
            continue
        ratio = lambda ref: f"{ref / r['warm_ms']:.2f}x" if ref and r.get("warm_ms") else ""
        docs = ratio(base.get((r["model"], r["backend"], False)))
        whole = ratio(base.get((r["model"], r["backend"], True))) if r["tiling"] == "whole" else ""
        fid = f"{r['fidelity_db']:.1f}" if r.get("fidelity_db") is not None else "(original)"
        out.append(f"| {r['model']} | {r['package']} | {r['backend']} | {r['tiling']} | "
                   f"{r['macs_per_px'] / 1e3:.0f}k | {r['warm_ms']:.0f} | {r['first_ms']:.0f} | {docs} | {whole} | "
                   f"{r['drop_db']:.3f} | {fid} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
