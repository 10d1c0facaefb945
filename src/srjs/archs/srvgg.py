"""SRVGGNetCompact (Real-ESRGAN realesr-general / animevideo) in tf_keras, matching srvgg_arch.py.

Layer names map 1:1 and reversibly to the PyTorch names: `body.{i}` <-> layer 'body__{i}';
a conv's `kernel` / `bias` <-> `body.{i}.weight` / `.bias`, a PReLU's `alpha` <-> `body.{i}.weight`
(shape (C,) in PyTorch, (1, 1, C) in Keras). Body indices follow the nn.ModuleList: even
indices are convs, odd ones activations, the last one the conv to 3*scale*scale channels.

BasicSR calls the scale `upscale`; srjs names it `scale` in every family. The last conv's
output channels are permuted at load time so TensorFlow's depth_to_space reproduces PyTorch's
pixel_shuffle (see layers.py).
"""
from __future__ import annotations

import math
import re

import numpy as np

from srjs.archs import ArchSpec, Target, assign_weights, variable_suffix
from srjs.archs.layers import PixelShuffle, torch_to_tf_depth_order
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers


def _activation(act_type: str, num_feat: int, name: str) -> keras.layers.Layer:
    if act_type == "prelu":
        # One slope per channel, shared over H and W, as nn.PReLU(num_parameters=num_feat).
        return L.PReLU(shared_axes=[1, 2], name=name)
    if act_type == "relu":
        return L.ReLU(name=name)
    if act_type == "leakyrelu":
        return L.LeakyReLU(0.1, name=name)
    raise BadInput(f"srvgg act_type must be prelu, relu or leakyrelu, not '{act_type}'")


def build(
    scale: int = 4,
    num_feat: int = 64,
    num_conv: int = 16,
    act_type: str = "prelu",
    num_in_ch: int = 3,
    num_out_ch: int = 3,
) -> keras.Model:
    """SRVGGNetCompact: conv+act, num_conv x (conv+act), conv to out*s*s, shuffle, + nearest input.

    Input [N, H, W, num_in_ch] float32 -> [N, H*scale, W*scale, num_out_ch].
    """
    inp = L.Input((None, None, num_in_ch), name="lr_input")
    x = inp
    for i in range(num_conv + 1):
        x = L.Conv2D(num_feat, 3, padding="same", name=f"body__{2 * i}")(x)
        x = _activation(act_type, num_feat, f"body__{2 * i + 1}")(x)
    last = 2 * num_conv + 2
    x = L.Conv2D(num_out_ch * scale * scale, 3, padding="same", name=f"body__{last}")(x)
    x = PixelShuffle(scale, name="upsampler")(x)
    base = L.UpSampling2D(scale, interpolation="nearest", name="base_upsample")(inp)
    out = L.Add(name="add_base")([x, base])
    return keras.Model(inp, out, name="srvgg")


def torch_name(layer_name: str, suffix: str) -> str:
    """PyTorch parameter name of a Keras layer's variable ('kernel', 'bias' or 'alpha')."""
    return layer_name.replace("__", ".") + (".bias" if suffix == "bias" else ".weight")


def _targets(model: keras.Model) -> dict[str, Target]:
    scale = next(l.scale for l in model.layers if isinstance(l, PixelShuffle))
    last_conv = [l for l in model.layers if isinstance(l, L.Conv2D)][-1].name
    targets = {}
    for layer in model.layers:
        for var in layer.weights:
            suffix = variable_suffix(var)
            shape = tuple(var.shape)
            perm = slice(None)
            if layer.name == last_conv:
                perm = torch_to_tf_depth_order(shape[-1], scale)
            if suffix == "kernel":
                h, w, i, o = shape
                source_shape = (o, i, h, w)
                convert = lambda a, perm=perm: a.transpose(2, 3, 1, 0)[..., perm]
            elif suffix == "alpha":
                source_shape = (shape[-1],)
                convert = lambda a, shape=shape: a.reshape(shape)
            else:
                source_shape = shape
                convert = lambda a, perm=perm: a[perm]
            targets[torch_name(layer.name, suffix)] = Target(var, source_shape, convert)
    return targets


def load(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Assign a Real-ESRGAN SRVGGNetCompact state dict (OIHW kernels) to a model from `build`."""
    assign_weights("srvgg", _targets(model), weights)


_NAME = re.compile(r"^body\.(\d+)\.(weight|bias)$")


def detect(shapes: dict[str, tuple]) -> dict | None:
    """Params of an SRVGGNetCompact state dict, or None if the names are not SRVGG's.

    act_type is 'prelu' when the activations carry weights; relu and leakyrelu have none and
    cannot be told apart from weights, so 'relu' is returned and the caller may override it.
    """
    matches = [_NAME.match(name) for name in shapes]
    if not shapes or not all(matches) or "body.0.weight" not in shapes:
        return None
    convs = sorted(int(m[1]) for m in matches if m[2] == "weight" and len(shapes[m[0]]) == 4)
    if convs != list(range(0, convs[-1] + 1, 2)) or len(convs) < 2:
        return None
    num_feat, in_ch = shapes["body.0.weight"][:2]
    out_ch = shapes[f"body.{convs[-1]}.weight"][0]
    scale = math.isqrt(out_ch // 3)
    if in_ch != 3 or 3 * scale * scale != out_ch:
        raise BadInput(
            f"srvgg: body.0.weight takes {in_ch} channels and body.{convs[-1]}.weight gives "
            f"{out_ch}; srjs supports RGB in and 3*scale*scale channels before the shuffle"
        )
    return {
        "scale": scale,
        "num_feat": int(num_feat),
        "num_conv": len(convs) - 2,
        "act_type": "prelu" if "body.1.weight" in shapes else "relu",
        "num_in_ch": 3,
        "num_out_ch": 3,
    }


SPEC = ArchSpec(name="srvgg", default_value_range=(0, 1), build=build, detect=detect, load=load)
