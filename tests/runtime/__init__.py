"""Tests of the TF.js runtimes (srjs.runtime). Helpers shared by these modules live here.

References are computed in Python from the same model.json with tensorflowjs's own Keras
loader, and custom layers are defined again below, independently of srjs.archs, so the JS
layers are checked against a second implementation.
"""
from __future__ import annotations

import functools

import numpy as np

import srjs  # noqa: F401  (legacy-Keras switch first)
from srjs.tf import keras, tf


def tensorflowjs():
    """The tensorflowjs module, imported quietly (see srjs.tf.quiet_import)."""
    from srjs.tf import quiet_import

    return quiet_import("tensorflowjs")


class MultiplyBeta(keras.layers.Layer):
    def __init__(self, beta=0.2, **kwargs):
        super().__init__(**kwargs)
        self.beta = beta

    def call(self, x):
        return x * self.beta

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


class PixelShuffle(keras.layers.Layer):
    def __init__(self, scale=2, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return tf.nn.depth_to_space(x, self.scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class PixelShuffle2x(PixelShuffle):
    pass


class PixelUnshuffle(PixelShuffle):
    def call(self, x):
        return tf.nn.space_to_depth(x, self.scale)


CUSTOM = {c.__name__: c for c in (MultiplyBeta, PixelShuffle, PixelShuffle2x, PixelUnshuffle)}


@functools.lru_cache(maxsize=None)
def keras_model(model_json: str):
    """The model.json loaded by tensorflowjs's Python Keras loader (cached per path)."""
    with keras.utils.custom_object_scope(CUSTOM):  # the loader takes no custom_objects argument
        return tensorflowjs().converters.load_keras_model(model_json)


def reference(model_json, batch: np.ndarray) -> np.ndarray:
    return np.asarray(keras_model(str(model_json))(batch, training=False), np.float32)


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b)))
