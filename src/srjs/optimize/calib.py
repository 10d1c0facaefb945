"""Calibration and held-out image crops for optimize: LR inputs with their HR, split by image.

Decisions (which range, which dtype) are made on the calibration crops; the numbers a
variant reports are re-measured on crops of *other* images, so a budget is checked on data
the search never saw. LR is the HR crop's MATLAB-style bicubic downsampling, as evaluate does.
Grayscale and RGBA models get their channels of it (`image_channels`: luminance, opaque alpha)
and their outputs are scored as RGB, as evaluate scores them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srjs import image_channels
from srjs.errors import BadInput
from srjs.evaluate import datasets, metrics
from srjs.evaluate.run import center_crop, load_dataset, make_lr

CALIB_LR = 24  # LR side of a calibration crop, px: small, since the search runs the net often
HELDOUT_LR = 48  # LR side of a held-out crop, px


@dataclass
class Crops:
    """LR inputs (float32 N x h x w x channels in the model's value range) and their uint8 RGB HR crops."""

    names: list[str]
    lr: np.ndarray
    hr: list[np.ndarray]
    channels: int = 3  # the model's image channels (1 grayscale, 3 RGB, 4 RGBA)


def _crops(images, scale: int, lr_side: int, value_max: float, per_image: int, channels: int = 3) -> Crops:
    names, lrs, hrs = [], [], []
    side = lr_side * scale
    for image in images:
        hr_full = image.hr
        if min(hr_full.shape[:2]) < side:
            raise BadInput(f"calibration image '{image.name}' is smaller than {side} px")
        centre, top, left = center_crop(hr_full, side, multiple=scale)
        offsets = [(top, left), (top // 2 // scale * scale, left // 2 // scale * scale)][:per_image]
        for k, (y, x) in enumerate(offsets):
            hr = np.ascontiguousarray(hr_full[y:y + side, x:x + side]) if k else centre
            names.append(f"{image.name}#{k}")
            hrs.append(hr)
            lr = make_lr(hr, scale).astype(np.float32) * np.float32(value_max / 255.0)
            lrs.append(image_channels.to_model(lr, None, channels, value_max))
    return Crops(names, np.stack(lrs), hrs, channels)


def split_images(source: str) -> tuple[list, list]:
    """(calibration, held-out) images of 'builtin' or a folder, for every optimize step.

    The first half of the images (at least one) calibrates and fine-tunes, the rest are held
    out for the numbers a variant reports; a folder with a single image serves both.
    """
    try:
        images = load_dataset(source or "builtin")
    except BadInput as err:
        raise BadInput(f"--calib: {err.format_message()}") from None
    if not images:
        raise BadInput(f"--calib '{source}' holds no images")
    return datasets.split_half(images)


def calibration_sets(source: str, scale: int, value_max: float, channels: int = 3) -> tuple[Crops, Crops]:
    """(calibration, held-out) crops from `split_images(source)`, in the model's `channels`."""
    calib, held = split_images(source)
    return (_crops(calib, scale, CALIB_LR, value_max, per_image=2, channels=channels),
            _crops(held, scale, HELDOUT_LR, value_max, per_image=1, channels=channels))


def heldout_crops(source: str, scale: int, value_max: float, lr_side: int = HELDOUT_LR,
                  channels: int = 3) -> Crops:
    """Centre crops (LR side `lr_side` px) of the held-out images of `split_images(source)`."""
    return _crops(split_images(source)[1], scale, lr_side, value_max, per_image=1, channels=channels)


def to_uint8(output: np.ndarray, value_max: float) -> np.ndarray:
    """A model output batch in its value range -> uint8 images, by the one rounding rule."""
    return metrics.to_uint8(np.asarray(output, dtype=np.float64) * (255.0 / value_max))


@dataclass
class Quality:
    """Mean Y-PSNR (dB) of a model on held-out crops: vs HR, and vs a reference model's output."""

    psnr_y: float
    fidelity_psnr_y: float | None = None


def quality(outputs: np.ndarray, crops: Crops, scale: int, value_max: float,
            reference: np.ndarray | None = None) -> Quality:
    """Score an output batch: Y-PSNR vs HR and (given the reference's outputs) fidelity."""
    mine = to_uint8(image_channels.from_model(outputs, crops.channels)[0], value_max)
    psnr = float(np.mean([metrics.psnr_y(m, hr, scale) for m, hr in zip(mine, crops.hr)]))
    fidelity = None
    if reference is not None:
        theirs = to_uint8(image_channels.from_model(reference, crops.channels)[0], value_max)
        values = [metrics.psnr_y(m, t, scale) for m, t in zip(mine, theirs)]
        fidelity = float(np.mean(np.minimum(values, 100.0)))  # identical crops count as 100 dB
    return Quality(psnr, fidelity)
