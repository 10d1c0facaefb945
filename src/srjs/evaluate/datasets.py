"""Evaluation images: scikit-image's built-in photos, a folder of HR images, or LR/HR pairs.

`builtin()` uses the RGB photographs shipped inside the scikit-image wheel (no download),
sizes as height x width:

    astronaut             512 x 512    portrait, NASA (Eileen Collins)
    chelsea               300 x 451    cat
    coffee                400 x 600    cup of coffee
    rocket                427 x 640    SpaceX Falcon 9 launch
    motorcycle            500 x 741    left view of skimage's stereo_motorcycle
    immunohistochemistry  512 x 512    stained tissue micrograph
    hubble_deep_field     872 x 1000   Hubble telescope deep field
    retina               1411 x 1411   fundus photograph

`builtin()` returns all but retina: it has more than twice the pixels of any other and is
mostly black, so bicubic x2 already scores 51.3 dB PSNR-Y on it (30-35 dB on the rest) and it
would dominate any mean; ask for it by name. Left out entirely: `cat` (the same image as
chelsea), `colorwheel` and `logo` (synthetic graphics, logo is RGBA), the greyscale images,
and the ones skimage downloads on demand (they need pooch and the network).

Folders hold png, jpg/jpeg, webp, bmp or tif/tiff files. Every image becomes HxWx3 uint8:
greyscale is replicated to three channels, alpha is dropped (noted on the image), 16-bit
samples keep their high byte (x >> 8, what Pillow itself does to 16-bit RGB PNGs, so all
formats agree), palette and CMYK images are converted to RGB, EXIF orientation is applied
(what a viewer shows), multi-frame files use their first frame. Files starting with '.' and
subfolders are ignored; any other file that is not a readable image of those types is an
error naming the file. All images are loaded into memory.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from srjs.errors import BadInput

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_KINDS = "png, jpg, webp, bmp, tiff"


@dataclass
class Image:
    """One evaluation image. hr: HxWx3 uint8; lr: HxWx3 uint8 for given pairs, else None
    (evaluate makes it by bicubic downsampling); note: what loading changed, '' if nothing."""

    name: str
    hr: np.ndarray
    note: str = ""
    lr: np.ndarray | None = None


def _stereo_left() -> np.ndarray:
    from skimage import data

    return data.stereo_motorcycle()[0]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


BUILTIN: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "motorcycle": _stereo_left,
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "retina": _skimage("retina"),
}


DEFAULT = [name for name in BUILTIN if name != "retina"]


# The dataset names that mean these photos: all of them, or the held-out half of `split_half`.
HELDOUT = "builtin-heldout"
BUILTIN_SETS = ("builtin", HELDOUT)


def split_half(images: list) -> tuple[list, list]:
    """(calibration, held-out): the first half of `images` (at least one) calibrates and
    fine-tunes every optimize step, the rest are held out (all of them when there is one)."""
    half = max(1, len(images) // 2)
    return images[:half], images[half:] or images


def builtin(names: Sequence[str] | None = None) -> list[Image]:
    """The built-in RGB photos: DEFAULT (BUILTIN without retina), or the given names in order."""
    names = list(DEFAULT) if names is None else list(names)
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        raise BadInput(f"no built-in image named {unknown[0]!r} (known: {', '.join(BUILTIN)})")
    return [Image(n, np.ascontiguousarray(BUILTIN[n]())) for n in names]


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _read_tiff(path: Path) -> tuple[np.ndarray, list[str]] | None:
    """Full-precision read of plain grey/RGB(A) TIFFs (Pillow reduces 16-bit RGB); None: use Pillow."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
                return None
            if page.axes not in ("YX", "YXS", "SYX"):
                return None
            arr = page.asarray()
            if page.axes == "SYX":
                arr = np.moveaxis(arr, 0, -1)
            notes = [f"first of {len(tif.pages)} pages"] if len(tif.pages) > 1 else []
            return arr, notes
    except Exception:  # noqa: BLE001 - anything tifffile cannot do, Pillow gets a try and the last word
        return None


def _read_pillow(path: Path) -> tuple[np.ndarray, list[str]]:
    from PIL import Image as PILImage
    from PIL import ImageOps

    with PILImage.open(path) as im:
        notes = []
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            notes.append(f"first of {frames} frames")
        transposed = ImageOps.exif_transpose(im)
        if transposed is not im and im.getexif().get(0x0112, 1) != 1:
            notes.append("EXIF orientation applied")
        im = transposed
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode == "PA":
            im = im.convert("RGBA")
        elif im.mode == "1":
            im = im.convert("L")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        return np.array(im), notes


def _to_rgb8(arr: np.ndarray, notes: list[str]) -> np.ndarray:
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind in "ui" and arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
        notes.append("16-bit scaled to 8-bit")
    elif arr.dtype != np.uint8:
        raise ValueError(f"{arr.dtype} samples (floating point?); save it as an 8- or 16-bit image")
    if arr.ndim == 3 and arr.shape[-1] in (2, 4):
        arr = arr[..., :-1]
        notes.append("alpha dropped")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
        notes.append("greyscale replicated to RGB")
    if arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 1:
        raise ValueError(f"shape {arr.shape} is not an HxW, HxWx3 or HxWx4 image")
    return np.ascontiguousarray(arr)


def read_image(path: str | Path) -> tuple[np.ndarray, str]:
    """One image file as (HxWx3 uint8, note). BadInput naming the file if it cannot be used."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise BadInput(f"'{path}': unsupported image type '{path.suffix}' ({_KINDS})")
    try:
        got = _read_tiff(path) if path.suffix.lower() in (".tif", ".tiff") else None
        arr, notes = got if got is not None else _read_pillow(path)
        rgb = _to_rgb8(arr, notes)
    except Exception as err:  # noqa: BLE001 - Pillow raises many types; the user needs the file and the reason
        raise BadInput(f"cannot read image '{path}': {_first_line(err)}") from None
    return rgb, "; ".join(notes)


def _image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"'{folder}' is not a folder")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    for p in files:
        if p.suffix.lower() not in SUFFIXES:
            raise BadInput(f"'{p}': unsupported image type '{p.suffix}' ({_KINDS})")
    if not files:
        raise BadInput(f"no images in '{folder}' ({_KINDS})")
    return files


def load_folder(path: str | Path) -> list[Image]:
    """Every image in a folder (not recursive), sorted by file name; names are file names."""
    images = []
    for p in _image_files(path):
        hr, note = read_image(p)
        images.append(Image(p.name, hr, note))
    return images


def _by_stem(files: list[Path], folder: str | Path) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise BadInput(f"'{stems[p.stem]}' and '{p.name}' in '{folder}' have the same name")
        stems[p.stem] = p
    return stems


def load_pairs(lr_dir: str | Path, hr_dir: str | Path, scale: int | None = None) -> list[Image]:
    """LR/HR pairs matched by file stem, sorted by HR file name.

    An LR stem matches an HR stem exactly or after removing a DIV2K-style suffix such as 'x4'
    ('0801x4.png' <-> '0801.png'). Every file must have a partner. HR must be `scale` times the
    LR size once cropped to a multiple of `scale` (the crop is noted); `scale` defaults to the
    ratio of the first pair and must be the same for all.
    """
    hr_files = _by_stem(_image_files(hr_dir), hr_dir)
    lr_files = _by_stem(_image_files(lr_dir), lr_dir)
    lr_for: dict[str, Path] = {}
    for stem, p in lr_files.items():
        key = stem if stem in hr_files else re.sub(r"x\d+$", "", stem, flags=re.IGNORECASE)
        if key not in hr_files:
            raise BadInput(f"no HR image in '{hr_dir}' matches LR '{p}'")
        if key in lr_for:
            raise BadInput(f"LR '{lr_for[key]}' and '{p}' both match HR '{hr_files[key]}'")
        lr_for[key] = p
    for stem, p in hr_files.items():
        if stem not in lr_for:
            raise BadInput(f"no LR image in '{lr_dir}' matches HR '{p}'")
    images = []
    for stem, hr_path in sorted(hr_files.items(), key=lambda kv: kv[1].name):
        hr, hr_note = read_image(hr_path)
        lr, lr_note = read_image(lr_for[stem])
        if scale is None:
            scale = max(1, hr.shape[0] // lr.shape[0])
        want = (lr.shape[0] * scale, lr.shape[1] * scale)
        cropped = (hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale)
        if cropped != want:
            raise BadInput(f"HR '{hr_path}' is {hr.shape[0]}x{hr.shape[1]} but LR '{lr_for[stem]}' is "
                           f"{lr.shape[0]}x{lr.shape[1]}; expected HR {want[0]}x{want[1]} at scale {scale}")
        notes = [n for n in (hr_note, lr_note and f"LR: {lr_note}") if n]
        if cropped != hr.shape[:2]:
            hr = np.ascontiguousarray(hr[: cropped[0], : cropped[1]])
            notes.append(f"HR cropped to {cropped[0]}x{cropped[1]}, a multiple of the scale")
        images.append(Image(hr_path.name, hr, "; ".join(notes), lr))
    return images
