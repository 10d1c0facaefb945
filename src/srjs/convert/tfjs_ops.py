"""Trace-time substitutions so a graph model uses only ops TF.js graph models have.

tf_keras' exact GELU (`Activation('gelu')`, PLKSR's channel mixer) traces as
0.5 * x * Erfc(-x / sqrt 2); tfjs-converter has no Erfc but has Erf (every backend), and
0.5 * x * (1 + Erf(x / sqrt 2)) is the same function - the formula tfjs-layers' own 'gelu'
uses. Only the graph export traces under this; Python inference is untouched.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

from srjs.tf import keras, tf

_SQRT_HALF = 0.7071067811865476


@contextmanager
def tfjs_graph_ops():
    """Within the block, exact GELU traces with Erf instead of Erfc."""
    nn = sys.modules[keras.activations.gelu.__module__].tf.nn  # the module tf_keras calls through
    original = nn.gelu

    def gelu(features, approximate=False, name=None):
        if approximate:
            return original(features, approximate=True, name=name)
        return 0.5 * features * (1.0 + tf.math.erf(features * _SQRT_HALF))

    nn.gelu = gelu
    try:
        yield
    finally:
        nn.gelu = original
