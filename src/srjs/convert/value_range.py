"""Which value range a model works in, when nothing authoritative says.

idealo ISR trains RDN/RRDN on [0, 1] images, while UpscalerJS's own RDN packages were trained
on [0, 255]; the weights alone do not tell. A wrong range gives garbage, not a slightly worse
image, so one probe settles it: upscale a bicubic-downscaled photo crop in both ranges and
keep the range whose output is closer to the original (Y-PSNR).
"""
from __future__ import annotations

import numpy as np

RANGES = ((0, 1), (0, 255))


def probe_value_range(model, scale: int, size: int = 48) -> tuple[tuple[int, int], dict]:
    """Return the better range and the Y-PSNR (dB) measured for each candidate."""
    from skimage import data

    from srjs.evaluate.metrics import psnr_y, to_uint8
    from srjs.evaluate.resize import bicubic_downsample

    hr = data.astronaut()[100:100 + size * scale, 180:180 + size * scale]  # face and flag: texture
    lr = to_uint8(bicubic_downsample(hr, scale)).astype(np.float32)
    scores = {}
    for low, high in RANGES:
        sr = np.asarray(model(lr[None] * (high / 255.0), training=False))[0] * (255.0 / high)
        scores[f"{low}-{high}"] = round(float(psnr_y(np.clip(sr, 0, 255), hr, crop=scale)), 2)
    best = max(RANGES, key=lambda r: scores[f"{r[0]}-{r[1]}"])
    return best, scores
