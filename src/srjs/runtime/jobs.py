"""Validation and staging shared by the Node and browser runs: models, inputs, backends."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from srjs.errors import BadInput

FORMATS = ("layers", "graph")


def check_models(models) -> list[tuple[Path, str]]:
    checked = []
    for path, fmt in models:
        path = Path(path)
        if path.is_dir():
            path = path / "model.json"
        if not path.is_file():
            raise BadInput(f"TF.js model {path} does not exist")
        if fmt not in FORMATS:
            raise BadInput(f"model format '{fmt}' for {path} is not one of {', '.join(FORMATS)}")
        checked.append((path.resolve(), fmt))
    return checked


def check_backends(backends, known: tuple[str, ...], runtime: str) -> list[str]:
    backends = list(backends)
    unknown = [b for b in backends if b not in known]
    if unknown or not backends:
        raise BadInput(f"backend(s) {', '.join(unknown) or 'none'} not available in the {runtime} "
                       f"runtime (choose from {', '.join(known)})")
    return backends


def write_inputs(inputs, folder: Path) -> list[Path]:
    """Each input as float32 NHWC .npy in `folder` (what the harnesses parse)."""
    paths = []
    for i, array in enumerate(inputs):
        array = np.ascontiguousarray(array, dtype="<f4")
        if array.ndim != 4:
            raise BadInput(f"input {i} has shape {array.shape}; expected NHWC [1, H, W, C]")
        path = folder / f"in_{i}.npy"
        np.save(path, array, allow_pickle=False)
        paths.append(path)
    return paths
