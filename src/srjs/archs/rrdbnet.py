"""RRDBNet (ESRGAN, Real-ESRGAN x4plus / x2plus) in tf_keras, matching BasicSR's rrdbnet_arch.py.

Layer names map 1:1 and reversibly to BasicSR parameter names: a Keras layer is named after its
PyTorch module path with '.' replaced by '__' (BasicSR names never contain '__'), and the
variable suffix maps `kernel` <-> `weight`, `bias` <-> `bias`:

    body.0.rdb1.conv1.weight  <->  layer 'body__0__rdb1__conv1', variable 'kernel'

PyTorch kernels are OIHW, Keras HWIO; `load` transposes. For scale 2 and 1 BasicSR first
pixel-unshuffles the input by 2 or 4 (so conv_first sees 12 or 48 channels); the graph uses
space_to_depth and `load` permutes conv_first's input channels into TensorFlow's order.
"""
from __future__ import annotations

import re

import numpy as np

from srjs.archs import ArchSpec, Target, assign_weights, variable_suffix
from srjs.archs.layers import MultiplyBeta, PixelUnshuffle, torch_to_tf_depth_order
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers
_UNSHUFFLE = {4: 1, 2: 2, 1: 4}  # model scale -> pixel-unshuffle factor before conv_first
_RESIDUAL_SCALE = 0.2


def _conv(filters: int, name: str) -> keras.layers.Layer:
    return L.Conv2D(filters, 3, padding="same", name=name)


def _dense_block(x, num_feat: int, num_grow_ch: int, prefix: str):
    """BasicSR ResidualDenseBlock: 5 convs, dense concat, LeakyReLU 0.2 after conv1-4."""
    feats = [x]
    for k in range(1, 5):
        inp = feats[0] if k == 1 else L.Concatenate(axis=-1, name=f"{prefix}__cat{k}")(feats)
        y = _conv(num_grow_ch, f"{prefix}__conv{k}")(inp)
        feats.append(L.LeakyReLU(0.2, name=f"{prefix}__lrelu{k}")(y))
    y = _conv(num_feat, f"{prefix}__conv5")(L.Concatenate(axis=-1, name=f"{prefix}__cat5")(feats))
    y = MultiplyBeta(_RESIDUAL_SCALE, name=f"{prefix}__beta")(y)
    return L.Add(name=f"{prefix}__out")([y, x])


def _rrdb(x, num_feat: int, num_grow_ch: int, prefix: str):
    out = x
    for r in (1, 2, 3):
        out = _dense_block(out, num_feat, num_grow_ch, f"{prefix}__rdb{r}")
    out = MultiplyBeta(_RESIDUAL_SCALE, name=f"{prefix}__beta")(out)
    return L.Add(name=f"{prefix}__out")([out, x])


def build(
    scale: int = 4,
    num_feat: int = 64,
    num_block: int = 23,
    num_grow_ch: int = 32,
    num_in_ch: int = 3,
    num_out_ch: int = 3,
) -> keras.Model:
    """RRDBNet for `scale` 4, 2 or 1 (BasicSR defaults: 64 features, 23 blocks, growth 32).

    Input [N, H, W, num_in_ch] float32; H and W must be multiples of 4 / scale.
    """
    if scale not in _UNSHUFFLE:
        raise BadInput(f"rrdbnet supports scale 4, 2 or 1, not {scale}")
    inp = L.Input((None, None, num_in_ch), name="lr_input")
    x = inp
    if _UNSHUFFLE[scale] > 1:
        x = PixelUnshuffle(_UNSHUFFLE[scale], name="pixel_unshuffle")(x)
    feat = _conv(num_feat, "conv_first")(x)
    body = feat
    for n in range(num_block):
        body = _rrdb(body, num_feat, num_grow_ch, f"body__{n}")
    body = _conv(num_feat, "conv_body")(body)
    feat = L.Add(name="body_residual")([feat, body])
    for k in (1, 2):
        feat = L.UpSampling2D(2, interpolation="nearest", name=f"upsample{k}")(feat)
        feat = L.LeakyReLU(0.2, name=f"conv_up{k}__lrelu")(_conv(num_feat, f"conv_up{k}")(feat))
    feat = L.LeakyReLU(0.2, name="conv_hr__lrelu")(_conv(num_feat, "conv_hr")(feat))
    out = _conv(num_out_ch, "conv_last")(feat)
    return keras.Model(inp, out, name="rrdbnet")


def torch_name(layer_name: str, suffix: str) -> str:
    """BasicSR parameter name of a Keras layer's variable ('kernel' or 'bias')."""
    return layer_name.replace("__", ".") + (".weight" if suffix == "kernel" else ".bias")


def _targets(model: keras.Model) -> dict[str, Target]:
    unshuffle = next((l.scale for l in model.layers if isinstance(l, PixelUnshuffle)), 1)
    targets = {}
    for layer in model.layers:
        for var in layer.weights:
            suffix = variable_suffix(var)
            shape = tuple(var.shape)
            if suffix == "kernel":
                h, w, i, o = shape
                perm = (
                    torch_to_tf_depth_order(i, unshuffle)
                    if layer.name == "conv_first" and unshuffle > 1
                    else slice(None)
                )
                convert = lambda a, perm=perm: a.transpose(2, 3, 1, 0)[:, :, perm, :]
                source_shape = (o, i, h, w)
            else:
                convert, source_shape = (lambda a: a), shape
            targets[torch_name(layer.name, suffix)] = Target(var, source_shape, convert)
    return targets


def load(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Assign a BasicSR RRDBNet state dict (OIHW kernels) to a model from `build`."""
    assign_weights("rrdbnet", _targets(model), weights)


_BLOCK = re.compile(r"^body\.(\d+)\.rdb1\.conv1\.weight$")


def detect(shapes: dict[str, tuple]) -> dict | None:
    """Params of a BasicSR RRDBNet state dict, or None if the names are not RRDBNet's."""
    if "conv_first.weight" not in shapes or "conv_last.weight" not in shapes:
        return None
    blocks = [int(m[1]) for m in map(_BLOCK.match, shapes) if m]
    if not blocks:
        return None
    num_feat, in_ch = shapes["conv_first.weight"][:2]
    num_out_ch = shapes["conv_last.weight"][0]
    scales = {3 * f * f: s for s, f in _UNSHUFFLE.items()}
    if in_ch not in scales or num_out_ch != 3:
        raise BadInput(
            f"rrdbnet: conv_first.weight takes {in_ch} channels and conv_last.weight gives "
            f"{num_out_ch}; srjs supports RGB in (3, 12 or 48 after pixel-unshuffle) and RGB out"
        )
    return {
        "scale": scales[in_ch],
        "num_feat": int(num_feat),
        "num_block": max(blocks) + 1,
        "num_grow_ch": int(shapes[f"body.{min(blocks)}.rdb1.conv1.weight"][0]),
        "num_in_ch": 3,
        "num_out_ch": 3,
    }


SPEC = ArchSpec(name="rrdbnet", default_value_range=(0, 1), build=build, detect=detect, load=load)
