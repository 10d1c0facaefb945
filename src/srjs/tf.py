"""Lazy access to TensorFlow and Keras 2 (tf_keras), so `srjs --help` stays fast.

Import `keras` and `tf` from here, never `tensorflow.keras` directly: this module guarantees
the legacy-Keras switch in `srjs/__init__.py` has run first.
"""
import srjs  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras"]
