"""JSON as srjs writes it: strict, so every file it writes parses in JSON.parse as in Python.

Python's json writes NaN and Infinity as bare tokens that JSON.parse (TF.js, npm, browsers)
rejects. Every json.dump(s) in srjs goes through `dumps`, which refuses them: inputs are
checked to be finite where they are read, so a non-finite number here is a bug, and a loud
ValueError beats a manifest no JavaScript reader can open. (Result documents that may hold
inf, e.g. PSNR of identical images, encode it as a string first: evaluate/results.to_json.)
"""
from __future__ import annotations

import json
from typing import Any


def dumps(data: Any, **options) -> str:
    """`json.dumps(data, **options)` with allow_nan=False (ValueError on NaN or +-Infinity)."""
    return json.dumps(data, **options, allow_nan=False)
