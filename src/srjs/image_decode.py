"""Decoding untrusted image files into [0, 1] arrays: bit depth, EXIF orientation, alpha.

Pillow decodes; this module decides what its modes mean. Only listed modes are accepted:
8-bit ones (PIL converts them to RGB), 16-bit grey (`I;16*`, scaled by 1/65535), and 16-bit
RGB(A) PNG/TIFF. Pillow has no 16-bit RGB mode and keeps only each sample's high byte, so
those files are decoded twice, the second time with the byte order of the samples swapped
(Pillow's own unfiltering and decompression, then its unpacker takes the low byte): high *
256 + low is the exact 16-bit value. 32-bit and float images are refused (their range is not
known). The EXIF orientation is applied (what a viewer shows). Any decoder error (truncated
file, oversized text chunk, unknown format) is BadInput naming the file; the pixel count is
checked from the header before anything is decoded.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from srjs.errors import BadInput

EIGHT_BIT_MODES = {"1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "LA", "La", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
GREY16_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_DECODERS_16 = {"zip", "raw", "libtiff"}  # PNG, plain TIFF, compressed TIFF: all unpack rawmodes
_NATIVE = "L" if sys.byteorder == "little" else "B"

# EXIF orientation (tag 0x0112) -> the numpy view that shows the image upright (PIL's exif_transpose)
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def decode(path: Path, max_pixels: int, env_hint: str = "") -> tuple[np.ndarray, np.ndarray | None, int]:
    """(HxWx3 RGB, HxW alpha or None, peak) of an image file: uint8 samples with peak 255, or
    uint16 with peak 65535 (16-bit files). Divide by peak for [0, 1].

    max_pixels: the largest width*height decoded; env_hint names how to raise it.
    """
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # checked here from the header, against srjs's own limit
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise BadInput(f"'{path}' is {width}x{height} = {width * height} pixels, over the limit of "
                               f"{max_pixels}{env_hint}")
            sixteen = image.mode in ("RGB", "RGBA") and _sixteen_bit_rawmodes(image) is not None
            orientation = image.getexif().get(0x0112, 1)  # may decode the image (PNG): tiles read first
            rgb, alpha, peak = _samples(path, image, sixteen)
    except BadInput:
        raise
    except Exception as err:  # noqa: BLE001 - Pillow's decoders raise many types on hostile bytes
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BadInput(f"cannot read image '{path}': {first[:200]}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise BadInput(f"'{path}' has no pixels")
    turn = _ORIENT.get(orientation, lambda a: a)
    rgb = np.ascontiguousarray(turn(rgb))
    return rgb, None if alpha is None else np.ascontiguousarray(turn(alpha)), peak


def _samples(path: Path, image, sixteen: bool) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(RGB, alpha or None, peak); sixteen: the file holds 16-bit RGB(A) that Pillow reduces."""
    mode = image.mode
    if mode in GREY16_MODES:
        grey = np.asarray(image).astype(np.uint16)
        key = image.info.get("transparency")  # PNG tRNS: one grey value is transparent
        alpha = np.where(grey == key, 0, 65535).astype(np.uint16) if isinstance(key, int) else None
        return np.repeat(grey[..., None], 3, axis=-1), alpha, 65535
    if mode not in EIGHT_BIT_MODES:
        raise BadInput(f"'{path}' has {mode} samples (32-bit or floating point); "
                       "save it as an 8- or 16-bit image")
    if sixteen:
        samples = _rgb16(path, image)
        alpha = samples[..., 3] if samples.shape[-1] == 4 else None
        return samples[..., :3], alpha, 65535
    rgb = np.asarray(image.convert("RGB"))
    has_alpha = mode in ALPHA_MODES or "transparency" in image.info
    alpha = np.asarray(image.convert("RGBA"))[..., 3] if has_alpha else None
    return rgb, alpha, 255


def _sixteen_bit_rawmodes(image) -> list | None:
    """The tiles with their rawmode's byte order swapped, when every tile holds 16-bit RGB(A)."""
    swapped = []
    for tile in image.tile:
        args = tile.args
        rawmode = args if isinstance(args, str) else (args[0] if args else None)
        if tile.codec_name not in _DECODERS_16 or not isinstance(rawmode, str) \
                or rawmode not in {f"{m};16{o}" for m in ("RGB", "RGBA") for o in "BLN"}:
            return None
        order = rawmode[-1] if rawmode[-1] != "N" else _NATIVE
        other = rawmode[:-1] + ("L" if order == "B" else "B")
        swapped.append(tile._replace(args=other if isinstance(args, str) else (other, *args[1:])))
    return swapped or None


def _rgb16(path: Path, image) -> np.ndarray:
    """HxWx3|4 uint16 samples of a 16-bit RGB(A) file: high bytes, then low bytes."""
    from PIL import Image

    high = np.asarray(image).astype(np.uint16)
    with Image.open(path) as again:
        if again.size != image.size or again.mode != image.mode:
            raise BadInput(f"'{path}' changed while it was read")
        swapped = _sixteen_bit_rawmodes(again)
        if swapped is None:
            raise BadInput(f"'{path}' changed while it was read")
        again.tile = swapped
        low = np.asarray(again).astype(np.uint16)
    return (high << 8) | low
