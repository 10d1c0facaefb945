"""JSON as srjs writes it: strict, so every file it writes parses in JSON.parse as in Python.

Python's json writes NaN and Infinity as bare tokens that JSON.parse (TF.js, npm, browsers)
rejects. Every json.dump(s) in srjs goes through `dumps`, which refuses them: inputs are
checked to be finite where they are read, so a non-finite number here is a bug, and a loud
ValueError beats a manifest no JavaScript reader can open. (Result documents that may hold
inf, e.g. PSNR of identical images, encode it as a string first: evaluate/results.to_json.)
"""
from __future__ import annotations

import json
import math
from typing import Any


def dumps(data: Any, **options) -> str:
    """`json.dumps(data, **options)` with allow_nan=False (ValueError on NaN or +-Infinity)."""
    return json.dumps(data, **options, allow_nan=False)


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def encode_non_finite(data: Any) -> Any:
    """`data` with non-finite floats as the strings "inf", "-inf", "nan": for measured values
    that may legitimately be infinite (the PSNR of identical images)."""
    if isinstance(data, float) and not math.isfinite(data):
        return "nan" if math.isnan(data) else ("inf" if data > 0 else "-inf")
    if isinstance(data, dict):
        return {k: encode_non_finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [encode_non_finite(v) for v in data]
    return data


def decode_non_finite(data: Any) -> Any:
    """Undo `encode_non_finite` on parsed JSON."""
    if isinstance(data, str) and data in _NON_FINITE:
        return _NON_FINITE[data]
    if isinstance(data, dict):
        return {k: decode_non_finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [decode_non_finite(v) for v in data]
    return data
