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
