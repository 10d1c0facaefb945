"""Checkpoint readers, one per format, behind a registry keyed by format name.

Every reader turns a file (or folder) into a `Checkpoint`: named numpy weights in the source's
own naming (BasicSR torch names for PyTorch files, Keras `layer/weight` names for Keras and
TF.js files) plus, for formats that carry an architecture, a way to load that architecture as
a fallback when no srjs family matches. Readers never execute code from the file: PyTorch
pickles go through a restricted unpickler, Keras configs pass `gate`'s allowlist of the
classes srjs builds before anything is deserialised.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from srjs import tfjs_weights
from srjs.convert import gate
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

@_reader("h5", _suffix(".h5", ".hdf5"))
def _read_h5(path: Path) -> Checkpoint:
    import h5py

    model_config = gate.h5_model_config(path)
    if model_config is not None:
        gate.check_config(model_config, path)
    try:
        with h5py.File(path, "r") as handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            weights = _h5_weights(group)
    except (OSError, KeyError, ValueError) as err:
        raise BadInput(f"'{path}' is not a readable Keras .h5 file: {_first_line(err)}") from None
    if not weights:
        raise BadInput(f"'{path}' holds no weights")
    if model_config is None:  # weights only (e.g. idealo ISR checkpoints): the name may say the arch
        return Checkpoint("h5-weights", weights, hints=isr_name_hints(path))
    return Checkpoint("h5", weights, load_original=lambda: gate.load_keras_file(path))


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
    model = gate.load_keras_file(path)  # checks the config first
    return Checkpoint("keras", keras_layer_weights(model), load_original=lambda: model)


@_reader("saved_model", lambda p: p.is_dir() and (p / "saved_model.pb").exists())
def _read_saved_model(path: Path) -> Checkpoint:
    model = gate.load_keras_file(path)  # checks the Keras metadata first
    return Checkpoint("saved_model", keras_layer_weights(model), load_original=lambda: model)


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
    gate.check_config(gate.tfjs_model_config(topology), path)
    return Checkpoint(
        "tfjs_layers", tfjs_weights.read_weights(path, data),
        load_original=lambda: gate.load_tfjs_layers(path, topology),
    )


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
