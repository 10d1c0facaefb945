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

import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import srjs
from srjs import atomic, modeldir
from srjs.errors import BadInput
from srjs.evaluate import tiling

SCHEMA = "srjs.bench/1"
RUNTIMES = ("python", "node", "browser")
DEFAULT_BACKENDS = {"python": ("tf",), "node": ("cpu", "wasm"), "browser": ("wasm",)}
DEFAULT_PAD = 8


@dataclass
class Timing:
    """One model x runtime x backend x input size x tile size. Times in milliseconds."""

    model: str
    path: str
    runtime: str  # python | node | browser
    backend: str  # tf (Python) | cpu | wasm | webgl
    format: str  # keras | layers | graph
    size: int  # input side, pixels (square input)
    tile: int  # patch (tile core) side, input pixels; 0 = whole image
    pad: int  # context on each side of a patch, input pixels
    tiles: int  # model calls per image
    cold_ms: float | None
    warm_ms: float | None  # median of warm_runs
    warm_runs: int
    tiles_per_s: float | None  # model calls per second, warm
    overhead: float | None  # tiled warm_ms / whole-image warm_ms at the same size
    ideal_overhead: float | None  # ((tile + 2*pad) / tile)^2
    pixel_overhead: float | None  # tile pixels computed / image pixels, for this size
    method: str = "measured"  # measured | per-tile (tiles x one tile's time)
    error: str | None = None


@dataclass
class Bench:
    """A bench run: machine, date and every Timing. JSON schema `srjs.bench/1`."""

    timings: list[Timing]
    warm_runs: int
    machine: dict = field(default_factory=lambda: machine_info())
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    srjs_version: str = srjs.__version__
    schema: str = SCHEMA

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Bench":
        if data.get("schema") != SCHEMA:
            raise BadInput(f"not an {SCHEMA} document (schema {data.get('schema')!r})")
        data = dict(data)
        data["timings"] = [Timing(**t) for t in data["timings"]]
        return cls(**data)

    def summary(self) -> str:
        """A fixed-width text table, one line per timing."""
        head = (f"{'model':<28} {'runtime':<8} {'backend':<7} {'size':>5} {'tile':>5} {'pad':>4} "
                f"{'tiles':>5} {'cold ms':>9} {'warm ms':>9} {'tiles/s':>8} {'overhead':>8} {'ideal':>6}")
        lines = [head]
        for t in self.timings:
            if t.error:
                lines.append(f"{t.model:<28} {t.runtime:<8} {t.backend:<7} {t.size:>5} {t.tile:>5} "
                             f"{t.pad:>4}  error: {t.error}")
                continue
            lines.append(
                f"{t.model:<28} {t.runtime:<8} {t.backend:<7} {t.size:>5} {t.tile or 'whole':>5} {t.pad:>4} "
                f"{t.tiles:>5} {_fmt(t.cold_ms, 1):>9} {_fmt(t.warm_ms, 1):>9} {_fmt(t.tiles_per_s, 1):>8} "
                f"{_fmt(t.overhead, 2):>8} {_fmt(t.ideal_overhead, 2):>6}")
        return "\n".join(lines)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def machine_info() -> dict:
    """What a timing was measured on: CPU, cores, OS, Python and TF versions."""
    import os

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    from srjs.tf import tf

    info["tensorflow"] = tf.__version__
    return info


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


def _input(size: int, value_max: float, seed: int = 0) -> np.ndarray:
    # Random content: conv latency does not depend on pixel values, but all-zero inputs could
    # hit denormal or sparse fast paths that photos never do.
    return (np.random.default_rng(seed).random((size, size, 3)) * value_max).astype(np.float32)


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
    from srjs.upscale import keras_runner

    manifest = modeldir.read_manifest(model_dir)
    run = keras_runner(model if model is not None else _load_python(Path(model_dir)))
    out = []
    for size in sizes:
        image = _input(size, manifest.value_max)
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
    """TF.js timings of model dirs in `runtime` ('node' or 'browser'), one harness call per shape.

    fmt: which export to load, 'graph' (tfjs_graph/) or 'layers' (tfjs_layers/). Tiled times
    are tiles x one tile-shaped input's time (method 'per-tile'). A failed model x backend
    becomes a Timing with `error` set.
    """
    from srjs.runtime import run_tfjs

    backends = tuple(backends or DEFAULT_BACKENDS[runtime])
    folder = {"graph": modeldir.TFJS_GRAPH_DIR, "layers": modeldir.TFJS_LAYERS_DIR}[fmt]
    manifests = [modeldir.read_manifest(d) for d in model_dirs]
    models = [(Path(d) / folder / "model.json", fmt) for d in model_dirs]
    value_max = max(m.value_max for m in manifests)  # random content; the range only scales it
    out: list[Timing] = []
    for size in sizes:
        whole: dict = {}
        # Whole image first (tile 0), then each distinct tile shape; the window side is what runs.
        for tile in sorted(set(tiles) | {0}):
            window = size if tile == 0 else min(tile + 2 * pad, size)
            results = run_tfjs(models, [_input(window, value_max)[None]], runtime=runtime, backends=backends,
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
        if runtime not in RUNTIMES:
            raise BadInput(f"unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})")
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


def write_json(data: dict, path: Path) -> None:
    """Write `data` as strict JSON (inf/nan as the strings "inf"/"-inf"/"nan")."""
    atomic.write_text(Path(path), json.dumps(_strict(data), indent=1, sort_keys=False) + "\n")


def _strict(value):
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.generic):
        return _strict(value.item())
    return value
