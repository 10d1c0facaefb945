"""Reading and writing images and raw .npy arrays for `srjs upscale`."""
from __future__ import annotations

import os
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


# PIL's own bomb threshold (2 * Image.MAX_IMAGE_PIXELS): a 30000x30000 PNG is a few MB on
# disk but 2.7 GB decoded, and a tiled upscale of it needs 16x that. Raising it is the user's call.
MAX_PIXELS_ENV = "SRJS_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 178_956_970


def max_pixels() -> int:
    """The largest width*height srjs decodes (SRJS_MAX_IMAGE_PIXELS overrides)."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{MAX_PIXELS_ENV}={raw!r} is not an integer number of pixels") from None
    if value <= 0:
        raise BadInput(f"{MAX_PIXELS_ENV}={raw!r} must be positive")
    return value


def _read_pil(path: Path, mode: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels()
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # srjs checks the declared size itself, against its own limit
    try:
        with Image.open(path) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > limit:
                raise BadInput(f"'{path}' is {width}x{height} = {width * height} pixels, over the limit of "
                               f"{limit}; raise it with {MAX_PIXELS_ENV}=N if you trust the file")
            return np.asarray(image.convert(mode))
    except (UnidentifiedImageError, OSError) as err:
        raise BadInput(f"cannot read image '{path}': {err}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_rgb8(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 (grey replicated, alpha dropped)."""
    return _read_pil(path, "RGB")


def read_alpha8(path: Path) -> np.ndarray | None:
    """The alpha channel of an image file as HxW uint8, or None when it has none (or is .npy)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    from PIL import Image

    with Image.open(path) as image:  # header only; read_rgb8 already checked size and format
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return _read_pil(path, "RGBA")[..., 3] if has_alpha else None


def upscale_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Alpha (HxW uint8) resized bicubically to height x width, as UpscalerJS users expect."""
    from PIL import Image

    return np.asarray(Image.fromarray(alpha, "L").resize((width, height), Image.BICUBIC))


ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff"}


def write_output(path: Path, array: np.ndarray, value_max: float, alpha: np.ndarray | None = None) -> None:
    """Write HxWx3 model output: raw float32 to .npy (unclipped), else rounded 8-bit RGB.

    alpha: HxW uint8 at the output size; written as RGBA where the format holds alpha.
    """
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
            rgb = to_rgb8(array, value_max)
            if alpha is not None and path.suffix.lower() in ALPHA_SUFFIXES:
                Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp)
            else:
                Image.fromarray(rgb).save(tmp)


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
