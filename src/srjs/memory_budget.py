"""Whether an upscale fits in memory, decided before the network runs (and which tile would).

A super-resolution network's activations grow with the image: RRDBNet x4 holds 64 channels
at the output size, so a 4000x3000 photo needs tens of GiB whole, and running out of memory
kills the process (or the machine) instead of saying anything. The network is traced (not
run) at the window size it will see; the largest float32 tensor in that graph times
LIVE_TENSORS (tensors alive around one conv, allocator slack), plus the input and the whole
output image, is compared with the budget: half the machine's memory, or SRJS_MEMORY_BUDGET_MB.
"""
from __future__ import annotations

import os

from srjs.errors import BadInput

BUDGET_ENV = "SRJS_MEMORY_BUDGET_MB"
# Peak memory / largest tensor, beyond the input and output images. Measured (TF 2.19 CPU, peak
# RSS growth over one eager call, 128-768 px): RRDBNet 3.8x, SRVGGNetCompact 5.6x; 6 covers both.
LIVE_TENSORS = 6
SUGGESTED_TILES = (512, 256, 128, 64, 32, 16)


def budget_bytes() -> int:
    """Bytes an upscale may use: SRJS_MEMORY_BUDGET_MB, else half the physical memory."""
    raw = os.environ.get(BUDGET_ENV)
    if raw is not None:
        try:
            megabytes = int(raw)
        except ValueError:
            raise BadInput(f"{BUDGET_ENV}={raw!r} is not an integer number of MiB") from None
        if megabytes <= 0:
            raise BadInput(f"{BUDGET_ENV}={raw!r} must be positive")
        return megabytes << 20
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # no sysconf: assume a small machine
        return 4 << 30


def largest_tensor_bytes(model, height: int, width: int) -> int:
    """Bytes of the largest float tensor when `model` sees one height x width window.

    The Keras model is traced into a graph at that shape (nothing is computed), so every
    intermediate, inside custom layers too, has a static shape.
    """
    from srjs.tf import tf

    channels = int(model.input_shape[-1])
    spec = tf.TensorSpec([1, height, width, channels], tf.float32)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    largest = 0
    for op in graph.get_operations():
        for tensor in op.outputs:
            shape = tensor.shape
            if tensor.dtype.is_floating and shape.rank is not None and shape.is_fully_defined():
                largest = max(largest, shape.num_elements() * tensor.dtype.size)
    return largest


def window_side(tile: int, pad: int | None) -> int:
    """Side of the largest window a tiled upscale runs: tile + 2 * pad, or, with the padding
    still to be measured, the 3-tile crop `upscale.measured_seam_free_padding` upscales whole."""
    return 3 * tile if pad is None else tile + 2 * pad


def check_fits(model, height: int, width: int, scale: int, tile: int | None = None,
               pad: int | None = None) -> int:
    """BadInput (naming a --tile that fits) when upscaling height x width input pixels, whole
    or tiled, would need more than budget_bytes(); else the estimate in bytes.

    pad: context per tile side, None when it will be measured (see window_side).
    """
    budget = budget_bytes()
    image_bytes = 4 * 3 * height * width * (1 + scale * scale)  # float32 input and whole output
    side = None if tile is None else window_side(tile, pad)
    window = (height, width) if side is None else (min(height, side), min(width, side))
    need = image_bytes + LIVE_TENSORS * largest_tensor_bytes(model, *window)
    if need <= budget:
        return need
    how = "whole" if tile is None else f"in {window[1]}x{window[0]} px windows (--tile {tile})"
    per_pixel = largest_tensor_bytes(model, 32, 32) / (32 * 32)  # a conv net's tensors grow with area
    fits = [t for t in SUGGESTED_TILES if t < max(window)
            and image_bytes + LIVE_TENSORS * per_pixel * window_side(t, pad) ** 2 <= budget]
    if fits:
        advice = f"use --tile {fits[0]}"
    elif image_bytes > budget:
        advice = f"the {scale * width}x{scale * height} output alone needs {_size(image_bytes)}; use a smaller image"
    else:
        advice = f"even --tile {SUGGESTED_TILES[-1]} needs more; raise {BUDGET_ENV}"
    raise BadInput(f"upscaling {width}x{height} px {how} needs about {_size(need)}, more than the "
                   f"{_size(budget)} budget ({BUDGET_ENV}); {advice}")


def _size(nbytes: float) -> str:
    return f"{nbytes / (1 << 30):.1f} GiB" if nbytes >= 1 << 30 else f"{nbytes / (1 << 20):.1f} MiB"
