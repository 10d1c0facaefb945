"""The Keras model of a model dir carrying the weights its TF.js artifact actually ships.

A variant's keras/model.keras may hold float32 weights while tfjs_layers/ ships uint8 or
float16 ones; numbers a user quotes must come from the latter (DESIGN.md). So the
architecture comes from Keras, and every weight is overwritten with the value TF.js decodes
from the shards (`q * scale + min` in double precision, stored float32; float16 widened).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from srjs import modeldir
from srjs.errors import BadInput

MODEL_JSON = "model.json"


def shipped_model_json(model_dir: Path) -> Path:
    """Path of the TF.js layers model.json the model dir ships."""
    return Path(model_dir) / modeldir.TFJS_LAYERS_DIR / MODEL_JSON


def shipped_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """`layer/weight` -> float32 array, decoded from tfjs_layers/ exactly as TF.js decodes it."""
    from srjs.convert.sources import read_tfjs_weights

    path = shipped_model_json(model_dir)
    if not path.is_file():
        raise BadInput(f"'{model_dir}' ships no TF.js layers model ({path} is missing); "
                       "convert without --no-tfjs")
    try:
        manifest = json.loads(path.read_text())["weightsManifest"]
    except (ValueError, KeyError) as err:
        raise BadInput(f"'{path}' is not a TF.js layers model.json: {err}") from None
    return read_tfjs_weights(path, manifest)


def assign_weights(model, weights: dict[str, np.ndarray], *, origin: str = "weights") -> None:
    """Set every weight of `model` from `weights` keyed `layer/weight`.

    Every model weight must be present with the same shape, and every given weight must be
    used: a silent partial assignment would measure a model that ships nowhere.
    """
    unused = set(weights)
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.name.split('/')[-1].split(':')[0]}"
            if key not in weights:
                raise BadInput(f"{origin} has no weight '{key}' that the Keras model needs")
            value = weights[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise BadInput(f"{origin} weight '{key}' has shape {tuple(value.shape)}, "
                               f"the Keras model needs {tuple(variable.shape)}")
            variable.assign(value.astype(variable.dtype.as_numpy_dtype))
            unused.discard(key)
    if unused:
        raise BadInput(f"{origin} has weights the Keras model does not use: {', '.join(sorted(unused)[:5])}")


def load_shipped(model_dir: Path):
    """Keras model of `model_dir` (architecture from keras/model.keras) with the shipped TF.js weights."""
    model = modeldir.load_keras(model_dir)
    assign_weights(model, shipped_weights(model_dir), origin=str(shipped_model_json(model_dir)))
    return model
