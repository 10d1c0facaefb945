"""Lazy access to TensorFlow and Keras 2 (tf_keras), so `srjs --help` stays fast.

Import `keras` and `tf` from here, never `tensorflow.keras` directly: this module guarantees
the legacy-Keras switch in `srjs/__init__.py` has run first. TensorFlow 2.19 writes CUDA and
XLA registration warnings to fd 2 before its log level is read; they are noise on a CPU
machine, so the import runs with fd 2 pointed at /dev/null (unless `srjs --debug`).
"""
import contextlib
import importlib
import os
import sys

import srjs  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)


@contextlib.contextmanager
def quiet_fds():
    """Point fd 2 at /dev/null for TensorFlow's C++ logging (Python exceptions still propagate)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_import(name: str):
    """Import a TensorFlow-family module without its start-up noise on stderr/stdout."""
    if name in sys.modules:
        return sys.modules[name]
    with quiet_fds():
        return importlib.import_module(name)


def keras_safe_mode():
    """tf_keras' SafeModeScope: inside it every loader refuses Lambda bytecode.

    `load_model(..., safe_mode=True)` only covers the .keras format; .h5, SavedModel and
    model_from_json deserialise Lambda layers (and run their marshalled code) unless this
    scope is active.
    """
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    return SafeModeScope(True)


tf = quiet_import("tensorflow")
keras = quiet_import("tf_keras")
tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras", "quiet_import", "quiet_fds", "keras_safe_mode"]
