"""The one gate every Keras / TF.js config passes before TensorFlow deserialises it.

A Keras config names the classes and modules to instantiate, so deserialising an untrusted
one can run code: a Lambda layer carries marshalled bytecode, and a custom class name with
`module`/`registered_name` pointing elsewhere reaches classes (TensorFlow's legacy Lambda)
that ignore tf_keras' safe mode. So srjs accepts only what it builds itself: the layer classes
of its architectures, its own custom layers, and the plain data objects (initializers, dtype
policies, shapes) that their configs contain. Everything else is refused by name, before
TensorFlow sees the config, on every path: .h5, .keras, SavedModel metadata, TF.js model.json,
model dirs and variants (`load_keras_file` is the only way srjs loads a Keras file).
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from srjs.errors import BadInput

# Layer classes the architectures in srjs.archs build (a test builds every registered family
# and checks its config against this set: a new family's layers are added here).
KERAS_LAYERS = frozenset({
    "InputLayer", "Functional", "Model",
    "Conv2D", "DepthwiseConv2D", "Dense",
    "Activation", "ReLU", "LeakyReLU", "PReLU",
    "Add", "Multiply", "Concatenate", "UpSampling2D",
    "ZeroPadding2D",  # srvgg: the fixed bicubic downscale of ncnn's x2/x3 animevideov3
    "LayerNormalization",  # realplksr: LayerNorm, and GroupNorm as per-group LayerNormalization
    "Conv2DTranspose", "Cropping2D", "GlobalAveragePooling2D", "Reshape",  # realcugan
})
# Plain data objects that appear inside those layers' configs.
DATA_CLASSES = frozenset({
    # initializers
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "Zeros",
    # regularizers and constraints
    "L1", "L2", "L1L2", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint",
    # dtype policies and the shape records of SavedModel metadata
    "Policy", "DTypePolicy", "FloatDTypePolicy", "InputSpec", "TensorShape", "TypeSpec", "__tuple__",
})
ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "leaky_relu", "sigmoid", "hard_sigmoid", "tanh", "softmax",
    "elu", "selu", "gelu", "swish", "silu", "softplus", "softsign", "exponential", "mish",
})
# Keys that hold serialised Python (Lambda bodies, Keras 3 function objects).
CODE_KEYS = frozenset({"function", "function_type", "__lambda__", "output_shape_type", "fn"})
_MODULE = re.compile(r"(tf_)?keras(\.[A-Za-z_][A-Za-z0-9_]*)*")
_OWN_MODULES = ("srjs.archs.layers",)
_MAX_DEPTH = 200


def allowed_classes() -> frozenset:
    """Every class name a config may use: KERAS_LAYERS, DATA_CLASSES and srjs's custom layers."""
    from srjs.archs import custom_objects

    return KERAS_LAYERS | DATA_CLASSES | frozenset(custom_objects())


def check_config(config, where) -> None:
    """BadInput (one line naming the layer) unless every object in `config` is on the allowlist.

    Checks, anywhere in the nested config: `class_name` in `allowed_classes()`; `module` absent,
    tf_keras/keras, or srjs's own layer module; `registered_name` absent or equal to the class
    name; no key that carries code (CODE_KEYS); activations and initializer/regularizer/
    constraint names from the plain Keras sets.
    """
    _Walk(allowed_classes(), str(where)).visit(config, layer="(top level)", depth=0)


class _Walk:
    def __init__(self, allowed: frozenset, where: str):
        self.allowed = allowed
        self.where = where

    def refuse(self, layer: str, why: str):
        raise BadInput(f"'{self.where}': layer '{layer}' {why}; srjs does not load it")

    def visit(self, value, layer: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise BadInput(f"'{self.where}': Keras config is nested deeper than {_MAX_DEPTH} levels")
        if isinstance(value, list):
            for item in value:
                self.visit(item, layer, depth + 1)
            return
        if not isinstance(value, dict):
            return
        if "class_name" in value:
            layer = self.check_object(value, layer)
        for key, child in value.items():
            if key in CODE_KEYS:
                self.refuse(layer, f"carries serialised Python ('{key}')")
            if key == "activation":
                self.check_name(child, ACTIVATIONS, layer, key)
            elif isinstance(key, str) and key.endswith(("_initializer", "_regularizer", "_constraint")):
                self.check_name(child, None, layer, key)
            self.visit(child, layer, depth + 1)

    def check_object(self, obj: dict, layer: str) -> str:
        """The layer name to report from here down; refuses a class, module or alias not allowed."""
        cls = obj["class_name"]
        config = obj.get("config")
        name = config.get("name") if isinstance(config, dict) else None
        if isinstance(name, str) and len(name) <= 200:
            layer = name
        if cls == "Lambda":
            raise BadInput(f"'{self.where}' contains Lambda layer '{layer}' (serialised Python code); "
                           "srjs does not load it")
        if not isinstance(cls, str) or cls not in self.allowed:
            self.refuse(layer, f"has class {_short(cls)}, which is not a layer srjs builds")
        module = obj.get("module")
        if module is not None and not (isinstance(module, str) and (
                _MODULE.fullmatch(module) or module in _OWN_MODULES)):
            self.refuse(layer, f"names module {_short(module)} (only keras, tf_keras and srjs's own)")
        registered = obj.get("registered_name")
        if registered is not None and registered != cls:
            self.refuse(layer, f"registers class '{cls}' as {_short(registered)}")
        return layer

    def check_name(self, value, names: frozenset | None, layer: str, key: str) -> None:
        """A string-valued activation / initializer is looked up by name: only plain Keras names."""
        if value is None or isinstance(value, dict):
            return  # a dict is an object: check_object sees it
        if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", value) or (
                names is not None and value not in names):
            self.refuse(layer, f"has {key} {_short(value)}, which is not a plain Keras name")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- reading the config each Keras format carries, then loading it --------------------

def keras_file_configs(path: Path) -> list:
    """The config(s) tf_keras would deserialise from `path` (.h5, .keras or a SavedModel dir)."""
    path = Path(path)
    if path.is_dir():
        return saved_model_configs(path / "keras_metadata.pb")
    if path.suffix.lower() == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                return [json.loads(archive.read("config.json"))]
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
            raise BadInput(f"'{path}' is not a readable .keras file: {_first_line(err)}") from None
    return [h5_model_config(path)]


def h5_model_config(path: Path):
    """The `model_config` attribute of a Keras .h5 file (None for a weights-only file)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except (OSError, KeyError, ValueError) as err:
        raise BadInput(f"'{path}' is not a readable Keras .h5 file: {_first_line(err)}") from None
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise BadInput(f"'{path}' has an unreadable model_config: {_first_line(err)}") from None


def saved_model_configs(metadata: Path) -> list:
    """The layer configs a SavedModel's keras_metadata.pb holds (one JSON document per node)."""
    from srjs.tf import quiet_import

    if not metadata.is_file():
        raise BadInput(f"'{metadata.parent}' is a SavedModel without Keras metadata; save it from Keras")
    saved_metadata_pb2 = quiet_import("tf_keras.protobuf.saved_metadata_pb2")
    proto = saved_metadata_pb2.SavedMetadata()
    try:
        proto.ParseFromString(metadata.read_bytes())
        return [json.loads(node.metadata) for node in proto.nodes if node.metadata]
    except Exception as err:  # protobuf's DecodeError, JSON errors: all mean "unreadable"
        raise BadInput(f"'{metadata}' is not readable Keras metadata: {_first_line(err)}") from None


def load_keras_file(path: Path):
    """A Keras model from .h5, .keras or a SavedModel dir, after its config passed the gate.

    A SavedModel is rebuilt from its (checked) metadata config and given the checkpoint's
    variables: tf_keras' own SavedModel loader may fall back to the file's traced functions,
    which are TensorFlow programs srjs has not checked.
    """
    from srjs.archs import custom_objects
    from srjs.tf import keras, keras_safe_mode

    path = Path(path)
    configs = keras_file_configs(path)
    for config in configs:
        check_config(config, path)
    try:
        with keras_safe_mode():  # second line of defence: .h5 loaders ignore safe_mode=True
            if path.is_dir():
                return _rebuild_saved_model(path, configs, custom_objects())
            if path.suffix.lower() == ".keras" and _plain_keras_zip(path):
                return _load_keras_zip(path, configs[0], custom_objects())
            return keras.models.load_model(path, custom_objects=custom_objects(), compile=False,
                                           safe_mode=True)
    except BadInput:
        raise
    except Exception as err:  # Keras raises many types for broken files
        raise BadInput(f"cannot load Keras model '{path}': {_first_line(err)}") from None


_KERAS_ZIP = {"config.json", "metadata.json", "model.weights.h5"}
_MAX_KERAS_WEIGHTS = 4 << 30  # bytes; the largest ESRGAN-family checkpoints are under 100 MB


def _plain_keras_zip(path: Path) -> bool:
    """A .keras archive with its config and h5 weights and nothing else (no assets)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return {"config.json", "model.weights.h5"} <= names <= _KERAS_ZIP


def _load_keras_zip(path: Path, config: dict, objects: dict):
    """What tf_keras' `.keras` loader does (deserialise the config, load the weights store), with
    model.weights.h5 read from an extracted copy: tf_keras hands h5py the zip member itself, and
    every backward seek of h5py makes the ZipExtFile re-read the member from its start (about 14
    minutes for RealESRGAN_x4plus's 67 MB on a loaded 2-core machine, instead of seconds)."""
    import shutil
    import tempfile

    from tf_keras.src.saving import saving_lib
    from tf_keras.src.saving.serialization_lib import ObjectSharingScope, deserialize_keras_object

    config = dict(config, compile_config=None)  # compile=False
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="srjs-keras-") as tmp:
        declared = archive.getinfo("model.weights.h5").file_size  # zipfile reads no more than this
        if declared > _MAX_KERAS_WEIGHTS:
            raise BadInput(f"'{path}': model.weights.h5 unpacks to {declared} bytes "
                           f"(limit {_MAX_KERAS_WEIGHTS}); srjs does not extract it")
        weights = Path(tmp) / "model.weights.h5"
        with archive.open("model.weights.h5") as src, open(weights, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        v3 = saving_lib._SAVING_V3_ENABLED
        previous = getattr(v3, "value", False)
        v3.value = True
        try:
            with ObjectSharingScope():
                model = deserialize_keras_object(config, objects, safe_mode=True)
            store = saving_lib.H5IOStore(str(weights), mode="r")
            try:
                saving_lib._load_state(model, weights_store=store, assets_store=None, inner_path="",
                                       visited_trackables=set())
            finally:
                store.close()
        finally:
            v3.value = previous
    return model


def _rebuild_saved_model(path: Path, configs: list, objects: dict):
    from srjs.tf import keras

    root = next((c for c in configs if isinstance(c, dict) and isinstance(c.get("config"), dict)
                 and "layers" in c["config"]), None)
    if root is None:
        raise BadInput(f"'{path}' holds no Keras model config in its metadata")
    model = keras.models.model_from_json(json.dumps({"class_name": root["class_name"],
                                                     "config": root["config"]}),
                                         custom_objects=objects)
    status = model.load_weights(str(path / "variables" / "variables"))
    status.assert_existing_objects_matched()  # every weight of the rebuilt model was restored
    status.expect_partial()  # the SavedModel's functions and signatures are left unread
    return model


def tfjs_model_config(topology):
    """The part of a model.json's modelTopology that tensorflowjs' loader deserialises."""
    if isinstance(topology, dict) and "model_config" in topology:
        return topology["model_config"]
    return topology


def load_tfjs_layers(path: Path, topology: dict):
    """A Keras model from a TF.js layers model.json whose topology passed the gate."""
    from srjs.archs import custom_objects
    from srjs.tf import keras, keras_safe_mode, quiet_import

    check_config(tfjs_model_config(topology), path)
    tfjs = quiet_import("tensorflowjs")
    try:
        with keras.utils.custom_object_scope(custom_objects()), keras_safe_mode():
            return tfjs.converters.load_keras_model(str(path))
    except Exception as err:  # tensorflowjs and Keras raise many types for broken files
        raise BadInput(f"cannot load TF.js model '{path}': {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
