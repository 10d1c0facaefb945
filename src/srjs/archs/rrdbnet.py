"""RRDBNet (ESRGAN, ESRGAN+, Real-ESRGAN, BSRGAN) in tf_keras, matching BasicSR's rrdbnet_arch.py.

Layer names map 1:1 and reversibly to BasicSR parameter names: a Keras layer is named after its
PyTorch module path with '.' replaced by '__' (BasicSR names never contain '__'), and the
variable suffix maps `kernel` <-> `weight`, `bias` <-> `bias`:

    body.0.rdb1.conv1.weight  <->  layer 'body__0__rdb1__conv1', variable 'kernel'

The other key layouts (old-arch ESRGAN, BSRGAN / RealSR) are renamed to these names by
`srjs.convert.keymaps` before detection, so everything here speaks BasicSR.

The network: an optional pixel-unshuffle by `unshuffle` (Real-ESRGAN x2plus: 2, x1: 4), conv_first,
the RRDB trunk, conv_body, then one (nearest x2, conv_upN, lrelu) per factor of two of
scale * unshuffle (none for old-arch x1, three for x8), conv_hr, conv_last. PyTorch kernels are
OIHW, Keras HWIO; `load` transposes. The graph uses space_to_depth order and `load` permutes
conv_first's input channels into it. ESRGAN+ (`plus`) adds a bias-free 1x1 conv to each dense
block (x2 += conv1x1(x), x4 += x2); its Gaussian noise is a training-time no-op.
"""
from __future__ import annotations

import re

import numpy as np

from srjs.archs import ArchSpec, Target, assign_weights, variable_suffix
from srjs.archs.layers import MultiplyBeta, PixelUnshuffle, torch_to_tf_depth_order
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers
_BASICSR_UNSHUFFLE = {4: 1, 2: 2, 1: 4}  # BasicSR's fixed choice per scale (two upconvs always)
_RESIDUAL_SCALE = 0.2


def _conv(filters: int, name: str) -> keras.layers.Layer:
    return L.Conv2D(filters, 3, padding="same", name=name)


def _dense_block(x, num_feat: int, num_grow_ch: int, prefix: str, plus: bool):
    """ResidualDenseBlock: 5 convs, dense concat, LeakyReLU 0.2 after conv1-4 (+ ESRGAN+ paths)."""
    feats = [x]
    for k in range(1, 5):
        inp = feats[0] if k == 1 else L.Concatenate(axis=-1, name=f"{prefix}__cat{k}")(feats)
        y = L.LeakyReLU(0.2, name=f"{prefix}__lrelu{k}")(_conv(num_grow_ch, f"{prefix}__conv{k}")(inp))
        if plus and k == 2:
            skip = L.Conv2D(num_grow_ch, 1, use_bias=False, name=f"{prefix}__conv1x1")(x)
            y = L.Add(name=f"{prefix}__plus2")([y, skip])
        elif plus and k == 4:
            y = L.Add(name=f"{prefix}__plus4")([y, feats[2]])
        feats.append(y)
    y = _conv(num_feat, f"{prefix}__conv5")(L.Concatenate(axis=-1, name=f"{prefix}__cat5")(feats))
    y = MultiplyBeta(_RESIDUAL_SCALE, name=f"{prefix}__beta")(y)
    return L.Add(name=f"{prefix}__out")([y, x])


def _rrdb(x, num_feat: int, num_grow_ch: int, prefix: str, plus: bool):
    out = x
    for r in (1, 2, 3):
        out = _dense_block(out, num_feat, num_grow_ch, f"{prefix}__rdb{r}", plus)
    out = MultiplyBeta(_RESIDUAL_SCALE, name=f"{prefix}__beta")(out)
    return L.Add(name=f"{prefix}__out")([out, x])


def upconv_count(scale: int, unshuffle: int) -> int:
    """How many (nearest x2, conv) stages take the unshuffled features to `scale`."""
    total = int(scale) * int(unshuffle)
    if total < 1 or total & (total - 1):
        raise BadInput(f"rrdbnet: scale {scale} x unshuffle {unshuffle} is not a power of two")
    return total.bit_length() - 1


def build(
    scale: int = 4,
    num_feat: int = 64,
    num_block: int = 23,
    num_grow_ch: int = 32,
    num_in_ch: int = 3,
    num_out_ch: int = 3,
    unshuffle: int | None = None,
    plus: bool = False,
) -> keras.Model:
    """RRDBNet (BasicSR defaults: 64 features, 23 blocks, growth 32).

    scale: 1, 2, 4, 8, 16 (any power of two). unshuffle: the pixel-unshuffle factor before
    conv_first (1, 2 or 4); None takes BasicSR's (x4: 1, x2: 2, x1: 4; others 1).
    Input [N, H, W, num_in_ch] float32, H and W multiples of `unshuffle`;
    output [N, H*scale, W*scale, num_out_ch].
    """
    unshuffle = int(unshuffle or _BASICSR_UNSHUFFLE.get(int(scale), 1))
    if unshuffle not in (1, 2, 4):
        raise BadInput(f"rrdbnet: unshuffle must be 1, 2 or 4, not {unshuffle}")
    ups = upconv_count(scale, unshuffle)
    inp = L.Input((None, None, int(num_in_ch)), name="lr_input")
    x = inp
    if unshuffle > 1:
        x = PixelUnshuffle(unshuffle, name="pixel_unshuffle")(x)
    feat = _conv(num_feat, "conv_first")(x)
    body = feat
    for n in range(num_block):
        body = _rrdb(body, num_feat, num_grow_ch, f"body__{n}", bool(plus))
    body = _conv(num_feat, "conv_body")(body)
    feat = L.Add(name="body_residual")([feat, body])
    for k in range(1, ups + 1):
        feat = L.UpSampling2D(2, interpolation="nearest", name=f"upsample{k}")(feat)
        feat = L.LeakyReLU(0.2, name=f"conv_up{k}__lrelu")(_conv(num_feat, f"conv_up{k}")(feat))
    feat = L.LeakyReLU(0.2, name="conv_hr__lrelu")(_conv(num_feat, "conv_hr")(feat))
    out = _conv(int(num_out_ch), "conv_last")(feat)
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
    """Assign a BasicSR-named RRDBNet state dict (OIHW kernels) to a model from `build`."""
    assign_weights("rrdbnet", _targets(model), weights)


_BLOCK = re.compile(r"^body\.(\d+)\.rdb1\.conv1\.weight$")
_UPCONV = re.compile(r"^conv_up(\d+)\.weight$")


def detect(shapes: dict[str, tuple]) -> dict | None:
    """Params of a BasicSR-named RRDBNet state dict, or None if the names are not RRDBNet's.

    Every value comes from shapes, as spandrel's ESRGAN loader reads them: conv_first's input
    channels are the image's times unshuffle^2 when they are 4x or 16x conv_last's output
    channels (Real-ESRGAN x2plus / x1), the upconv count gives scale * unshuffle.
    """
    if "conv_first.weight" not in shapes or "conv_last.weight" not in shapes:
        return None
    blocks = [int(m[1]) for m in map(_BLOCK.match, shapes) if m]
    if not blocks:
        return None
    num_feat, packed_in = (int(v) for v in shapes["conv_first.weight"][:2])
    num_out_ch = int(shapes["conv_last.weight"][0])
    unshuffle = 1
    for factor in (2, 4):
        if packed_in == num_out_ch * factor * factor:
            unshuffle = factor
    ups = max((int(m[1]) for m in map(_UPCONV.match, shapes) if m), default=0)
    if 2 ** ups < unshuffle:
        raise BadInput(f"rrdbnet: conv_first takes {packed_in} channels (a {unshuffle}x pixel-unshuffle "
                       f"of {num_out_ch}) but only {ups} upconv(s) follow: the output would be smaller")
    return {
        "scale": 2 ** ups // unshuffle,
        "num_feat": num_feat,
        "num_block": max(blocks) + 1,
        "num_grow_ch": int(shapes[f"body.{min(blocks)}.rdb1.conv1.weight"][0]),
        "num_in_ch": packed_in // (unshuffle * unshuffle),
        "num_out_ch": num_out_ch,
        "unshuffle": unshuffle,
        "plus": any(name.endswith(".conv1x1.weight") for name in shapes),
    }


SPEC = ArchSpec(name="rrdbnet", default_value_range=(0, 1), build=build, detect=detect, load=load)
