"""UpscalerJS itself (npm upscaler@1.0.0 UMD on @tensorflow/tfjs 4.11) in headless Chromium.

The check that matters to users: a srjs layers export dropped into `new Upscaler({model})`
upscales an image, tiled with patchSize/padding, with no edits to the package.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from srjs.errors import BadInput, CheckFailed
from srjs.runtime import env
from srjs.runtime.browser import BrowserSession, page_job

# The page loads tfjs 4.11's UMD bundle alone (no wasm package for 4.11); None = its default.
UPSCALERJS_BACKENDS = (None, "cpu", "webgl")


def run_upscalerjs(model_json: Path, image_uint8: np.ndarray, scale: int,
                   value_range: tuple[float, float], patch_size: int | None = None,
                   padding: int = 0, *, backend: str | None = None,
                   session: BrowserSession | None = None, timeout_s: float = 600,
                   channels: int = 3) -> np.ndarray:
    """Upscale `image_uint8` (HxWx3 uint8) with UpscalerJS and a layers model.json.

    value_range is the model's input and output range, (0, 1) or (0, 255). patch_size (pixels,
    None: whole image) and padding are UpscalerJS's execute() options. backend: 'cpu',
    'webgl', or None for TF.js's own choice (webgl when available). Returns UpscalerJS's
    output tensor as float32 (H*scale)x(W*scale)x3 in [0, 255]: clipped, not rounded.
    channels: the model's image channels; 1 and 4 run through js/harness/channels.mjs's
    adapters (luminance in / gray out; opaque alpha in / colour out), as srjs packages do.
    """
    model_json = Path(model_json)
    if model_json.is_dir():
        model_json = model_json / "model.json"
    if not model_json.is_file():
        raise BadInput(f"TF.js model {model_json} does not exist")
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise BadInput(f"image must be HxWx3 uint8, got {image.dtype} {image.shape}")
    if backend not in UPSCALERJS_BACKENDS:
        raise BadInput(f"backend '{backend}' is not one the UpscalerJS page loads "
                       f"({', '.join(b for b in UPSCALERJS_BACKENDS if b)})")
    env.require_js_deps("upscalerjs")
    with page_job(session, "srjs-upscalerjs-") as (session, tmp, mount):
        # A PNG URL is what a page hands UpscalerJS: it decodes it with an <img> element.
        Image.fromarray(image, "RGB").save(tmp / "image.png")
        files_url = mount(tmp, writable=True)
        job = {
            "model_url": mount(model_json.parent) + model_json.name,
            "scale": int(scale),
            "input_range": list(value_range),
            "output_range": list(value_range),
            "image_url": files_url + "image.png",
            "patch_size": patch_size,
            "padding": padding,
            "backend": backend,
            "out_url": files_url + "out.npy",
            "channels": int(channels),
        }
        reply = session.call("upscaler.html", "srjsUpscale", job, timeout_s)
        if not reply["ok"]:
            log = " | ".join(reply.get("log", [])[-5:])
            raise CheckFailed(f"UpscalerJS failed on {model_json}: {reply['error']}"
                              + (f" (page log: {log})" if log else ""))
        return np.load(tmp / "out.npy")


def _patch_1d(total: int, idx: int, patch_size: int, padding: int) -> tuple[int, int, int, int]:
    """UpscalerJS 1.0.0 get1DPatch: (window origin, kept origin in window, kept size, step)."""
    pre_origin = idx
    pre_padding = 0 if idx == 0 or patch_size == total else padding
    beyond = pre_origin + patch_size > total
    post_origin = patch_size - (total - pre_origin) if beyond else 0
    post_padding = 0 if beyond or patch_size == total else padding
    pre_padding_adjusted = 0 if beyond else pre_padding
    post_size = patch_size - (post_origin if beyond else 0)
    if beyond:
        pre_origin = total - patch_size
    pre_origin -= pre_padding_adjusted
    post_origin += pre_padding_adjusted
    post_size -= pre_padding_adjusted + post_padding
    step = total if patch_size > total else patch_size - pre_padding - post_padding
    return pre_origin, post_origin, post_size, step


def _patches_1d(total: int, patch_size: int, padding: int) -> list[tuple[int, int, int]]:
    patches, idx = [], 0
    while idx < total:
        pre, post, size, step = _patch_1d(total, idx, min(patch_size, total), padding)
        patches.append((pre, post, size))
        idx += step
    return patches


def upscale_like_upscalerjs(run: Callable[[np.ndarray], np.ndarray], image_uint8: np.ndarray,
                            scale: int, value_range: tuple[float, float],
                            patch_size: int | None = None, padding: int = 0) -> np.ndarray:
    """What UpscalerJS 1.0.0's execute(image, {patchSize, padding, output: 'tensor'}) computes,
    with `run(batch[1,h,w,3]) -> [1,h*s,w*s,3]` (any model runner) in place of TF.js.

    Its tiling (getPatchesFromImage: fixed-size windows, the last shifted back, kept parts cut
    after upscaling) is reproduced exactly, so this is the reference for run_upscalerjs: a
    padding smaller than the model's receptive field leaves seams, in both. Returns float32
    (H*scale)x(W*scale)x3 in [0, 255].
    """
    high = float(value_range[1])
    pixels = np.asarray(image_uint8, np.float32)[None]
    if high == 1:
        pixels = pixels / 255

    def finish(out: np.ndarray) -> np.ndarray:  # UpscalerJS's scaleOutput
        out = np.clip(out, 0, high)
        return out * 255 if high == 1 else out

    height, width = pixels.shape[1:3]
    if not patch_size:
        return finish(run(pixels)[0]).astype(np.float32)
    rows = []
    for y0, ky, kh in _patches_1d(height, patch_size, padding):
        wy = min(patch_size, height)
        row = []
        for x0, kx, kw in _patches_1d(width, patch_size, padding):
            wx = min(patch_size, width)
            out = run(pixels[:, y0:y0 + wy, x0:x0 + wx])[0]
            row.append(finish(out[ky * scale:(ky + kh) * scale, kx * scale:(kx + kw) * scale]))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)[:height * scale, :width * scale].astype(np.float32)
