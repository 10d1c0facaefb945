"""`srjs upscale`: one image through a model dir, whole or tiled, in Python or TF.js."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from srjs import imageio, modeldir
from srjs.runtime import kinds
from srjs.runtime.python import keras_runner
from srjs.errors import CheckFailed



def upscale_array(model_dir: Path, image: np.ndarray, *, tile: int | None = None, pad: int | None = None,
                  runtime: str = "python", progress: bool = False) -> np.ndarray:
    """Upscale HxWx3 float32 (model's value range) with the model dir; returns unclipped float32.

    tile: patch size in input pixels (None: whole image). pad: context pixels per patch side;
    None takes the seam-free padding recorded by `srjs evaluate`, or measures it on this image
    (with the Python model: seams are a property of the network, not of the runtime).
    runtime 'node' runs the shipped TF.js graph model (wasm) on every tile in one Node process.
    """
    kinds.get(runtime, "upscale")
    manifest = modeldir.read_manifest(model_dir)
    python_run = keras_runner(modeldir.load_keras(model_dir)) if runtime == "python" or (
        tile is not None and pad is None and "seam_free_padding" not in manifest.results) else None
    if tile is not None and pad is None:
        pad = manifest.results.get("seam_free_padding")
        if pad is None:
            pad = measured_seam_free_padding(python_run, image, manifest.scale, tile, manifest.value_max)

    from srjs.evaluate.tiling import plan_tiles, upscale_tiled

    if runtime == "node":
        windows = ([image[t.window()] for t in plan_tiles(*image.shape[:2], tile, pad)]
                   if tile is not None else [image])
        outputs = iter(_run_node(Path(model_dir), windows))
        run = lambda batch: next(outputs)  # noqa: E731  (tiles come back in plan order)
    else:
        run = python_run
    if tile is None:
        return run(image[None])[0]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="tiles", unit="tile", leave=False, disable=None)  # None: off unless a terminal
    try:
        return upscale_tiled(run, image, manifest.scale, tile, pad, progress=bar)
    finally:
        if bar is not None:
            bar.close()


def measured_seam_free_padding(run, image: np.ndarray, scale: int, tile: int, value_max: float) -> int:
    """Smallest padding at which tiling this image's centre equals upscaling it whole (1/255)."""
    from srjs.evaluate.tiling import seam_free_padding

    side = min(image.shape[0], image.shape[1], 3 * tile)
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    crop = image[top:top + side, left:left + side]
    try:
        return seam_free_padding(run, crop, scale, min(tile, max(4, side // 3)), value_max=value_max)
    except CheckFailed:
        return tile // 2  # no padding up to half a tile is seam-free: take the most context


def _run_node(model_dir: Path, windows: list[np.ndarray]) -> list[np.ndarray]:
    from srjs.runtime import run_tfjs

    model_json = model_dir / modeldir.TFJS_GRAPH_DIR / "model.json"
    batches = [np.ascontiguousarray(w[None], dtype=np.float32) for w in windows]
    (result,) = run_tfjs([(model_json, "graph")], batches, runtime="node", backends=("wasm",), warm_runs=0)
    if result.error:
        raise CheckFailed(f"TF.js (Node, wasm) failed on {model_json}: {result.error}")
    return result.outputs


def upscale_file(model_dir: Path, image_path: Path, out_path: Path, **options) -> tuple[int, int]:
    """Upscale an image or .npy file to `out_path`; returns the output (height, width)."""
    manifest = modeldir.read_manifest(model_dir)
    image = imageio.read_input(image_path, manifest.value_max)
    alpha = imageio.read_alpha8(image_path)
    output = upscale_array(model_dir, image, **options)
    if alpha is not None:  # the network sees RGB only; transparency is resized alongside it
        alpha = imageio.upscale_alpha(alpha, output.shape[0], output.shape[1])
    imageio.write_output(out_path, output, manifest.value_max, alpha=alpha)
    return output.shape[0], output.shape[1]
