"""spandrel (chaiNNer's and ComfyUI's model loader) as the test reference for the model zoo.

Its torch architecture code is the reference forward pass and its `ModelLoader` (over
MAIN_REGISTRY) the reference detection. spandrel is installed with `--no-deps` (Makefile): its
torchvision requirement would pull another torch. It imports torchvision for two unrelated
architectures (LaMa, RestoreFormer) at import time only, so a stub with those names is
installed first; calling anything in it raises.

    desc = detect(path)                 # spandrel's ModelDescriptor for a .pth / .safetensors
    y = forward(desc.model, x_nhwc)     # its torch forward on NHWC float32, returned NHWC
"""
from __future__ import annotations

import enum
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch


def _stub_torchvision() -> None:
    """Give spandrel the torchvision names it imports, unless a real torchvision is installed."""
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return

    def unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is a stub in the srjs tests (spandrel is installed --no-deps)")

    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"

    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode
    functional.rotate = functional.normalize = unavailable
    root.transforms, transforms.functional = transforms, functional
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional})


_stub_torchvision()

import spandrel  # noqa: E402
from spandrel import ModelLoader, UnsupportedModelError  # noqa: E402,F401

from tests.torch_reference import randomize  # noqa: E402  (seeded weights, shared with the BasicSR references)

VERSION = spandrel.__version__


def random_model(cls, seed: int = 0, **hyperparameters) -> torch.nn.Module:
    """spandrel's architecture class `cls` built with `hyperparameters`, seeded random weights."""
    return randomize(cls(**hyperparameters), seed)


def state_numpy(state: dict) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in state.items()}


def save(state: dict, path: Path) -> Path:
    """Write a state dict of torch tensors as .pth (torch.save) or .safetensors, by suffix."""
    path = Path(path)
    state = {k: v.detach().contiguous() for k, v in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def detect(source) -> "spandrel.ModelDescriptor":
    """spandrel's descriptor for a file path or a state dict (UnsupportedModelError if none)."""
    loader = ModelLoader()
    if isinstance(source, (str, Path)):
        return loader.load_from_file(str(source))
    return loader.load_from_state_dict(source)


def describe(desc) -> dict:
    """What spandrel read: architecture id, scale, image channels and the model's hyperparameters."""
    return {
        "arch": desc.architecture.id,
        "scale": int(desc.scale),
        "input_channels": int(desc.input_channels),
        "output_channels": int(desc.output_channels),
        "hyperparameters": dict(desc.model.hyperparameters),
    }


def forward(model: torch.nn.Module, x_nhwc: np.ndarray) -> np.ndarray:
    """Torch forward on an NHWC float32 array, returned NHWC float32."""
    with torch.no_grad():
        y = model.eval()(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))))
    return y.numpy().transpose(0, 2, 3, 1)
