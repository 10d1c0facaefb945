"""The Keras model of a model dir carrying the weights its TF.js artifact actually ships.

A variant's keras/model.keras may hold float32 weights while tfjs_layers/ ships uint8 or
float16 ones; numbers a user quotes must come from the latter (DESIGN.md). So the
architecture comes from Keras, and every weight is overwritten with the value TF.js decodes
from the shards (`q * scale + min` in double precision, stored float32; float16 widened).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from srjs import modeldir, tfjs_weights
from srjs.errors import BadInput

MODEL_JSON = "model.json"


def shipped_model_json(model_dir: Path) -> Path:
    """Path of the TF.js layers model.json the model dir ships."""
    return Path(model_dir) / modeldir.TFJS_LAYERS_DIR / MODEL_JSON


def shipped_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """`layer/weight` -> float32 array, decoded from tfjs_layers/ exactly as TF.js decodes it."""
    path = shipped_model_json(model_dir)
    if not path.is_file():
        raise BadInput(f"'{model_dir}' ships no TF.js layers model ({path} is missing); "
                       "convert without --no-tfjs")
    return tfjs_weights.read_weights(path)


def load_shipped(model_dir: Path):
    """Keras model of `model_dir` (architecture from keras/model.keras) with the shipped TF.js weights."""
    from srjs.archs import assign_weights, keras_targets

    model = modeldir.load_keras(model_dir)
    # Every model weight must be shipped with its shape and every shipped weight used: a
    # silent partial assignment would measure a model that ships nowhere.
    assign_weights(str(shipped_model_json(model_dir)), keras_targets(model), shipped_weights(model_dir))
    return model
