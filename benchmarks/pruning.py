"""Pruning (+ clustering) + uint8 on esrgan-slim x4: gzip bytes and Y-PSNR against float32.

Target (issue 7): gzip'd weights <= 1/7 of the float32 model's gzip'd weights with <= 0.1 dB
Y-PSNR drop vs HR, fine-tuned in <= 10 minutes on the 2-core machine.

Side by side, in one run: the float32 parent, tensorflowjs-style uint8 of the parent (what
`tensorflowjs_converter --quantize_uint8` picks: min/max nudged so 0 is exact), the pruned
model in uint8, and (with --cluster K) the pruned+clustered model in uint8. Shards are
written by `srjs.tfjs_weights.write_weights` (tensorflowjs' layout) and gzip'd at -9 like
`srjs.modeldir.file_entry`. Quality: Y-PSNR (shave = scale) of the dequantized network (what
TF.js computes from the shards) on the held-out builtin photos (the second half, full size),
which the fine-tune never sees; it trains on LR patches of the first half.

    nice -n 10 .venv/bin/python benchmarks/pruning.py --prune 0.5 --time-budget 540 \\
        [--cluster 32 --cluster-budget 60] > /tmp/pruning.txt
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SLIM_X4 = "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json"


def gzip_bytes(folder: Path) -> tuple[int, int]:
    raw = gz = 0
    for shard in sorted(folder.glob("*.bin")):
        data = shard.read_bytes()
        raw += len(data)
        gz += len(gzip.compress(data, compresslevel=9, mtime=0))
    return raw, gz


def shipped(model, dtype: str, folder: Path):
    """Write `model`'s weights as TF.js shards in `dtype`; return (raw, gzip, dequantized weights)."""
    from srjs.optimize.quantize import tfjs_encoding
    from srjs.tfjs_weights import Encoding, decode, quantize_tensor, write_weights

    tensors, values = [], []
    for w in model.weights:
        v = w.numpy().astype(np.float32)
        enc = Encoding() if dtype == "float32" else tfjs_encoding(v, dtype)
        tensors.append((w.name.split(":")[0], v, enc))
        values.append(decode(quantize_tensor(v, enc), enc).reshape(v.shape) if dtype != "float32" else v)
    write_weights(folder, tensors)
    raw, gz = gzip_bytes(folder)
    return raw, gz, values


def held_out(scale: int, value_max: float):
    from srjs.evaluate import datasets
    from srjs.evaluate.resize import bicubic_downsample, modcrop

    images = datasets.builtin()
    out = []
    for image in images[max(1, len(images) // 2):]:
        hr = modcrop(image.hr, scale)
        lr = np.clip(np.round(bicubic_downsample(hr, scale)), 0, 255).astype(np.float32)
        out.append((image.name, lr * np.float32(value_max / 255.0), hr))
    return out


def psnr(model, weights, images, scale, value_max, reference=None):
    from srjs.evaluate import metrics

    model.set_weights(weights)
    vs_hr, vs_ref, outs = [], [], []
    for k, (_, lr, hr) in enumerate(images):
        sr = metrics.to_uint8(np.asarray(model(lr[None]), np.float64)[0] * (255.0 / value_max))
        outs.append(sr)
        vs_hr.append(metrics.psnr_y(sr, hr, scale))
        if reference is not None:
            vs_ref.append(min(100.0, metrics.psnr_y(sr, reference[k], scale)))
    return float(np.mean(vs_hr)), (float(np.mean(vs_ref)) if vs_ref else None), outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prune", type=float, default=0.5)
    parser.add_argument("--time-budget", type=float, default=540.0, help="prune fine-tune seconds")
    parser.add_argument("--cluster", type=int, default=None)
    parser.add_argument("--cluster-budget", type=float, default=60.0)
    parser.add_argument("--parent", type=Path, default=None, help="converted esrgan-slim x4 dir")
    args = parser.parse_args()

    from srjs.modeldir import load_keras, read_manifest
    from srjs.optimize.cluster import cluster
    from srjs.optimize.distill import calibration_images
    from srjs.optimize.prune import prune

    work = Path(tempfile.mkdtemp(prefix="srjs-pruning-"))
    parent_dir = args.parent or work / "slim"
    if not (parent_dir / "manifest.json").exists():
        subprocess.run([str(Path(sys.executable).parent / "srjs"), "convert", SLIM_X4, "-o",
                        str(parent_dir)], check=True)
    manifest = read_manifest(parent_dir)
    scale, value_max = manifest.scale, manifest.value_max
    teacher = load_keras(parent_dir)
    model = load_keras(parent_dir)
    images = held_out(scale, value_max)
    calib = calibration_images("builtin", scale)

    rows = []
    raw32, gz32, w32 = shipped(teacher, "float32", work / "f32")
    db32, _, ref = psnr(model, w32, images, scale, value_max)
    rows.append(("float32", raw32, gz32, db32, None, 0.0))
    raw8, gz8, w8 = shipped(teacher, "uint8", work / "u8")
    rows.append(("tfjs-style uint8", raw8, gz8, *psnr(model, w8, images, scale, value_max, ref)[:2], 0.0))

    pruned, prep = prune(model, teacher, calib, sparsity=args.prune, value_max=value_max,
                         time_budget_s=args.time_budget)
    secs = prep["fine_tune"]["seconds"]
    rawp, gzp, wp = shipped(pruned, "float32", work / "p32")
    rows.append((f"pruned {args.prune:g} float32", rawp, gzp, *psnr(model, wp, images, scale, value_max, ref)[:2], secs))
    rawp8, gzp8, wp8 = shipped(pruned, "uint8", work / "p8")
    rows.append((f"pruned {args.prune:g} uint8", rawp8, gzp8, *psnr(model, wp8, images, scale, value_max, ref)[:2], secs))
    if args.cluster:
        clustered, crep = cluster(pruned, teacher, calib, k=args.cluster, value_max=value_max,
                                  time_budget_s=args.cluster_budget)
        secs += crep["fine_tune"]["seconds"]
        rawc, gzc, wc = shipped(clustered, "uint8", work / "c8")
        rows.append((f"pruned {args.prune:g} + cluster {args.cluster} uint8", rawc, gzc,
                     *psnr(model, wc, images, scale, value_max, ref)[:2], secs))

    print(f"esrgan-slim x4, held-out builtin photos: {', '.join(n for n, _, _ in images)}")
    print(f"prune fine-tune: {json.dumps({k: v for k, v in prep.items() if k != 'layers'})}")
    print(f"per-layer sparsity: {json.dumps(prep['layers'])}")
    print()
    print("| variant | shard bytes | gzip bytes | gzip ratio vs float32 | Y-PSNR vs HR (dB) | drop (dB) | fidelity vs parent (dB) | fine-tune s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, raw, gz, db, fid, s in rows:
        fid_s = "-" if fid is None else f"{fid:.2f}"
        print(f"| {name} | {raw} | {gz} | {gz32 / gz:.2f}x | {db:.3f} | {db32 - db:.3f} | {fid_s} | {s:.0f} |")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"\ntotal wall time {time.time() - t0:.0f} s")
