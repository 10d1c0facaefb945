"""Latency of model dirs in Python (TF) and TF.js: cold and warm, whole image and tiled.

For each model, input size (square, input pixels) and tile size (`patch`, 0 = whole image):
- cold_ms: the first call for that shape on a freshly loaded model (Python: the first call of
  the model; TF.js: the harness's first predict, shader/kernel set-up included);
- warm_ms: the median of `warm` further calls;
- tiles per second, and the tiled time over the whole-image time at the same size next to
  the ideal ((patch + 2*pad) / patch)^2 (`tiling.ideal_overhead`) and the exact pixel
  overhead of this image's tile plan (`tiling.tiling_overhead`).

Python times the full `tiling.upscale_tiled` call. The TF.js harnesses run whole inputs only,
so a TF.js tiled time is tiles x the warm time of one tile-shaped input (method "per-tile"):
stitching, which is a copy, is left out.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from srjs import modeldir
from srjs.errors import BadInput
from srjs.evaluate import tiling
from srjs.evaluate.results import Bench, Timing, write_json
from srjs.runtime import kinds

DEFAULT_PAD = 8


def time_call(fn: Callable[[], object], warm: int) -> tuple[float, float | None]:
    """(cold_ms, warm median ms) of `fn`: one first call, then `warm` timed calls (None if 0)."""
    start = time.perf_counter()
    fn()
    cold = (time.perf_counter() - start) * 1e3
    runs = []
    for _ in range(warm):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1e3)
    return cold, (statistics.median(runs) if runs else None)


def tile_count(size: int, tile: int, pad: int) -> int:
    """Model calls for a size x size image (1 for the whole image, tile 0)."""
    return 1 if tile == 0 else len(tiling.plan_tiles(size, size, tile, pad))


def _derived(size: int, tile: int, pad: int, warm_ms: float | None, whole_ms: float | None) -> dict:
    tiles = tile_count(size, tile, pad)
    return {
        "tiles": tiles,
        "tiles_per_s": tiles / (warm_ms / 1e3) if warm_ms else None,
        "overhead": warm_ms / whole_ms if (tile and warm_ms and whole_ms) else None,
        "ideal_overhead": tiling.ideal_overhead(tile, pad) if tile else None,
        "pixel_overhead": tiling.tiling_overhead(size, size, tile, pad) if tile else None,
    }


def _input(size: int, value_max: float, seed: int = 0, channels: int = 3) -> np.ndarray:
    # Random content: conv latency does not depend on pixel values, but all-zero inputs could
    # hit denormal or sparse fast paths that photos never do.
    return (np.random.default_rng(seed).random((size, size, channels)) * value_max).astype(np.float32)


def _load_python(model_dir: Path):
    from srjs.evaluate.shipped import load_shipped, shipped_model_json

    if shipped_model_json(model_dir).is_file():
        return load_shipped(model_dir)
    return modeldir.load_keras(model_dir)


def bench_python(model_dir: Path, sizes: Sequence[int], tiles: Sequence[int], pad: int, warm: int,
                 model=None, progress=None) -> list[Timing]:
    """Python (TF, eager Keras call) timings of one model dir; see the module docstring.

    model: an already loaded Keras model of the dir (else the shipped weights are loaded).
    progress: a tqdm-like bar updated once per (size, tile).
    """
    from srjs.runtime.python import keras_runner

    manifest = modeldir.read_manifest(model_dir)
    run = keras_runner(model if model is not None else _load_python(Path(model_dir)))
    out = []
    for size in sizes:
        image = _input(size, manifest.value_max, channels=manifest.channels)
        whole_ms = None
        for tile in sorted(tiles):  # 0 (whole) first: the overhead needs it
            if tile == 0:
                cold, warm_ms = time_call(lambda: run(image[None]), warm)
                whole_ms = warm_ms
            else:
                cold, warm_ms = time_call(
                    lambda: tiling.upscale_tiled(run, image, manifest.scale, tile, pad), warm)
            out.append(Timing(
                model=manifest.name, path=str(model_dir), runtime="python", backend="tf", format="keras",
                size=size, tile=tile, pad=pad if tile else 0, cold_ms=cold, warm_ms=warm_ms, warm_runs=warm,
                **_derived(size, tile, pad, warm_ms, whole_ms)))
            if progress is not None:
                progress.update(1)
    return out


def bench_tfjs(model_dirs: Sequence[Path], sizes: Sequence[int], tiles: Sequence[int], pad: int, warm: int,
               runtime: str = "node", backends: Sequence[str] | None = None, fmt: str = "graph",
               progress=None) -> list[Timing]:
    """TF.js timings of model dirs in `runtime` ('node' or 'browser'), one harness call per shape;
    for 'ort-node' / 'ort-browser', onnxruntime-web's timings of onnx/model.onnx.

    fmt: which export to load, 'graph' (tfjs_graph/) or 'layers' (tfjs_layers/); 'onnx' for ort. Tiled times
    are tiles x one tile-shaped input's time (method 'per-tile'). A failed model x backend
    becomes a Timing with `error` set.
    """
    from srjs.runtime import run_tfjs
    from srjs.runtime.ort import RUNNERS as ORT_RUNNERS, run_ort

    backends = tuple(backends or kinds.KINDS[runtime].timing_backends)
    manifests = [modeldir.read_manifest(d) for d in model_dirs]
    if runtime in ORT_RUNNERS:  # onnxruntime-web runs the float32 ONNX export
        fmt = "onnx"
        models = [(Path(d) / "onnx" / "model.onnx", fmt) for d in model_dirs]
        run_tfjs = lambda models, inputs, runtime, backends, warm_runs: run_ort(  # noqa: E731
            runtime, models, inputs, backends, warm_runs)
    else:
        folder = {"graph": modeldir.TFJS_GRAPH_DIR, "layers": modeldir.TFJS_LAYERS_DIR}[fmt]
        models = [(Path(d) / folder / "model.json", fmt) for d in model_dirs]
    value_max = max(m.value_max for m in manifests)  # random content; the range only scales it
    channels = {m.channels for m in manifests}  # one input feeds every model of a harness call
    if len(channels) > 1:
        from srjs.errors import BadInput

        raise BadInput(f"these model dirs take {sorted(channels)} image channels; time one channel count per call")
    out: list[Timing] = []
    for size in sizes:
        whole: dict = {}
        # Whole image first (tile 0), then each distinct tile shape; the window side is what runs.
        for tile in sorted(set(tiles) | {0}):
            window = size if tile == 0 else min(tile + 2 * pad, size)
            results = run_tfjs(models, [_input(window, value_max, channels=min(channels))[None]],
                               runtime=runtime, backends=backends,
                               warm_runs=warm)
            for i, result in enumerate(results):
                mi = i // len(backends)  # run_tfjs returns model x backend, models outer
                key = (mi, result.backend)
                manifest = manifests[mi]
                common = dict(model=manifest.name, path=str(model_dirs[mi]), runtime=runtime,
                              backend=result.backend, format=fmt, size=size, tile=tile,
                              pad=pad if tile else 0, warm_runs=warm)
                if result.error:
                    out.append(Timing(**common, tiles=tile_count(size, tile, pad), cold_ms=None, warm_ms=None,
                                      tiles_per_s=None, overhead=None, ideal_overhead=None,
                                      pixel_overhead=None, error=result.error))
                    continue
                n = tile_count(size, tile, pad)
                one = result.warm_ms if result.warm_ms is not None else result.first_ms
                warm_ms = one * n
                cold_ms = result.first_ms + one * (n - 1)
                if tile == 0:
                    whole[key] = warm_ms
                if tile in tiles:
                    out.append(Timing(**common, cold_ms=cold_ms, warm_ms=warm_ms,
                                      method="measured" if tile == 0 else "per-tile",
                                      **_derived(size, tile, pad, warm_ms, whole.get(key))))
            if progress is not None:
                progress.update(1)
    return out


def run_bench(model_dirs: Sequence[Path], *, runtimes: Sequence[str] = ("python",),
              sizes: Sequence[int] = (64, 128), tiles: Sequence[int] = (0, 32, 64), warm: int = 3,
              pad: int | None = None, backends: Sequence[str] | None = None, fmt: str = "graph",
              json_path: Path | None = None, progress: bool = True) -> Bench:
    """`srjs bench`: time every model dir in every runtime; optionally write the JSON.

    pad: context per tile side in input pixels; default each model's seam-free padding from
    its manifest results, else 8. backends: TF.js backends (default node cpu+wasm, browser
    wasm). Sizes and tiles are in input pixels; tile 0 is the whole image.
    """
    model_dirs = [Path(d) for d in model_dirs]
    if not model_dirs:
        raise BadInput("give at least one model dir")
    for runtime in runtimes:
        kinds.get(runtime, "bench")
    if any(s < 1 for s in sizes) or any(t < 0 for t in tiles) or warm < 0:
        raise BadInput("sizes must be >= 1, tiles >= 0 and --warm >= 0")
    manifests = [modeldir.read_manifest(d) for d in model_dirs]
    pads = [pad if pad is not None else int(m.results.get("seam_free_padding", DEFAULT_PAD)) for m in manifests]
    timings: list[Timing] = []
    bar = _bar(progress, total=len(sizes) * len(set(tiles) | {0}) * len(model_dirs) * len(runtimes),
               desc="bench")
    try:
        for runtime in runtimes:
            if runtime == "python":
                for d, p in zip(model_dirs, pads):
                    timings += bench_python(d, sizes, tiles, p, warm, progress=bar)
            else:
                # One harness call covers every model with the same pad.
                for p in sorted(set(pads)):
                    group = [d for d, q in zip(model_dirs, pads) if q == p]
                    timings += bench_tfjs(group, sizes, tiles, p, warm, runtime=runtime,
                                          backends=backends, fmt=fmt, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    bench = Bench(timings=timings, warm_runs=warm)
    if json_path is not None:
        write_json(bench.to_dict(), json_path)
    return bench


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=None)  # None: off unless a terminal
