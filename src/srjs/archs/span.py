"""SPAN (Swift Parameter-free Attention Network, NTIRE 2024 efficient SR) in tf_keras.

Matches spandrel's `SPAN` at inference. Each `Conv3XC` is a train-time block (a 1x1 shortcut
`sk` plus a 1x1 -> 3x3 -> 1x1 chain `conv.0..2`) that is linear, so at inference it is one
3x3 conv: spandrel recomputes `eval_conv` from the branches on every eval forward
(`update_params`) and ignores the stored `eval_conv` weights; `load` does the same fold once
(in float64), so the graph holds one plain Conv2D per Conv3XC.

Keras layer names follow the PyTorch module path with '.' -> '__' ('block_3.c2_r' -> layer
'block_3__c2_r'). Layers whose weights are constants set at build time (the input
normalisation and the attention's -0.5) start with srvgg's `FIXED_PREFIX`: never loaded, and
`srjs optimize` keeps them float32.

What the weights cannot tell: `img_range` and `rgb_mean` (the input is mapped to
(x - rgb_mean) * img_range; the output is not mapped back). spandrel takes 255 and DIV2K's
mean; so does srjs, and records them as assumed (`--arch-param img_range=1` overrides).
A `no_norm` buffer in the checkpoint means no normalisation at all.
"""
from __future__ import annotations

import numpy as np

from srjs.archs import ArchSpec, check_weights, shape_errors_as_bad_input
from srjs.archs.layers import PixelShuffle, torch_to_tf_depth_order
from srjs.archs.srvgg import FIXED_PREFIX
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers
NUM_BLOCKS = 6  # SPAN always has block_1 .. block_6
FIXED = FIXED_PREFIX  # constant layers (set at build time, never loaded, kept float32 by optimize)
DEFAULT_IMG_RANGE = 255.0
DEFAULT_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K's mean, as in SPAN's training code
_CONV3XC_GAIN = 2  # every Conv3XC in SPAN is built with gain1=2


def _constant_affine(x, weight, bias, name: str, fixed: list):
    """x * weight + bias per channel, as a 1x1 DepthwiseConv2D with constant weights (TF.js
    layers has no Subtract or per-channel Rescaling); frozen so fine-tuning leaves it alone."""
    channels = int(x.shape[-1])
    layer = L.DepthwiseConv2D(1, name=FIXED + name, trainable=False)
    fixed.append((layer.name, [np.broadcast_to(np.float32(weight), (channels,)).reshape(1, 1, channels, 1).copy(),
                               np.broadcast_to(np.float32(bias), (channels,)).astype(np.float32).copy()]))
    return layer(x)


def _spab(x, channels: int, prefix: str, fixed: list):
    """SPAB: three folded Conv3XC with SiLU between, then (out3 + x) * (sigmoid(out3) - 0.5).

    Returns (block output, out1). spandrel's SiLU is in-place, so the `out1` it returns (block 6's
    feeds conv_cat) is c1_r's output after the activation, not before."""
    y = L.Conv2D(channels, 3, padding="same", name=f"{prefix}__c1_r")(x)
    out1 = y = L.Activation("swish", name=f"{prefix}__act1_1")(y)
    y = L.Conv2D(channels, 3, padding="same", name=f"{prefix}__c2_r")(y)
    y = L.Activation("swish", name=f"{prefix}__act1_2")(y)
    out3 = L.Conv2D(channels, 3, padding="same", name=f"{prefix}__c3_r")(y)
    sig = L.Activation("sigmoid", name=f"{prefix}__sigmoid")(out3)
    att = _constant_affine(sig, 1.0, -0.5, f"{prefix}__sim_att", fixed)
    residual = L.Add(name=f"{prefix}__residual")([out3, x])
    return L.Multiply(name=f"{prefix}__out")([residual, att]), out1


def build(scale: int = 4, feature_channels: int = 48, num_in_ch: int = 3, num_out_ch: int = 3,
          norm: bool = True, img_range: float = DEFAULT_IMG_RANGE,
          rgb_mean: tuple | list = DEFAULT_RGB_MEAN) -> keras.Model:
    """SPAN for `scale` 1-4 (any integer >= 1): input [N, H, W, num_in_ch] -> [N, sH, sW, num_out_ch].

    norm: map the input to (x - rgb_mean) * img_range first (rgb_mean has num_in_ch values).
    """
    if int(scale) < 1 or int(feature_channels) < 1:
        raise BadInput(f"span: scale {scale} and feature_channels {feature_channels} must be >= 1")
    rgb_mean = [float(v) for v in (rgb_mean if isinstance(rgb_mean, (list, tuple)) else [rgb_mean])]
    if norm and len(rgb_mean) != num_in_ch:
        raise BadInput(f"span: rgb_mean has {len(rgb_mean)} values but the model takes {num_in_ch} "
                       f"channels (override with --arch-param rgb_mean=[...])")
    fixed: list = []
    inp = L.Input((None, None, num_in_ch), name="lr_input")
    x = inp
    if norm:
        x = _constant_affine(x, img_range, -np.asarray(rgb_mean) * float(img_range), "normalize", fixed)
    out_feature = L.Conv2D(feature_channels, 3, padding="same", name="conv_1")(x)
    block_outputs, out1 = [], None
    y = out_feature
    for b in range(1, NUM_BLOCKS + 1):
        y, out1 = _spab(y, feature_channels, f"block_{b}", fixed)
        block_outputs.append(y)
    out_b6 = L.Conv2D(feature_channels, 3, padding="same", name="conv_2")(block_outputs[-1])
    cat = L.Concatenate(axis=-1, name="cat")([out_feature, out_b6, block_outputs[0], out1])
    out = L.Conv2D(feature_channels, 1, name="conv_cat")(cat)
    out = L.Conv2D(num_out_ch * scale * scale, 3, padding="same", name="upsampler__0")(out)
    if scale > 1:
        out = PixelShuffle(scale, name="upsampler")(out)
    model = keras.Model(inp, out, name="span")
    for layer_name, values in fixed:
        model.get_layer(layer_name).set_weights(values)
    return model


# --- weights --------------------------------------------------------------------------------

def _conv3xc_names(prefix: str, c_in: int, c_out: int) -> dict[str, tuple]:
    g = _CONV3XC_GAIN
    shapes = {
        "sk": (c_out, c_in, 1, 1),
        "conv.0": (c_in * g, c_in, 1, 1),
        "conv.1": (c_out * g, c_in * g, 3, 3),
        "conv.2": (c_out, c_out * g, 1, 1),
        "eval_conv": (c_out, c_in, 3, 3),
    }
    out = {}
    for part, shape in shapes.items():
        out[f"{prefix}.{part}.weight"] = shape
        out[f"{prefix}.{part}.bias"] = (shape[0],)
    return out


def _conv3xc_layers(feature_channels: int, num_in_ch: int) -> dict[str, tuple[int, int]]:
    """Keras layer name -> (c_in, c_out) of every Conv3XC, in model order."""
    f = feature_channels
    layers = {"conv_1": (num_in_ch, f)}
    for b in range(1, NUM_BLOCKS + 1):
        for c in ("c1_r", "c2_r", "c3_r"):
            layers[f"block_{b}__{c}"] = (f, f)
    layers["conv_2"] = (f, f)
    return layers


def expected_shapes(scale: int, feature_channels: int, num_in_ch: int, num_out_ch: int,
                    norm: bool) -> dict[str, tuple]:
    """Every weight name of spandrel's SPAN state dict with its shape, in model order."""
    shapes: dict[str, tuple] = {}
    if not norm:
        shapes["no_norm"] = (1,)
    for layer, (c_in, c_out) in _conv3xc_layers(feature_channels, num_in_ch).items():
        shapes.update(_conv3xc_names(layer.replace("__", "."), c_in, c_out))
    f = feature_channels
    shapes.update({"conv_cat.weight": (f, 4 * f, 1, 1), "conv_cat.bias": (f,),
                   "upsampler.0.weight": (num_out_ch * scale * scale, f, 3, 3),
                   "upsampler.0.bias": (num_out_ch * scale * scale,)})
    return shapes


def fold_conv3xc(w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(kernel OIHW [c_out, c_in, 3, 3], bias) of one Conv3XC from its branch weights
    {'sk.weight', 'sk.bias', 'conv.0.weight', ...}: what spandrel's update_params computes.

    conv.2(conv.1(conv.0(x))) + sk(x) with 1x1 outer convs is one 3x3 conv whose kernel is
    W2[o, m] * W1[m, g, h, w] * W0[g, i] summed over m, g, plus sk at the centre tap.
    """
    w0, b0 = (np.asarray(w[f"conv.0.{k}"], np.float64) for k in ("weight", "bias"))
    w1, b1 = (np.asarray(w[f"conv.1.{k}"], np.float64) for k in ("weight", "bias"))
    w2, b2 = (np.asarray(w[f"conv.2.{k}"], np.float64) for k in ("weight", "bias"))
    sk_w, sk_b = (np.asarray(w[f"sk.{k}"], np.float64) for k in ("weight", "bias"))
    kernel = np.einsum("om,mghw,gi->oihw", w2[:, :, 0, 0], w1, w0[:, :, 0, 0])
    kernel[:, :, 1, 1] += sk_w[:, :, 0, 0]
    mid_bias = np.einsum("mghw,g->m", w1, b0) + b1
    bias = w2[:, :, 0, 0] @ mid_bias + b2 + sk_b
    return kernel, bias


def _oihw_to_hwio(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(2, 3, 1, 0)).astype(np.float32)


def load(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Assign a spandrel SPAN state dict (OIHW kernels) to a model from `build`, folding each
    Conv3XC's branches into its one 3x3 conv (the stored eval_conv is checked, not used)."""
    norm = any(l.name == FIXED + "normalize" for l in model.layers)
    feature_channels = model.get_layer("conv_1").filters
    num_in_ch = int(model.input_shape[-1])
    up = model.get_layer("upsampler__0")
    scale = next((l.scale for l in model.layers if isinstance(l, PixelShuffle)), 1)
    num_out_ch = up.filters // (scale * scale)
    check_weights("span", expected_shapes(scale, feature_channels, num_in_ch, num_out_ch, norm), weights)
    values = []
    for layer, _ in _conv3xc_layers(feature_channels, num_in_ch).items():
        prefix = layer.replace("__", ".") + "."
        kernel, bias = fold_conv3xc({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
        values.append((model.get_layer(layer), [_oihw_to_hwio(kernel), bias.astype(np.float32)]))
    values.append((model.get_layer("conv_cat"),
                   [_oihw_to_hwio(np.asarray(weights["conv_cat.weight"])), np.asarray(weights["conv_cat.bias"], np.float32)]))
    perm = torch_to_tf_depth_order(up.filters, scale) if scale > 1 else slice(None)
    values.append((up, [_oihw_to_hwio(np.asarray(weights["upsampler.0.weight"]))[..., perm],
                        np.asarray(weights["upsampler.0.bias"], np.float32)[perm]]))
    keras.backend.batch_set_value([(var, value) for layer, vals in values for var, value in zip(layer.weights, vals)])


_REQUIRED = ("conv_1.sk.weight", "block_1.c1_r.sk.weight", "block_1.c1_r.eval_conv.weight",
             "block_1.c3_r.eval_conv.weight", "conv_cat.weight", "conv_2.sk.weight",
             "conv_2.eval_conv.weight", "upsampler.0.weight")  # spandrel's SPAN key condition


def _scale_and_out_channels(packed: int, num_in_ch: int) -> tuple[int, int] | None:
    """(scale, out channels) with scale^2 * out = packed, trying out = in, 3, 4, 1 (spandrel's order)."""
    for channels in (num_in_ch, 3, 4, 1):
        if packed % channels == 0:
            root = int(np.sqrt(packed // channels))
            if root * root == packed // channels:
                return root, channels
    return None


@shape_errors_as_bad_input("span")
def detect(shapes: dict[str, tuple]) -> dict | None:
    """Params of a SPAN state dict, or None if the names are not SPAN's."""
    if not all(k in shapes for k in _REQUIRED):
        return None
    feature_channels, num_in_ch = shapes["conv_1.sk.weight"][:2]
    found = _scale_and_out_channels(shapes["upsampler.0.weight"][0], num_in_ch)
    if found is None:
        raise BadInput(f"span: upsampler.0.weight gives {shapes['upsampler.0.weight'][0]} channels, "
                       "not scale^2 x 1, 3 or 4")
    scale, num_out_ch = found
    norm = "no_norm" not in shapes
    params = {"scale": scale, "feature_channels": int(feature_channels), "num_in_ch": int(num_in_ch),
              "num_out_ch": int(num_out_ch), "norm": norm}
    if norm:
        params.update(img_range=DEFAULT_IMG_RANGE, rgb_mean=list(DEFAULT_RGB_MEAN))
    return params


def assumed(shapes: dict[str, tuple], params: dict) -> dict[str, str]:
    """img_range and rgb_mean (only used with norm) are not in the weights: spandrel's defaults."""
    if not params.get("norm"):
        return {}
    why = "not in the weights; spandrel's default (SPAN's training code)"
    return {"img_range": f"{why}: {DEFAULT_IMG_RANGE:g}", "rgb_mean": f"{why}: {list(DEFAULT_RGB_MEAN)}"}


SPEC = ArchSpec(name="span", default_value_range=(0, 1), build=build, detect=detect, load=load,
                assumed=assumed)
