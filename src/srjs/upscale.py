"""`srjs upscale`: one image through a model dir, whole or tiled, in Python or TF.js."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from srjs import image_channels, imageio, modeldir
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
    return _upscale(model_dir, image, tile=tile, pad=pad, runtime=runtime, progress=progress)[0]


def _upscale(model_dir: Path, image: np.ndarray, *, tile: int | None, pad: int | None, runtime: str,
             progress: bool) -> tuple[np.ndarray, int | None]:
    """upscale_array's work; also returns the padding used (None for a whole image)."""
    kinds.get(runtime, "upscale")
    manifest = modeldir.read_manifest(model_dir)
    model = modeldir.load_keras(model_dir)  # also sizes the memory check, whatever the runtime
    python_run = keras_runner(model) if runtime == "python" or (
        tile is not None and pad is None and "seam_free_padding" not in manifest.results) else None
    if tile is not None and pad is None:
        pad = manifest.results.get("seam_free_padding")
    from srjs.memory_budget import check_fits

    check_fits(model, image.shape[0], image.shape[1], manifest.scale, tile, pad)  # before anything runs
    if tile is not None and pad is None:
        if progress:
            click.echo(f"measuring the seam-free padding for tile {tile} (`srjs evaluate --record` "
                       "saves it in the model dir; --pad N skips this)", err=True)
        pad = measured_seam_free_padding(python_run, image, manifest.scale, tile, manifest.value_max)
        if progress:
            click.echo(f"padding: {pad} px per tile side", err=True)

    from srjs.evaluate.tiling import plan_tiles, upscale_tiled

    if runtime == "node":
        windows = ([image[t.window()] for t in plan_tiles(*image.shape[:2], tile, pad)]
                   if tile is not None else [image])
        outputs = iter(_run_node(Path(model_dir), windows))
        run = lambda batch: next(outputs)  # noqa: E731  (tiles come back in plan order)
    else:
        run = python_run
    if tile is None:
        if progress:
            click.echo(f"upscaling {image.shape[1]}x{image.shape[0]} px whole (--tile N tiles it)", err=True)
        return run(image[None])[0], None
    bar = None
    if progress:
        from tqdm import tqdm

        count = len(plan_tiles(*image.shape[:2], tile, pad))
        click.echo(f"upscaling {image.shape[1]}x{image.shape[0]} px in {count} tiles of {tile} px "
                   f"(pad {pad})", err=True)

        bar = tqdm(desc="tiles", unit="tile", leave=False, disable=None)  # None: off unless a terminal
    try:
        return upscale_tiled(run, image, manifest.scale, tile, pad, progress=bar), pad
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


@dataclass
class UpscaleResult:
    """What `srjs upscale` did: output size in px, tile and pad in input px, wall seconds."""

    model_dir: str
    image: str
    out: str
    width: int
    height: int
    tile: int | None  # None: the whole image in one call
    pad: int | None  # context per tile side actually used
    runtime: str
    seconds: float

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {"schema": "srjs.upscale/1", **asdict(self)}


def check_output_path(out_path: Path) -> None:
    """BadInput for an output type srjs cannot write, before anything is loaded."""
    from srjs.errors import BadInput

    suffix = Path(out_path).suffix.lower()
    if suffix not in imageio.IMAGE_SUFFIXES | {".npy"}:
        raise BadInput(f"'{out_path}': cannot write '{suffix or 'no extension'}' "
                       "(png, jpg, jpeg, webp, bmp, tif, tiff, npy)")


def upscale_file(model_dir: Path, image_path: Path, out_path: Path, **options) -> tuple[int, int]:
    """Upscale an image or .npy file to `out_path`; returns the output (height, width)."""
    result = run_upscale(model_dir, image_path, out_path, **options)
    return result.height, result.width


def run_upscale(model_dir: Path, image_path: Path, out_path: Path, *, tile: int | None = None,
                pad: int | None = None, runtime: str = "python", progress: bool = False) -> UpscaleResult:
    """Upscale an image or .npy file to `out_path` (see upscale_array for tile/pad/runtime)."""
    check_output_path(out_path)
    start = time.perf_counter()
    manifest = modeldir.read_manifest(model_dir)
    image, alpha = imageio.read_image(image_path, manifest.value_max)
    imageio.check_output_size(out_path, image.shape[0] * manifest.scale, image.shape[1] * manifest.scale)
    if Path(image_path).suffix.lower() == ".npy":  # taken as it is: the model's own channels
        image_channels.check(image, manifest.channels, f"'{image_path}'")
    else:  # grayscale models get the luminance, RGBA models the alpha too
        image = image_channels.to_model(image, alpha, manifest.channels, manifest.value_max)
    output, used_pad = _upscale(model_dir, image, tile=tile, pad=pad, runtime=runtime, progress=progress)
    model_alpha = None
    if Path(out_path).suffix.lower() != ".npy":  # .npy keeps the raw output, every channel
        output, model_alpha = image_channels.from_model(output, manifest.channels)
    if model_alpha is not None:  # an RGBA model upscaled the transparency itself
        alpha = imageio.to_uint8(model_alpha * (255.0 / manifest.value_max))
    elif alpha is not None:  # the network sees colour only; transparency is resized alongside it
        alpha = imageio.upscale_alpha(alpha, output.shape[0], output.shape[1])
    imageio.write_output(out_path, output, manifest.value_max, alpha=alpha)
    return UpscaleResult(str(model_dir), str(image_path), str(out_path), width=int(output.shape[1]),
                         height=int(output.shape[0]), tile=tile, pad=used_pad, runtime=runtime,
                         seconds=round(time.perf_counter() - start, 3))
