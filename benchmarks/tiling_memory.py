"""Benchmark: a 4000x3000 image upscaled x4 with 128 px tiles stays under 4 GiB peak RSS.

    .venv/bin/python benchmarks/tiling_memory.py [MODEL_DIR] [--patch 128] [--pad 8] [--limit-gib 4]

MODEL_DIR defaults to esrgan-slim x4 (converted into a temporary folder first). The upscale
runs in a child process so its peak RSS (resource.getrusage ru_maxrss) counts only loading
the model, the 4000x3000 input and tiled upscaling into one 16000x12000x3 float32 output
(2.1 GiB of the budget). Prints peak RSS, RSS after loading, tiles and wall time; exits 1 if
the peak is over the limit. With esrgan-slim x4 on 2 cores this takes a few minutes.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH, HEIGHT, SCALE = 4000, 3000, 4
SLIM_X4 = "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json"


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def child(model_dir: Path, patch: int, pad: int) -> dict:
    """Runs in the subprocess: load, make the image, upscale tiled; return the measurements."""
    import numpy as np
    from skimage import data

    import srjs  # noqa: F401  (legacy Keras before TensorFlow)
    from srjs import modeldir
    from srjs.evaluate.shipped import load_shipped
    from srjs.evaluate.tiling import plan_tiles, upscale_tiled
    from srjs.runtime.python import keras_runner

    manifest = modeldir.read_manifest(model_dir)
    if manifest.scale != SCALE:
        raise SystemExit(f"{model_dir} upscales x{manifest.scale}; this benchmark needs x{SCALE}")
    run = keras_runner(load_shipped(model_dir))
    # A real photo tiled to 4000x3000, so tiles hold image content rather than noise.
    photo = data.astronaut()
    reps = (-(-HEIGHT // photo.shape[0]), -(-WIDTH // photo.shape[1]), 1)
    image = (np.tile(photo, reps)[:HEIGHT, :WIDTH].astype(np.float32) * np.float32(manifest.value_max / 255))
    loaded = _rss_gib()
    tiles = len(plan_tiles(HEIGHT, WIDTH, patch, pad))
    start = time.perf_counter()
    from tqdm import tqdm

    with tqdm(total=tiles, desc="tiles", unit="tile", file=sys.stderr, mininterval=5) as bar:
        out = upscale_tiled(run, image, SCALE, patch, pad, progress=bar)
    seconds = time.perf_counter() - start
    return {"model": manifest.name, "input": [HEIGHT, WIDTH], "output": list(out.shape), "patch": patch,
            "pad": pad, "tiles": tiles, "seconds": round(seconds, 1), "tiles_per_s": round(tiles / seconds, 2),
            "rss_after_load_gib": round(loaded, 3), "peak_rss_gib": round(_rss_gib(), 3),
            "output_gib": round(out.nbytes / 2**30, 3), "finite": bool(np.isfinite(out[::97, ::97]).all())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", type=Path)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--pad", type=int, default=8)
    parser.add_argument("--limit-gib", type=float, default=4.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model_dir, args.patch, args.pad)))
        return 0

    with tempfile.TemporaryDirectory(prefix="srjs-bench-") as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            import srjs  # noqa: F401
            from srjs.convert.run import convert_checkpoint

            model_dir = Path(tmp) / "esrgan-slim-x4"
            convert_checkpoint(SLIM_X4, model_dir)
        command = [sys.executable, __file__, str(model_dir), "--patch", str(args.patch), "--pad", str(args.pad),
                   "--child"]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print(f"child failed with exit code {done.returncode}", file=sys.stderr)
        return done.returncode
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["limit_gib"] = args.limit_gib
    result["ok"] = result["peak_rss_gib"] < args.limit_gib
    print(json.dumps(result, indent=1))
    print(f"{result['model']}: {WIDTH}x{HEIGHT} x{SCALE}, {result['tiles']} tiles of {args.patch} px + "
          f"{args.pad} px pad in {result['seconds']} s ({result['tiles_per_s']} tiles/s); peak RSS "
          f"{result['peak_rss_gib']:.2f} GiB (after loading {result['rss_after_load_gib']:.2f} GiB, output "
          f"{result['output_gib']:.2f} GiB); limit {args.limit_gib} GiB: {'ok' if result['ok'] else 'OVER'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
