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
    shuffle_scale: int | None = None,
) -> keras.Model:
    """SRVGGNetCompact: conv+act, num_conv x (conv+act), conv to out*s*s, shuffle, + nearest input.

    Input [N, H, W, num_in_ch] float32 -> [N, H*scale, W*scale, num_out_ch].
    shuffle_scale (default: scale) is the network's own factor; when it is larger, a fixed
    bicubic downscale by scale/shuffle_scale follows, as in realesrgan-ncnn-vulkan's
    animevideov3 x2/x3 files (the x4 network, then ncnn's Interp bicubic).
    """
    shuffle = int(shuffle_scale or scale)
    if shuffle < scale:
        raise BadInput(f"srvgg shuffle_scale {shuffle} is below scale {scale}")
    inp = L.Input((None, None, num_in_ch), name="lr_input")
    x = inp
    for i in range(num_conv + 1):
        x = L.Conv2D(num_feat, 3, padding="same", name=f"body__{2 * i}")(x)
        x = _activation(act_type, num_feat, f"body__{2 * i + 1}")(x)
    last = 2 * num_conv + 2
    x = L.Conv2D(num_out_ch * shuffle * shuffle, 3, padding="same", name=f"body__{last}")(x)
    base = inp
    if shuffle > 1:  # x1 (restoration) models: PyTorch's PixelShuffle(1) and nearest x1 are identities
        x = PixelShuffle(shuffle, name="upsampler")(x)
        base = L.UpSampling2D(shuffle, interpolation="nearest", name="base_upsample")(inp)
    out = L.Add(name="add_base")([x, base])
    fixed: list = []
    if shuffle != scale:
        out = bicubic_downscale(out, num_out_ch, shuffle, scale, fixed)
    model = keras.Model(inp, out, name="srvgg")
    for layer_name, values in fixed:
        model.get_layer(layer_name).set_weights(values)
    return model


FIXED_PREFIX = "resize__"  # layers with constant weights, set at build time, never loaded


def cubic_phases(src: int, dst: int) -> tuple[np.ndarray, int]:
    """(k [P, K], S): ncnn/OpenCV bicubic (A = -0.75) resize of `src` px to `dst` px per period.

    Output pixel o of each period of P = dst/g outputs reads input pixels S*m + t (t < K) of the
    input padded by one edge pixel on each side (ncnn clamps taps to the edge), S = src/g.
    """
    g = math.gcd(src, dst)
    period, stride = dst // g, src // g
    taps = []
    for o in range(period):
        fx = (o + 0.5) * stride / period - 0.5
        sx = math.floor(fx)
        t = fx - sx
        a = -0.75
        c0 = a * (t + 1) ** 3 - 5 * a * (t + 1) ** 2 + 8 * a * (t + 1) - 4 * a
        c1 = (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
        c2 = (a + 2) * (1 - t) ** 3 - (a + 3) * (1 - t) ** 2 + 1
        taps.append((sx, [c0, c1, c2, 1 - c0 - c1 - c2]))  # padded index of tap -1 is sx
    width = max(sx for sx, _ in taps) + 4
    k = np.zeros((period, width), np.float32)
    for o, (sx, coeffs) in enumerate(taps):
        k[o, sx:sx + 4] = coeffs
    return k, stride


def _edge_pad(x, channels: int, axis: int, fixed: list):
    """Pad one pixel on both sides of H (axis 1) or W (axis 2) repeating the edge, from layers
    TF.js has (no MirrorPad layer): zero-pad, then add each border pixel's inner neighbour
    (a [1, 0, 1] depthwise conv) where a mask of the padding is 1.
    """
    tag = "h" if axis == 1 else "w"
    pad = ((1, 1), (0, 0)) if axis == 1 else ((0, 0), (1, 1))
    kernel = (3, 1) if axis == 1 else (1, 3)

    def affine(name, weight):  # weight * x + 1 per channel (tfjs-layers has no Subtract)
        fixed.append((name, [np.full((1, 1, channels, 1), weight, np.float32), np.ones(channels, np.float32)]))
        return L.DepthwiseConv2D(1, name=name)

    zero = L.ZeroPadding2D(pad, name=f"{FIXED_PREFIX}zpad_{tag}")(x)
    ones = affine(f"{FIXED_PREFIX}ones_{tag}", 0.0)(x)
    inner = L.ZeroPadding2D(pad, name=f"{FIXED_PREFIX}inner_{tag}")(ones)
    border = affine(f"{FIXED_PREFIX}border_{tag}", -1.0)(inner)  # 1 on the padding, 0 inside
    neighbours = L.DepthwiseConv2D(kernel, padding="same", use_bias=False, name=f"{FIXED_PREFIX}nbr_{tag}")
    fixed.append((neighbours.name, [np.tile(np.array([1, 0, 1], np.float32).reshape(*kernel, 1, 1),
                                            (1, 1, channels, 1))]))
    edge = L.Multiply(name=f"{FIXED_PREFIX}edge_{tag}")([border, neighbours(zero)])
    return L.Add(name=f"{FIXED_PREFIX}pad_{tag}")([zero, edge])


def bicubic_downscale(x, channels: int, src: int, dst: int, fixed: list):
    """Resize by dst/src with ncnn's bicubic (edge-clamped): a fixed strided conv per period,
    then depth_to_space to interleave the P x P output phases."""
    k, stride = cubic_phases(src, dst)
    period, width = k.shape
    x = _edge_pad(_edge_pad(x, channels, 2, fixed), channels, 1, fixed)
    weights = np.zeros((width, width, channels, period * period * channels), np.float32)
    for i in range(period):
        for j in range(period):
            for c in range(channels):
                weights[:, :, c, (i * period + j) * channels + c] = np.outer(k[i], k[j])
    conv = L.Conv2D(period * period * channels, width, strides=stride, use_bias=False,
                    name=f"{FIXED_PREFIX}conv")
    fixed.append((conv.name, [weights]))
    x = conv(x)
    return PixelShuffle(period, name=f"{FIXED_PREFIX}shuffle")(x) if period > 1 else x


def torch_name(layer_name: str, suffix: str) -> str:
    """PyTorch parameter name of a Keras layer's variable ('kernel', 'bias' or 'alpha')."""
    return layer_name.replace("__", ".") + (".bias" if suffix == "bias" else ".weight")


def _targets(model: keras.Model) -> dict[str, Target]:
    shuffles = [l for l in model.layers if l.name == "upsampler"]
    scale = shuffles[0].scale if shuffles else 1
    learned = [l for l in model.layers if not l.name.startswith(FIXED_PREFIX)]
    last_conv = [l for l in learned if isinstance(l, L.Conv2D)][-1].name
    targets = {}
    for layer in learned:
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

    The last conv gives out_ch * scale^2 channels; like spandrel, srjs takes the first of
    (input channels, 3, 4, 1) that leaves a square scale. act_type is 'prelu' when the
    activations carry weights; relu and leakyrelu have none and cannot be told apart from
    weights, so 'relu' is taken (see `assumed`) and --arch-param act_type=leakyrelu overrides.
    """
    matches = [_NAME.match(name) for name in shapes]
    if not shapes or not all(matches) or "body.0.weight" not in shapes:
        return None
    convs = sorted(int(m[1]) for m in matches if m[2] == "weight" and len(shapes[m[0]]) == 4)
    if convs != list(range(0, convs[-1] + 1, 2)) or len(convs) < 2:
        return None
    num_feat, in_ch = (int(v) for v in shapes["body.0.weight"][:2])
    packed = int(shapes[f"body.{convs[-1]}.weight"][0])
    for out_ch in dict.fromkeys((in_ch, 3, 4, 1)):
        scale = math.isqrt(packed // out_ch)
        if packed % out_ch == 0 and scale * scale * out_ch == packed:
            break
    else:
        raise BadInput(f"srvgg: body.{convs[-1]}.weight gives {packed} channels, not out_ch * scale^2 "
                       "for 1, 3 or 4 output channels")
    return {
        "scale": scale,
        "num_feat": num_feat,
        "num_conv": len(convs) - 2,
        "act_type": "prelu" if "body.1.weight" in shapes else "relu",
        "num_in_ch": in_ch,
        "num_out_ch": out_ch,
    }


def assumed(shapes: dict[str, tuple], params: dict) -> dict[str, str]:
    """{'act_type': why} when the activations have no weights (relu or leakyrelu)."""
    if params.get("act_type") == "prelu":
        return {}
    return {"act_type": "the activations carry no weights, so relu and leakyrelu (slope 0.1) look "
                        "alike; 'relu' was taken (override: --arch-param act_type=leakyrelu)"}


SPEC = ArchSpec(name="srvgg", default_value_range=(0, 1), build=build, detect=detect, load=load,
                assumed=assumed)
