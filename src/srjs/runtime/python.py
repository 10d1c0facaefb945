"""The python runtime: a tf_keras model as `run(batch) -> batch`, the reference every TF.js run is checked against."""
from __future__ import annotations

import numpy as np


def keras_runner(model):
    """`run(batch[1,h,w,3]) -> [1,h*s,w*s,3]` float32 with a Keras model."""

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch, training=False), dtype=np.float32)

    return run
