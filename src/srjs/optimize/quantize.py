"""Per-tensor quantization in the format stock TF.js decodes, calibrated on the network's output.

TF.js stores a quantized weight as `q * scale + min` (q uint8/uint16) or as float16, one
(scale, min) per tensor. Which (scale, min) is best is model-specific: clipping outliers to
cut the weight MSE hurts SR nets badly, and tensorflowjs' zero-nudged range is sometimes
better, sometimes worse than plain min/max. So srjs tries a few candidate ranges per tensor
and keeps, tensor by tensor, the one whose network output on calibration images is closest
to the float network's (earlier tensors already quantized, later ones still float), then
checks the whole network against tensorflowjs' own choice and never ships the worse one.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from srjs.errors import BadInput
from srjs.tfjs_weights import Encoding, decode, quantize_tensor

DTYPES = ("float32", "float16", "uint16", "uint8")
BYTES = {"float32": 4, "float16": 2, "uint16": 2, "uint8": 1}
BYTES_LEVELS = {"uint8": 255, "uint16": 65535}  # largest stored integer of the affine dtypes
# Sub-step shifts of plain min/max tried per tensor: where the grid falls matters for
# small tensors and for weights clustered near a few values.
_SHIFTS = (-0.5, -0.25, 0.25)


def parse_spec(spec: str, names: Sequence[str]) -> dict[str, str]:
    """`--quantize` -> {weight name: dtype} for every weight.

    'uint8' (or float16/uint16/float32) applies to all weights; 'uint8:*conv*,float16:*'
    maps tensorflowjs-style wildcard patterns (first match wins) and leaves unmatched weights
    float32. BadInput for an unknown dtype or a pattern that matches no weight.
    """
    spec = (spec or "").strip()
    if spec in DTYPES:
        return {name: spec for name in names}
    rules = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        dtype, sep, pattern = part.partition(":")
        if not sep and dtype not in DTYPES:
            raise BadInput(f"--quantize: unknown dtype '{dtype}' (known: {', '.join(DTYPES)}, auto)")
        if not sep or not pattern:
            raise BadInput(f"--quantize '{part}': expected DTYPE or DTYPE:PATTERN (e.g. 'uint8:*conv*,float16:*')")
        if dtype not in DTYPES:
            raise BadInput(f"--quantize: unknown dtype '{dtype}' (known: {', '.join(DTYPES)}, auto)")
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise BadInput(f"--quantize: pattern '{pattern}' matches no weight (e.g. '{names[0]}')")
        rules.append((dtype, pattern))
    if not rules:
        raise BadInput(f"--quantize: unknown dtype '{spec}' (known: {', '.join(DTYPES)}, auto)")
    chosen = {}
    for name in names:
        chosen[name] = next((d for d, p in rules if fnmatch.fnmatchcase(name, p)), "float32")
    return chosen


def tfjs_encoding(values: np.ndarray, dtype: str) -> Encoding:
    """The (scale, min) tensorflowjs' `--quantize_uint8/uint16` picks: min/max, nudged so 0 is exact."""
    low, high = float(np.min(values)), float(np.max(values))
    levels = BYTES_LEVELS[dtype]
    if low == high:
        return Encoding(dtype, 1.0, low)
    scale = (high - low) / levels
    if low <= 0 <= high:
        low = -np.round((0 - low) / scale) * scale
    return Encoding(dtype, scale, low)


def candidate_encodings(values: np.ndarray, dtype: str) -> list[Encoding]:
    """Encodings srjs tries for one tensor: tensorflowjs', plain min/max, and shifted grids."""
    if dtype in ("float32", "float16"):
        return [Encoding(dtype)]
    low, high = float(np.min(values)), float(np.max(values))
    if low == high:
        return [Encoding(dtype, 1.0, low)]
    scale = (high - low) / BYTES_LEVELS[dtype]
    found = [tfjs_encoding(values, dtype), Encoding(dtype, scale, low)]
    # a grid one step wider, shifted by a fraction of a step, still covers [low, high]
    wide = (high - low) / (BYTES_LEVELS[dtype] - 1)
    found += [Encoding(dtype, wide, low + shift * wide) for shift in _SHIFTS if shift < 0]
    found += [Encoding(dtype, wide, low - (1 - shift) * wide) for shift in _SHIFTS if shift > 0]
    return found


def dequantized(values: np.ndarray, enc: Encoding) -> np.ndarray:
    """The float32 values TF.js will compute for `values` stored with `enc`."""
    return decode(quantize_tensor(values, enc), enc)


@dataclass
class Choice:
    """The encoding picked for one tensor, and the calibration output MSE it reached."""

    name: str
    encoding: Encoding
    candidates: int
    output_mse: float | None


def calibrate(weights: dict[str, np.ndarray], dtypes: dict[str, str],
              assign: Callable[[str, np.ndarray], None], output_error: Callable[[], float],
              progress: Callable[[str], None] = lambda name: None) -> dict[str, Choice]:
    """Pick each tensor's encoding by the network's output error on calibration images.

    weights: the float values (name -> array); dtypes: the dtype wanted per name.
    assign(name, values) sets a weight in the running model; output_error() runs the model
    on the calibration batch and returns the MSE against the float model's output. Tensors
    are taken in order; each keeps its best candidate for the rest of the search.
    """
    choices = {}
    for name, values in weights.items():
        progress(name)
        candidates = candidate_encodings(values, dtypes[name])
        if len(candidates) == 1:
            choices[name] = Choice(name, candidates[0], 1, None)
            assign(name, dequantized(values, candidates[0]))
            continue
        best, best_err = None, np.inf
        for enc in candidates:
            assign(name, dequantized(values, enc))
            err = output_error()
            if err < best_err:
                best, best_err = enc, err
        assign(name, dequantized(values, best))
        choices[name] = Choice(name, best, len(candidates), float(best_err))
    return choices


def tfjs_choices(weights: dict[str, np.ndarray], dtypes: dict[str, str]) -> dict[str, Encoding]:
    """tensorflowjs' own encoding per tensor, for the same dtypes (the baseline srjs must beat)."""
    return {name: (tfjs_encoding(v, dtypes[name]) if dtypes[name] in BYTES_LEVELS else Encoding(dtypes[name]))
            for name, v in weights.items()}


def shipped_bytes(weights: dict[str, np.ndarray], encodings: dict[str, Encoding]) -> int:
    """Raw weight bytes once stored with `encodings`."""
    return sum(int(np.size(v)) * BYTES[encodings[n].dtype] for n, v in weights.items())
