"""srjs: ESRGAN-family super-resolution checkpoints -> verified TensorFlow.js packages."""
import os

# The one place the Keras flavour is chosen: tfjs-layers and tfmot need Keras 2 configs, so
# TensorFlow must see this before it is first imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ and absl log noise is not for users; --debug turns it back on.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
# tensorflowjs imports tensorflow_decision_forests, whose welcome banner probes for IPython.
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")

__version__ = "0.1.0"

# --- the Python API (srjs/api.py), loaded on first use so `import srjs` stays cheap --------
# srjs.convert, .optimize, .evaluate, .package, .upscale and .verify are also the names of
# submodules; importing one (`from srjs.upscale import ...`) would bind the module over the
# function, so this module's class keeps the API functions in those names. Reach the
# submodules through `from srjs.x import y` or sys.modules, never as `srjs.x.y`.
import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING

API = ("convert", "optimize", "evaluate", "package", "build", "upscale", "verify", "bench")

if _TYPE_CHECKING:  # for type checkers and readers: what the lazy names are
    from srjs.api import bench, build, convert, evaluate, optimize, package, upscale, verify  # noqa: F401


def __getattr__(name: str):
    if name in API:
        from srjs import api

        function = getattr(api, name)
        globals()[name] = function
        return function
    raise AttributeError(f"module 'srjs' has no attribute '{name}'")


class _Module(_types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        if name in API and isinstance(value, _types.ModuleType):
            return  # a submodule import: the API function keeps the name
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Module
