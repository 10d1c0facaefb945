"""MATLAB-compatible bicubic `imresize`, the resize the SR literature makes its LR images with.

A numpy port of MATLAB's `imresize(A, scale)` / `imresize(A, [h w])` with the default 'bicubic'
method, following the same contributions/index computation as the python ports in
xinntao/BasicSR (`basicsr/utils/matlab_functions.py`) and fatheral/matlab_imresize:

- Keys cubic kernel with a = -0.5, support 4 input pixels;
- when shrinking (scale < 1) the kernel is widened by 1/scale and scaled by `scale`
  (MATLAB's antialiasing), so x1/4 averages over 16 input pixels per axis;
- output pixel k (1-based) samples input position u = k/scale + (1 - 1/scale)/2, so pixel
  centres line up ("0.5 maps to 0.5");
- outside the image the input is mirrored with the edge pixel repeated (MATLAB's
  `aux = [1:n, n:-1:1]` indexing);
- each row of weights is normalised to sum 1, axes are resized one at a time, the axis
  with the smaller scale first.

Pillow's BICUBIC has the same kernel and antialiasing (on float images it agrees to 1e-5 away
from the borders) but renormalises the kernel at the borders instead of mirroring (up to 16
levels apart there on noise); skimage.transform.resize is spline interpolation with a Gaussian
antialias filter. Neither makes the LR images the published models were trained and scored on.

Difference from MATLAB on purpose: MATLAB returns uint8 for uint8 input and rounds after each
axis; this always returns unrounded float64 (round once with `metrics.to_uint8`).
"""
from __future__ import annotations

import math

import numpy as np

from srjs.errors import BadInput

KERNEL_WIDTH = 4.0  # Keys cubic support, in input pixels at scale >= 1


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's `cubic`), support |x| <= 2."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def contributions(in_length: int, out_length: int, scale: float,
                  antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based input indices, both (out_length, taps), for one axis.

    Row k holds the taps of output pixel k; indices are already mirrored into [0, in_length).
    Columns whose weight is zero for every output pixel are dropped, as MATLAB does.
    """
    if scale < 1 and antialias:
        width = KERNEL_WIDTH / scale

        def kernel(d):
            return scale * cubic(scale * d)
    else:
        width = KERNEL_WIDTH
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based, may be out of range
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, mirror.size)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used], indices[:, used]


def _resize_axis(img: np.ndarray, axis: int, weights: np.ndarray, indices: np.ndarray) -> np.ndarray:
    src = np.moveaxis(img, axis, 0)
    out = np.zeros((weights.shape[0],) + src.shape[1:], dtype=np.float64)
    bcast = (-1,) + (1,) * (src.ndim - 1)
    # One tap at a time keeps memory at one output-sized buffer instead of taps times that.
    for t in range(weights.shape[1]):
        out += weights[:, t].reshape(bcast) * src[indices[:, t]]
    return np.moveaxis(out, 0, axis)


def _round_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB's double -> uint8 saturates and rounds half away from zero.
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def _resize(img: np.ndarray, scales: tuple[float, float], out_hw: tuple[int, int],
            uint8_passes: bool = False) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise BadInput(f"imresize needs an HxW or HxWxC image, got shape {arr.shape}")
    if min(out_hw) < 1:
        raise BadInput(f"imresize output shape {out_hw} is empty (input {arr.shape[:2]})")
    out = arr.astype(np.float64)
    # MATLAB resizes the axis with the smaller scale first (less work when shrinking).
    for axis in np.argsort(scales, kind="stable"):
        axis = int(axis)
        w, idx = contributions(arr.shape[axis], out_hw[axis], scales[axis])
        out = _resize_axis(out, axis, w, idx)
        if uint8_passes:
            out = _round_uint8(out)
    return out


def _target(shape: tuple[int, ...], scale: float | None,
            output_shape: tuple[int, int] | None) -> tuple[tuple[float, float], tuple[int, int]]:
    if (scale is None) == (output_shape is None):
        raise BadInput("imresize takes exactly one of scale and output_shape")
    h, w = shape[:2]
    if scale is not None:
        if not scale > 0:
            raise BadInput(f"imresize scale must be positive, got {scale}")
        return (float(scale), float(scale)), (math.ceil(h * scale), math.ceil(w * scale))
    oh, ow = (int(v) for v in output_shape)
    return (oh / h, ow / w), (oh, ow)


def imresize(img: np.ndarray, scale: float | None = None,
             output_shape: tuple[int, int] | None = None) -> np.ndarray:
    """MATLAB `imresize(img, scale)` or `imresize(img, [h w])`, bicubic, antialiased.

    img: HxW or HxWxC, any numeric dtype, values in any range (no clipping is done).
    scale: one factor for both axes; the output is ceil(size * scale) like MATLAB, and the
    weights use `scale` itself (not output/input). output_shape: (h, w) instead of scale; the
    per-axis scale is then h/H and w/W. Give exactly one. Returns float64, unrounded,
    unclipped (bicubic over- and undershoots near edges).
    """
    return _resize(img, *_target(np.shape(img), scale, output_shape))


def imresize_uint8(img: np.ndarray, scale: float | None = None,
                   output_shape: tuple[int, int] | None = None) -> np.ndarray:
    """MATLAB `imresize` on a uint8 image: uint8 out, clipped and rounded after each axis.

    Use this to reproduce LR sets that were made in MATLAB from 8-bit HR images (byte-exact);
    arguments as `imresize`.
    """
    return _resize(img, *_target(np.shape(img), scale, output_shape), uint8_passes=True)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of `scale` (pixels)."""
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise BadInput(f"image {h}x{w} is smaller than the scale {scale}")
    return img[: h - h % scale, : w - w % scale]


def bicubic_downsample(hr: np.ndarray, scale: int, uint8: bool = False) -> np.ndarray:
    """LR image the way SR benchmarks make it: modcrop(hr, scale), then MATLAB imresize(., 1/scale).

    hr: HxWx3 (or HxW), values in [0, 255] or any range. Returns float64 of shape
    (H//scale, W//scale[, C]), unrounded and unclipped. With uint8=True returns what MATLAB's
    `imresize(uint8_hr, 1/scale)` returns (uint8, rounded after each axis), the usual way
    benchmark LR images were written to disk.
    """
    hr = modcrop(hr, scale)
    h, w = hr.shape[:2]
    # The size is given as well as the scale so 1/3 in floating point cannot ceil to one more.
    return _resize(hr, (1.0 / scale, 1.0 / scale), (h // scale, w // scale), uint8_passes=uint8)


def bicubic_upsample(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: MATLAB imresize(lr, scale). Float64, unrounded, unclipped."""
    return imresize(lr, scale=scale)
