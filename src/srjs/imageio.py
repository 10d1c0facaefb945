"""Reading and writing images and raw .npy arrays for `srjs upscale`."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from srjs import atomic
from srjs.errors import BadInput

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def read_input(path: Path, value_max: float) -> np.ndarray:
    """HxWx3 float32 in the model's value range. `.npy` files are taken as they are."""
    return read_image(path, value_max)[0]


def read_image(path: Path, value_max: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(HxWx3 float32 in [0, value_max], HxW uint8 alpha or None) of an image or `.npy` file.

    8- and 16-bit samples are scaled by value_max / 255 or / 65535; the EXIF orientation is
    applied. `.npy` files are taken as they are (already in the model's range, no alpha).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"'{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_npy(path), None
    if suffix not in IMAGE_SUFFIXES:
        raise BadInput(f"'{path}': unsupported image type '{suffix}' (png, jpg, webp, bmp, tiff, npy)")
    from srjs.image_decode import decode

    rgb, alpha, peak = decode(path, max_pixels(), f"; raise it with {MAX_PIXELS_ENV}=N if you trust the file")
    image = rgb.astype(np.float32) * (value_max / peak)
    return image, None if alpha is None else to_uint8(alpha * (255.0 / peak))


# .npy inputs: real numbers only (no strings, objects, complex, dates or records)
NPY_KINDS = {"b": "bool", "i": "signed int", "u": "unsigned int", "f": "float"}


def read_npy(path: Path) -> np.ndarray:
    """An HxWxC .npy array (C = 1, 3 or 4) as float32, checked from its header before the data is read."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as handle:
            version = npy.read_magic(handle)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"format version {version[0]}.{version[1]} (srjs reads 1.0 and 2.0)")
            reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = reader(handle)
            offset = handle.tell()
    except Exception as err:  # noqa: BLE001 - numpy's header parser (a tokenizer + literal_eval) raises
        # ValueError, EOFError (empty file: click would report it as Ctrl-D), TokenError, ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BadInput(f"'{path}' is not a plain .npy array: {first[:200]}") from None
    if dtype.kind not in NPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise BadInput(f"'{path}' holds {dtype} values; srjs reads {', '.join(NPY_KINDS.values())} arrays")
    if len(shape) != 3 or shape[-1] not in (1, 3, 4) or min(shape) < 1:
        raise BadInput(f"'{path}' has shape {tuple(shape)}; expected HxWxC with H, W >= 1 and C the "
                       "model's channels (1, 3 or 4)")
    if shape[0] * shape[1] > max_pixels():
        raise BadInput(f"'{path}' is {shape[1]}x{shape[0]} = {shape[0] * shape[1]} pixels, over the limit of "
                       f"{max_pixels()}; raise it with {MAX_PIXELS_ENV}=N if you trust the file")
    expected = offset + math.prod(shape) * dtype.itemsize
    if path.stat().st_size != expected:
        raise BadInput(f"'{path}' is {path.stat().st_size} bytes; its header says {expected} (truncated or padded)")
    array = np.load(path, allow_pickle=False).astype(np.float32)
    if not np.isfinite(array).all():
        raise BadInput(f"'{path}' holds NaN or infinite values (or values past float32's range)")
    return array


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


def read_rgb8(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 (grey replicated, alpha dropped, 16-bit rounded to 8)."""
    return to_uint8(read_image(path, 255.0)[0])


def read_alpha8(path: Path) -> np.ndarray | None:
    """The alpha channel of an image file as HxW uint8, or None when it has none (or is .npy)."""
    return read_image(path, 1.0)[1]


def upscale_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Alpha (HxW uint8) resized bicubically to height x width, as UpscalerJS users expect."""
    from PIL import Image

    return np.asarray(Image.fromarray(alpha, "L").resize((width, height), Image.BICUBIC))


ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff"}


# The largest side each output format stores; Pillow's encoders refuse bigger images only
# when saving, after the whole upscale ran.
MAX_OUTPUT_SIDE = {".webp": 16383, ".jpg": 65500, ".jpeg": 65500}


def check_output_size(path: Path, height: int, width: int) -> None:
    """BadInput when `path`'s format cannot hold a height x width image (call before upscaling)."""
    suffix = Path(path).suffix.lower()
    limit = MAX_OUTPUT_SIDE.get(suffix)
    if limit is not None and max(height, width) > limit:
        raise BadInput(f"'{path}': the output would be {width}x{height} px, but {suffix} holds at most "
                       f"{limit} px a side; write .png or .tiff")


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
