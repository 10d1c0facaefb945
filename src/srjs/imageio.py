"""Reading and writing images and raw .npy arrays for `srjs upscale`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from srjs import atomic
from srjs.errors import BadInput

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def read_input(path: Path, value_max: float) -> np.ndarray:
    """HxWx3 float32 in the model's value range. `.npy` files are taken as they are."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"'{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise BadInput(f"'{path}' is not a plain .npy array: {err}") from None
        if array.ndim != 3 or array.shape[-1] != 3:
            raise BadInput(f"'{path}' has shape {array.shape}; expected HxWx3")
        return array.astype(np.float32)
    if suffix not in IMAGE_SUFFIXES:
        raise BadInput(f"'{path}': unsupported image type '{suffix}' (png, jpg, webp, bmp, tiff, npy)")
    return read_rgb8(path).astype(np.float32) * (value_max / 255.0)


def read_rgb8(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 (grey replicated, alpha dropped)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise BadInput(f"cannot read image '{path}': {err}") from None


def write_output(path: Path, array: np.ndarray, value_max: float) -> None:
    """Write HxWx3 model output: raw float32 to .npy (unclipped), else rounded 8-bit RGB."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() not in IMAGE_SUFFIXES | {".npy"}:
        raise BadInput(f"'{path}': unsupported output type (png, jpg, webp, bmp, tiff, npy)")
    with atomic.atomic_file(path) as tmp:
        if path.suffix.lower() == ".npy":
            with open(tmp, "wb") as handle:  # np.save(path) would append .npy to the temp name
                np.save(handle, array.astype(np.float32))
        else:
            Image.fromarray(to_rgb8(array, value_max)).save(tmp)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round to the nearest integer (halves up, like MATLAB's uint8()) and clip to [0, 255].

    The one 8-bit rounding rule: images srjs writes and images metrics score agree. uint8
    input is returned unchanged. NaN or inf values raise BadInput: they have no 8-bit image.
    """
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise BadInput("image has NaN or infinite values")
    return np.floor(np.clip(arr, 0.0, 255.0) + 0.5).astype(np.uint8)


def to_rgb8(array: np.ndarray, value_max: float) -> np.ndarray:
    """Model output in [0, value_max] -> 8-bit image, by `to_uint8`'s rule."""
    return to_uint8(np.asarray(array, dtype=np.float64) * (255.0 / value_max))
