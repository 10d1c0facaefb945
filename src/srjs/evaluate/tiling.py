"""Equal-size tiling for fully convolutional SR models, after UpscalerJS's patch logic.

Terms (all lengths in input pixels unless marked otherwise):

- `patch`: the core of a tile, the number of rows/columns an interior tile contributes to the
  output. Tiles advance by `patch`.
- `pad`: context added on each side of the core. Each tile's input window is
  `patch + 2 * pad` square, clipped to the image when the image is smaller. After upscaling,
  `pad * scale` output pixels are cut from the sides that face other tiles.
- UpscalerJS's `patchSize` is the whole window, `patch + 2 * pad`, and its `padding` is `pad`
  (see `upscalerjs_options`).

Every window has the same shape (one warm-up, one compiled shape for the whole image). The
first tile of a row starts at the image edge and keeps its window up to `pad` before its far
side; each later tile keeps the next rows from where the previous stopped; the last one is
shifted back to end at the image edge, so it overlaps its neighbour more instead of shrinking.
Every kept pixel therefore sees at least `pad` pixels of real context on each side (or the
image edge), so a model whose receptive field reaches r pixels is seam-free once pad >= r.

Checked against a transliteration of UpscalerJS's `getPatchesFromImage` (patchSize =
patch + 2*pad) for every length < 120, patch < 40, pad < 12: the plans are identical wherever
UpscalerJS gives each kept pixel `pad` pixels of context; in the other 22% of those cases its
shifted-back last tile keeps pixels nearer than `pad` to its window edge (a possible seam) and
this plan does not.

The plan is pure data (`Tile.to_dict`) so Python, the Node harness and the package's JS can
follow the same plan.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from srjs.errors import BadInput, CheckFailed

Run = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Span:
    """One axis of a tile, in input pixels: window [start, start+size), kept [keep_start, keep_stop)."""

    start: int
    size: int
    keep_start: int  # absolute image coordinate
    keep_stop: int


@dataclass(frozen=True)
class Tile:
    """One model call. `y`/`x` are the spans of its window and kept region (input pixels)."""

    row: int
    col: int
    y: Span
    x: Span

    def window(self) -> tuple[slice, slice]:
        """Slices of the input image this tile's model call sees."""
        return (slice(self.y.start, self.y.start + self.y.size), slice(self.x.start, self.x.start + self.x.size))

    def crop(self, scale: int) -> tuple[slice, slice]:
        """Slices of this tile's upscaled output that are kept (output pixels)."""
        return tuple(slice((s.keep_start - s.start) * scale, (s.keep_stop - s.start) * scale)
                     for s in (self.y, self.x))

    def dest(self, scale: int) -> tuple[slice, slice]:
        """Where the kept part goes in the whole upscaled image (output pixels)."""
        return tuple(slice(s.keep_start * scale, s.keep_stop * scale) for s in (self.y, self.x))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan_spans(length: int, patch: int, pad: int) -> list[Span]:
    """The tiling of one axis of `length` input pixels (see the module docstring)."""
    if patch < 1 or pad < 0:
        raise BadInput(f"tiles need patch >= 1 and pad >= 0, got patch={patch} pad={pad}")
    if length < 1:
        raise BadInput(f"cannot tile an empty axis (length {length})")
    size = min(patch + 2 * pad, length)
    if size == length:
        return [Span(0, length, 0, length)]
    spans = []
    kept = 0
    while kept < length:
        # Later tiles need `pad` pixels left of what they keep; the last one may not pass the edge.
        start = 0 if kept == 0 else min(kept - pad, length - size)
        stop = length if start + size == length else start + size - pad
        spans.append(Span(start, size, kept, stop))
        kept = stop
    return spans


def plan_tiles(height: int, width: int, patch: int, pad: int) -> list[Tile]:
    """Tiles for an image of height x width input pixels, row-major.

    All windows have the same shape, min(patch + 2*pad, height) x min(patch + 2*pad, width);
    kept regions partition the image. An image no larger than one window is one tile.
    """
    ys, xs = plan_spans(height, patch, pad), plan_spans(width, patch, pad)
    return [Tile(r, c, y, x) for r, y in enumerate(ys) for c, x in enumerate(xs)]


def ideal_overhead(patch: int, pad: int) -> float:
    """Model work per output pixel relative to one whole-image call, for a large image.

    Each tile computes (patch + 2*pad)^2 input pixels to keep patch^2 of them, so the ratio is
    ((patch + 2*pad) / patch)^2. UpscalerJS users: with its patchSize P, this is (P / (P - 2*pad))^2.
    """
    return ((patch + 2 * pad) / patch) ** 2


def tiling_overhead(height: int, width: int, patch: int, pad: int) -> float:
    """Input pixels computed by the tiles of this image over its pixel count (>= 1)."""
    tiles = plan_tiles(height, width, patch, pad)
    return len(tiles) * tiles[0].y.size * tiles[0].x.size / (height * width)


def upscalerjs_options(patch: int, pad: int) -> dict[str, int]:
    """The same tiling expressed as UpscalerJS `upscale()` options."""
    return {"patchSize": patch + 2 * pad, "padding": pad}


def _report(progress: Any, done: int, total: int) -> None:
    if progress is None:
        return
    if hasattr(progress, "update"):  # a tqdm bar
        if getattr(progress, "total", None) != total:
            progress.total = total
            if hasattr(progress, "refresh"):
                progress.refresh()
        progress.update(1)
    else:
        progress(done, total)


def upscale_tiled(run: Run, image: np.ndarray, scale: int, patch: int, pad: int,
                  progress: Any = None, out: np.ndarray | None = None) -> np.ndarray:
    """Upscale HxWxC `image` tile by tile into one preallocated (H*scale)x(W*scale)xC array.

    run: batch [1,h,w,C] float32 -> [1,h*scale,w*scale,C'] (the model, in its value range).
    Only one tile's input and output exist at a time besides the result, so peak memory is the
    output plus one tile. progress: None, a tqdm-like bar (its total is set, update(1) per tile)
    or a callable progress(done, total). out: optional destination (e.g. a np.memmap) of the
    right shape; by default a float32 array. Returns the stitched float32 output, unclipped.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise BadInput(f"expected an HxWxC image, got shape {image.shape}")
    h, w = image.shape[:2]
    tiles = plan_tiles(h, w, patch, pad)
    for i, tile in enumerate(tiles):
        batch = np.ascontiguousarray(image[tile.window()][None], dtype=np.float32)
        result = np.asarray(run(batch))
        want = (1, batch.shape[1] * scale, batch.shape[2] * scale)
        if result.ndim != 4 or result.shape[:3] != want:
            raise CheckFailed(f"model output {result.shape} for a {batch.shape} tile; expected {want} + (C,) "
                              f"at scale {scale}")
        if out is None:
            out = np.empty((h * scale, w * scale, result.shape[3]), dtype=np.float32)
        elif i == 0 and out.shape != (h * scale, w * scale, result.shape[3]):
            raise BadInput(f"output array {out.shape} does not fit {(h * scale, w * scale, result.shape[3])}")
        out[tile.dest(scale)] = result[0][tile.crop(scale)]
        _report(progress, i + 1, len(tiles))
    return out


def tiling_error(run: Run, image: np.ndarray, scale: int, patch: int, pad: int,
                 whole: np.ndarray | None = None) -> float:
    """Max |tiled - whole-image| output difference, in the model's value units.

    whole: the whole-image output `run(image[None])[0]` if already computed.
    """
    if whole is None:
        whole = np.asarray(run(np.asarray(image, dtype=np.float32)[None]))[0]
    tiled = upscale_tiled(run, image, scale, patch, pad)
    if tiled.shape != whole.shape:
        raise CheckFailed(f"tiled output {tiled.shape} and whole-image output {whole.shape} differ in shape")
    return float(np.max(np.abs(tiled.astype(np.float64) - whole)))


def seam_free_padding(run: Run, image: np.ndarray, scale: int, patch: int, value_max: float = 255.0,
                      tol: float | None = None, candidates: Iterable[int] | None = None) -> int:
    """Smallest pad whose tiled output equals the whole-image output within `tol`.

    tol defaults to one 8-bit level, value_max / 255 (value_max: 1.0 or 255.0, the model's
    range). candidates: pads to try in increasing order, each a full tiled run; by default all
    of 0 .. patch//2 searched by bisection, which assumes the error does not grow with pad
    (true for convolutional nets: more context only helps). The image must be larger than a
    window (patch + 2*pad) for the answer to mean anything; raises CheckFailed if no candidate
    passes.
    """
    tol = value_max / 255.0 if tol is None else tol
    whole = np.asarray(run(np.asarray(image, dtype=np.float32)[None]))[0]

    def ok(pad: int) -> bool:
        return tiling_error(run, image, scale, patch, pad, whole) <= tol

    if candidates is not None:
        tried = sorted(set(candidates))
        for pad in tried:
            if ok(pad):
                return pad
        raise CheckFailed(f"tiling with patch {patch}: no pad in {tried} matches the whole image within {tol:g}")
    lo, hi = 0, patch // 2
    if not ok(hi):
        raise CheckFailed(f"tiling with patch {patch}: even pad {hi} differs from the whole image by more "
                          f"than {tol:g}; use a larger patch")
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
