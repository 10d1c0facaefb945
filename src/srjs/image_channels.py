"""RGB images to and from a model's own channels: grayscale (1), RGB (3) or RGBA (4).

srjs reads every image as RGB plus an optional alpha. A grayscale model (manga, line art) gets
the image's luminance, ITU-R BT.601 luma as PIL's 'L' and OpenCV's gray conversion compute it
(the way such training sets are made), and its output is shown as a gray RGB image. An RGBA
model gets the alpha as its 4th channel in the model's value range (opaque where the image has
none) and its output's 4th channel becomes the image's alpha. The package's UpscalerJS
definition does the same in its preprocess / postprocess (`package.definitions`).
"""
from __future__ import annotations

import numpy as np

from srjs.errors import BadInput

LUMA = (0.299, 0.587, 0.114)  # BT.601, as PIL Image.convert('L') and cv2.COLOR_RGB2GRAY
CHANNELS = {1: "grayscale", 3: "RGB", 4: "RGBA"}


def to_model(rgb: np.ndarray, alpha: np.ndarray | None, channels: int, value_max: float) -> np.ndarray:
    """[..., H, W, 3] float32 RGB in [0, value_max] (+ [..., H, W] uint8 alpha or None) as the
    model's [..., H, W, channels] float32 input."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if channels == 3:
        return rgb
    if channels == 1:
        return (rgb @ np.asarray(LUMA, np.float32))[..., None]
    if channels == 4:
        a = (np.full(rgb.shape[:-1], value_max, np.float32) if alpha is None
             else np.asarray(alpha, np.float32) * np.float32(value_max / 255.0))
        return np.concatenate([rgb, a[..., None]], axis=-1)
    raise BadInput(f"models with {channels} image channels are not supported (1, 3 or 4)")


def from_model(output: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB [..., H, W, 3], alpha [..., H, W] in the model's range or None) of a model output."""
    output = np.asarray(output, dtype=np.float32)
    check(output, channels, "the model's output")
    if channels == 1:
        return np.repeat(output, 3, axis=-1), None
    if channels == 4:
        return output[..., :3], output[..., 3]
    return output, None


def check(array: np.ndarray, channels: int, what: str) -> None:
    """BadInput unless `array`'s last axis holds the model's `channels`."""
    if np.shape(array)[-1] != channels:
        raise BadInput(f"{what} has {np.shape(array)[-1]} channels; this model takes {channels} "
                       f"({CHANNELS.get(channels, '?')})")


def rgb_runner(run, channels: int, value_max: float):
    """`run(batch of the model's channels)` as a run on RGB batches [N, H, W, 3] -> RGB.

    For evaluation and calibration, which score RGB photos: a grayscale model's output is
    compared as gray, an RGBA model runs on opaque images and its colour is scored.
    """
    if channels == 3:
        return run

    def rgb_run(batch: np.ndarray) -> np.ndarray:
        return from_model(run(to_model(batch, None, channels, value_max)), channels)[0]

    return rgb_run
