"""`srjs upscale`: one image through a model dir, whole or tiled, in Python or TF.js."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from srjs import imageio, modeldir
from srjs.errors import BadInput

RUNTIMES = ("python", "node")


def keras_runner(model):
    """`run(batch[1,h,w,3]) -> [1,h*s,w*s,3]` float32 with a Keras model."""

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch, training=False), dtype=np.float32)

    return run


def upscale_array(model_dir: Path, image: np.ndarray, *, tile: int | None = None, pad: int = 0,
                  runtime: str = "python", progress: bool = False) -> np.ndarray:
    """Upscale HxWx3 float32 (model's value range) with the model dir; returns unclipped float32."""
    manifest = modeldir.read_manifest(model_dir)
    if runtime == "python":
        run = keras_runner(modeldir.load_keras(model_dir))
    elif runtime == "node":
        run = _node_runner(Path(model_dir))
    else:
        raise BadInput(f"unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})")
    if tile is None:
        return run(image[None])[0]
    from srjs.evaluate.tiling import upscale_tiled

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="tiles", unit="tile", leave=False)
    try:
        return upscale_tiled(run, image, manifest.scale, tile, pad, progress=bar)
    finally:
        if bar is not None:
            bar.close()


def _node_runner(model_dir: Path):
    from srjs.runtime import run_tfjs

    model_json = model_dir / modeldir.TFJS_GRAPH_DIR / "model.json"

    def run(batch: np.ndarray) -> np.ndarray:
        (result,) = run_tfjs([(model_json, "graph")], [batch], runtime="node", backends=("wasm",), warm_runs=0)
        if result.error:
            raise BadInput(f"TF.js failed: {result.error}")
        return result.outputs[0]

    return run


def upscale_file(model_dir: Path, image_path: Path, out_path: Path, **options) -> tuple[int, int]:
    """Upscale an image or .npy file to `out_path`; returns the output (height, width)."""
    manifest = modeldir.read_manifest(model_dir)
    image = imageio.read_input(image_path, manifest.value_max)
    output = upscale_array(model_dir, image, **options)
    imageio.write_output(out_path, output, manifest.value_max)
    return output.shape[0], output.shape[1]
