"""Checkpoint readers, one per format, behind a registry keyed by format name.

Every reader turns a file (or folder) into a `Checkpoint`: named numpy weights in the source's
own naming (BasicSR torch names for PyTorch files, Keras `layer/weight` names for Keras and
TF.js files) plus, for formats that carry an architecture, a way to load that architecture as
a fallback when no srjs family matches. Readers never execute code from the file: PyTorch
pickles go through a restricted unpickler, Keras configs with Lambda layers (which carry
Python bytecode) are refused before anything is deserialised.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from srjs import tfjs_weights
from srjs.errors import BadInput
from srjs.registry import Registry


@dataclass
class Checkpoint:
    format: str
    weights: dict[str, np.ndarray]
    hints: dict = field(default_factory=dict)  # arch, arch_params, scale, value_range, name
    # Loads the file's own architecture (only formats that carry one); used when no srjs
    # family matches the weights, so an unusual full Keras model still converts.
    load_original: Callable[[], object] | None = None


@dataclass(frozen=True)
class Reader:
    matches: Callable[[Path], bool]
    read: Callable[[Path], Checkpoint]


READERS: Registry[Reader] = Registry("checkpoint format")


def _reader(name: str, matches: Callable[[Path], bool]):
    """Register the decorated `read(path) -> Checkpoint` function under `name`."""

    def add(read: Callable[[Path], Checkpoint]):
        READERS.register(name)(Reader(matches, read))
        return read

    return add


def read_checkpoint(path: Path) -> Checkpoint:
    """Read any supported checkpoint; BadInput (one line) for unknown or broken files."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"'{path}' does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise BadInput(f"'{path}' is empty")
    for name in READERS.names():
        reader = READERS.get(name)
        if reader.matches(path):
            return reader.read(path)
    known = ".pth .pt .safetensors .h5 .hdf5 .keras model.json, ncnn .param, SavedModel dirs"
    raise BadInput(f"'{path}' is not a supported checkpoint (supported: {known})")


# --- PyTorch and safetensors: BasicSR-named weights -------------------------------------

def _suffix(*suffixes: str) -> Callable[[Path], bool]:
    return lambda p: p.is_file() and p.suffix.lower() in suffixes


@_reader("pth", _suffix(".pth", ".pt"))
def _read_pth(path: Path) -> Checkpoint:
    from srjs.convert import keymaps, torch_pickle

    state = torch_pickle.extract_state_dict(torch_pickle.read_torch_checkpoint(path))
    return Checkpoint("pth", keymaps.to_basicsr(state))


@_reader("safetensors", _suffix(".safetensors"))
def _read_safetensors(path: Path) -> Checkpoint:
    from srjs.convert import keymaps
    from srjs.convert.safetensors_reader import read_safetensors

    return Checkpoint("safetensors", keymaps.to_basicsr(read_safetensors(path)))


# --- Keras files: `layer/weight`-named weights ------------------------------------------

def _refuse_lambda(config, path: Path) -> None:
    """BadInput if a Lambda layer (marshalled Python) hides anywhere in a Keras config.

    Walks every nested dict and list, so wrappers (TimeDistributed, Bidirectional, tfmot's
    prune/cluster wrappers: `config.layer`) and nested models are covered.
    """
    for node in _walk_config(config):
        if node.get("class_name") == "Lambda":
            name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
            raise BadInput(f"'{path}' contains Lambda layer '{name}' (serialised Python code); "
                           "srjs does not load it")


def _walk_config(value, depth: int = 0):
    """Every dict inside a JSON-like value (depth-bounded: configs from files are untrusted)."""
    if depth > 200:
        raise BadInput("Keras config is nested deeper than 200 levels")
    if isinstance(value, dict):
        yield value
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return
    for child in children:
        yield from _walk_config(child, depth + 1)


@_reader("h5", _suffix(".h5", ".hdf5"))
def _read_h5(path: Path) -> Checkpoint:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            config = handle.attrs.get("model_config")
            group = handle["model_weights"] if "model_weights" in handle else handle
            weights = _h5_weights(group)
    except (OSError, KeyError, ValueError) as err:
        raise BadInput(f"'{path}' is not a readable Keras .h5 file: {_first_line(err)}") from None
    if not weights:
        raise BadInput(f"'{path}' holds no weights")
    if config is None:  # weights only (e.g. idealo ISR checkpoints): the name may say the arch
        return Checkpoint("h5-weights", weights, hints=isr_name_hints(path))
    try:
        model_config = json.loads(config)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"'{path}' has an unreadable model_config: {_first_line(err)}") from None
    _refuse_lambda(model_config, path)
    return Checkpoint("h5", weights, load_original=lambda: _load_keras_file(path))


def _h5_weights(group) -> dict[str, np.ndarray]:
    weights = {}
    for raw_layer in group.attrs.get("layer_names", []):
        layer = raw_layer.decode() if isinstance(raw_layer, bytes) else raw_layer
        for raw in group[layer].attrs.get("weight_names", []):
            name = raw.decode() if isinstance(raw, bytes) else raw
            array = np.asarray(group[layer][name])
            weights[f"{layer}/{name.split('/')[-1].split(':')[0]}"] = array
    return weights


@_reader("keras", _suffix(".keras"))
def _read_keras(path: Path) -> Checkpoint:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise BadInput(f"'{path}' is not a readable .keras file: {_first_line(err)}") from None
    _refuse_lambda(config, path)
    model = _load_keras_file(path)
    return Checkpoint("keras", keras_layer_weights(model), load_original=lambda: model)


@_reader("saved_model", lambda p: p.is_dir() and (p / "saved_model.pb").exists())
def _read_saved_model(path: Path) -> Checkpoint:
    if not (path / "keras_metadata.pb").exists():
        raise BadInput(f"'{path}' is a SavedModel without Keras metadata; save it from Keras")
    _refuse_lambda(_saved_model_keras_configs(path / "keras_metadata.pb"), path)
    model = _load_keras_file(path)
    return Checkpoint("saved_model", keras_layer_weights(model), load_original=lambda: model)


def _saved_model_keras_configs(metadata: Path) -> list:
    """The layer configs a SavedModel's keras_metadata.pb holds (one JSON string per node)."""
    from srjs.tf import quiet_import

    saved_metadata_pb2 = quiet_import("tf_keras.protobuf.saved_metadata_pb2")
    proto = saved_metadata_pb2.SavedMetadata()
    try:
        proto.ParseFromString(metadata.read_bytes())
        return [json.loads(node.metadata) for node in proto.nodes if node.metadata]
    except Exception as err:  # protobuf's DecodeError, JSON errors: all mean "unreadable"
        raise BadInput(f"'{metadata}' is not readable Keras metadata: {_first_line(err)}") from None


def _load_keras_file(path: Path):
    from srjs.archs import custom_objects
    from srjs.tf import keras, keras_safe_mode

    try:
        with keras_safe_mode():  # .h5 and SavedModel loaders ignore safe_mode=True
            return keras.models.load_model(path, custom_objects=custom_objects(), compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for broken files
        raise BadInput(f"cannot load Keras model '{path}': {_first_line(err)}") from None


def keras_layer_weights(model) -> dict[str, np.ndarray]:
    """`layer/weight` -> array for every weight of a Keras model (the TF.js naming)."""
    from srjs.archs import keras_targets

    return {name: target.variable.numpy() for name, target in keras_targets(model).items()}


# --- TF.js layers model.json (e.g. UpscalerJS packages) ---------------------------------

@_reader("tfjs_layers", lambda p: p.is_file() and p.suffix.lower() == ".json")
def _read_tfjs_layers(path: Path) -> Checkpoint:
    data = tfjs_weights.read_model_json(path)
    if data.get("format") == "graph-model":
        raise BadInput(f"'{path}' is a TF.js graph model; srjs converts layers models")
    if "modelTopology" not in data or "weightsManifest" not in data:
        raise BadInput(f"'{path}' is not a TF.js layers model.json")
    topology = data["modelTopology"]
    _refuse_lambda(topology.get("model_config", topology), path)
    return Checkpoint(
        "tfjs_layers", tfjs_weights.read_weights(path, data),
        load_original=lambda: _load_tfjs_layers(path),
    )


def _load_tfjs_layers(path: Path):
    from srjs.archs import custom_objects
    from srjs.tf import keras, keras_safe_mode, quiet_import

    tfjs = quiet_import("tensorflowjs")
    with keras.utils.custom_object_scope(custom_objects()), keras_safe_mode():
        return tfjs.converters.load_keras_model(str(path))


# --- ncnn .param + .bin (realesrgan-ncnn-vulkan, Upscayl) -------------------------------

@_reader("ncnn", _suffix(".param"))
def _read_ncnn(path: Path) -> Checkpoint:
    from srjs.convert.ncnn import read_ncnn

    return read_ncnn(path)  # the .bin beside it; `srjs convert --bin` passes another


# --- hints from idealo ISR file names ---------------------------------------------------

_ISR_NAME = re.compile(
    r"(?P<arch>rrdn|rdn)-C(?P<C>\d+)-D(?P<D>\d+)-G(?P<G>\d+)-G0(?P<G0>\d+)(?:-T(?P<T>\d+))?-x(?P<x>\d+)"
)


def isr_name_hints(path: Path) -> dict:
    """ISR names weight files like rrdn-C4-D3-G32-G032-T10-x4_epoch299.hdf5: read arch + params."""
    match = _ISR_NAME.search(Path(path).name)
    if not match:
        return {}
    params = {k: int(v) for k, v in match.groupdict().items() if k not in ("arch", "x") and v}
    params["scale"] = int(match["x"])
    return {"arch": match["arch"], "arch_params": params}


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
