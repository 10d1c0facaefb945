"""Real-CUGAN (bilibili's UpCunet v3: 2x, 3x, 4x, 2x fast; 'pro' checkpoints) in tf_keras.

Matches spandrel's `UpCunet2x`, `UpCunet3x`, `UpCunet4x` and `UpCunet2x_fast` at inference
(alpha = 1). Two U-Nets of valid (unpadded) convs: the input is reflect-padded (18 / 14 / 19 /
38 px, and rounded up to a multiple of 2 or 4), the U-Nets crop their skip connections
(Cropping2D), and the result is cropped back to the input's size times the scale. Torch
ConvTranspose2d with padding p is a 'valid' Conv2DTranspose followed by Cropping2D(p).
The squeeze-excitation blocks average over the whole image, so the output of a tile depends on
the tile: tiled upscaling of Real-CUGAN is not seam-free (as in its own tiled implementations).

Keras layer names follow the PyTorch module path with '.' -> '__'; ReflectPad and CropToInput
are srjs custom layers (srjs.archs.layers; registered in TF.js by js/harness/layers.mjs).
"""
from __future__ import annotations

import numpy as np

from srjs.archs import ArchSpec, check_weights, shape_errors_as_bad_input, variable_suffix
from srjs.archs.layers import CropToInput, PixelShuffle, PixelUnshuffle, ReflectPad, torch_to_tf_depth_order
from srjs.archs.srvgg import FIXED_PREFIX
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers
FIXED = FIXED_PREFIX  # constant layers (set at build time, never loaded, kept float32 by optimize)
_PRO = (0.7, 0.15)  # pro checkpoints take x * 0.7 + 0.15 and give (y - 0.15) / 0.7
# variant -> (reflect pad, multiple, unet1 bottom deconv (kernel, stride, torch padding) or None)
_VARIANTS = {"2x": (18, 2, (4, 2, 3)), "3x": (14, 4, (5, 3, 2)), "4x": (19, 2, (4, 2, 3)),
             "2x_fast": (38, 2, (4, 2, 3))}


def _lrelu(x, name):
    return L.LeakyReLU(0.1, name=name)(x)


def _conv(x, filters, kernel, name, strides=1):
    return L.Conv2D(filters, kernel, strides=strides, padding="valid", name=name)(x)


def _deconv(x, filters, kernel, stride, name):
    return L.Conv2DTranspose(filters, kernel, strides=stride, padding="valid", name=name)(x)


def _unet_conv(x, prefix: str, mid: int, out: int, se: bool):
    x = _lrelu(_conv(x, mid, 3, f"{prefix}__conv__0"), f"{prefix}__conv__1")
    z = _lrelu(_conv(x, out, 3, f"{prefix}__conv__2"), f"{prefix}__conv__3")
    if not se:
        return z
    s = L.GlobalAveragePooling2D(name=f"{prefix}__seblock__mean")(z)
    s = L.Reshape((1, 1, out), name=f"{prefix}__seblock__keepdims")(s)
    s = L.ReLU(name=f"{prefix}__seblock__relu")(_conv(s, out // 8, 1, f"{prefix}__seblock__conv1"))
    s = L.Activation("sigmoid", name=f"{prefix}__seblock__sigmoid")(_conv(s, out, 1, f"{prefix}__seblock__conv2"))
    return L.Multiply(name=f"{prefix}__seblock")([z, s])


def _unet1(x, out_ch: int, bottom: tuple):
    p = "unet1"
    x1 = _unet_conv(x, f"{p}__conv1", 32, 64, se=False)
    x2 = _lrelu(_conv(x1, 64, 2, f"{p}__conv1_down", strides=2), f"{p}__conv1_down__lrelu")
    x1 = L.Cropping2D(4, name=f"{p}__crop1")(x1)
    x2 = _unet_conv(x2, f"{p}__conv2", 128, 64, se=True)
    x2 = _lrelu(_deconv(x2, 64, 2, 2, f"{p}__conv2_up"), f"{p}__conv2_up__lrelu")
    x3 = _lrelu(_conv(L.Add(name=f"{p}__add")([x1, x2]), 64, 3, f"{p}__conv3"), f"{p}__conv3__lrelu")
    kernel, stride, pad = bottom
    return L.Cropping2D(pad, name=f"{p}__conv_bottom__crop")(_deconv(x3, out_ch, kernel, stride, f"{p}__conv_bottom"))


def _unet2(x, out_ch: int):
    p = "unet2"
    x1 = _unet_conv(x, f"{p}__conv1", 32, 64, se=False)
    x2 = _lrelu(_conv(x1, 64, 2, f"{p}__conv1_down", strides=2), f"{p}__conv1_down__lrelu")
    x1 = L.Cropping2D(16, name=f"{p}__crop1")(x1)
    x2 = _unet_conv(x2, f"{p}__conv2", 64, 128, se=True)
    x3 = _lrelu(_conv(x2, 128, 2, f"{p}__conv2_down", strides=2), f"{p}__conv2_down__lrelu")
    x2 = L.Cropping2D(4, name=f"{p}__crop2")(x2)
    x3 = _unet_conv(x3, f"{p}__conv3", 256, 128, se=True)
    x3 = _lrelu(_deconv(x3, 128, 2, 2, f"{p}__conv3_up"), f"{p}__conv3_up__lrelu")
    x4 = _unet_conv(L.Add(name=f"{p}__add4")([x2, x3]), f"{p}__conv4", 64, 64, se=True)
    x4 = _lrelu(_deconv(x4, 64, 2, 2, f"{p}__conv4_up"), f"{p}__conv4_up__lrelu")
    x5 = _lrelu(_conv(L.Add(name=f"{p}__add5")([x1, x4]), 64, 3, f"{p}__conv5"), f"{p}__conv5__lrelu")
    return _conv(x5, out_ch, 3, f"{p}__conv_bottom")


def _affine(x, weight: float, bias: float, name: str, fixed: list):
    channels = int(x.shape[-1])
    layer = L.DepthwiseConv2D(1, name=FIXED + name, trainable=False)
    fixed.append((layer.name, [np.full((1, 1, channels, 1), weight, np.float32), np.full(channels, bias, np.float32)]))
    return layer(x)


def _variant(scale: int, fast: bool) -> str:
    name = f"{scale}x" + ("_fast" if fast else "")
    if name not in _VARIANTS:
        raise BadInput(f"realcugan: no {name} variant (known: {', '.join(_VARIANTS)})")
    return name


def build(scale: int = 2, in_channels: int = 3, out_channels: int = 3, pro: bool = False,
          fast: bool = False) -> keras.Model:
    """UpCunet{scale}x (fast: 2x_fast): input [N, H, W, in_channels] -> [N, sH, sW, out_channels].

    H and W must exceed the reflect padding (18 / 14 / 19 / 38 px), as in PyTorch.
    """
    variant = _variant(scale, fast)
    if pro and fast:
        raise BadInput("realcugan: the 2x fast variant has no pro form")
    pad, multiple, bottom = _VARIANTS[variant]
    fixed: list = []
    inp = L.Input((None, None, in_channels), name="lr_input")
    x = _affine(inp, *_PRO, "pro_in", fixed) if pro else inp
    base = x
    x = ReflectPad(pad, multiple, name="reflect_pad")(x)
    if variant == "2x_fast":
        x = PixelUnshuffle(2, name="inv")(x)
    wide = variant in ("4x", "2x_fast")  # U-Nets at 64 channels, then conv_final + pixel shuffle
    x = _unet1(x, 64 if wide else out_channels, bottom)
    x0 = _unet2(x, 64 if wide else out_channels)
    x = L.Add(name="add")([x0, L.Cropping2D(20, name="crop")(x)])
    if wide:
        x = L.Cropping2D(1, name="conv_final__crop")(_conv(x, 4 * out_channels, 3, "conv_final"))
        x = PixelShuffle(2, name="ps")(x)
    x = CropToInput(scale, name="crop_to_input")([x, inp])
    if wide:
        x = L.Add(name="add_base")([x, L.UpSampling2D(scale, interpolation="nearest", name="base")(base)])
    if pro:
        x = _affine(x, 1 / _PRO[0], -_PRO[1] / _PRO[0], "pro_out", fixed)
    model = keras.Model(inp, x, name="realcugan")
    for name, values in fixed:
        model.get_layer(name).set_weights(values)
    return model


def _learned(model: keras.Model):
    return [layer for layer in model.layers if isinstance(layer, L.Conv2D) and not layer.name.startswith(FIXED)]


def _source_shape(var) -> tuple:
    shape = tuple(var.shape)
    if variable_suffix(var) == "bias":
        return shape
    kh, kw, a, b = shape  # Conv2D (kh, kw, in, out) -> torch (out, in, kh, kw); Conv2DTranspose
    return (b, a, kh, kw)  # (kh, kw, out, in) -> torch ConvTranspose2d (in, out, kh, kw): the same swap


def load(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Assign a spandrel Real-CUGAN state dict to a model from `build` (OIHW convs; torch
    ConvTranspose2d kernels are (in, out, kh, kw), Keras' (kh, kw, out, in): one transpose)."""
    expected: dict[str, tuple] = {}
    if any(layer.name == FIXED + "pro_in" for layer in model.layers):
        expected["pro"] = (1,)
    targets = []
    for layer in _learned(model):
        for var in layer.weights:
            suffix = variable_suffix(var)
            name = layer.name.replace("__", ".") + (".weight" if suffix == "kernel" else ".bias")
            expected[name] = _source_shape(var)
            targets.append((layer, var, name, suffix))
    check_weights("realcugan", expected, weights)
    shuffle = any(isinstance(layer, PixelShuffle) for layer in model.layers)
    unshuffle = any(isinstance(layer, PixelUnshuffle) for layer in model.layers)
    values = []
    for layer, var, name, suffix in targets:
        a = np.asarray(weights[name], np.float32)
        if suffix == "kernel":
            a = a.transpose(2, 3, 1, 0)
            if unshuffle and layer.name == "unet1__conv1__conv__0":
                a = a[:, :, torch_to_tf_depth_order(a.shape[2], 2), :]
        if shuffle and layer.name == "conv_final":
            a = a[..., torch_to_tf_depth_order(a.shape[-1], 2)]
        values.append((var, np.ascontiguousarray(a)))
    keras.backend.batch_set_value(values)


_REQUIRED = ("unet1.conv1.conv.0.weight", "unet1.conv1.conv.2.weight", "unet1.conv1_down.weight",
             "unet1.conv2.conv.0.weight", "unet1.conv2.conv.2.weight", "unet1.conv2.seblock.conv1.weight",
             "unet1.conv2_up.weight", "unet1.conv_bottom.weight", "unet2.conv1.conv.0.weight",
             "unet2.conv1_down.weight", "unet2.conv2.conv.0.weight", "unet2.conv2.seblock.conv1.weight",
             "unet2.conv3.conv.0.weight", "unet2.conv3.seblock.conv1.weight", "unet2.conv3_up.weight",
             "unet2.conv4.conv.0.weight", "unet2.conv4_up.weight", "unet2.conv5.weight",
             "unet2.conv_bottom.weight")  # spandrel's RealCUGAN key condition


@shape_errors_as_bad_input("realcugan")
def detect(shapes: dict[str, tuple]) -> dict | None:
    """Params of a Real-CUGAN state dict, or None (spandrel's rules: conv_final means 4x, or
    2x fast when its input is pixel-unshuffled; a 5x5 unet1 bottom deconv means 3x)."""
    if not all(k in shapes for k in _REQUIRED):
        return None
    in_channels = int(shapes["unet1.conv1.conv.0.weight"][1])
    pro = "pro" in shapes
    if "conv_final.weight" in shapes:
        out_channels = int(shapes["conv_final.weight"][0]) // 4
        if out_channels * 4 == in_channels:  # spandrel's (ambiguous) rule: a 4-channel 4x reads as 1-channel fast
            return {"scale": 2, "in_channels": in_channels // 4, "out_channels": out_channels, "pro": False,
                    "fast": True}
        return {"scale": 4, "in_channels": in_channels, "out_channels": out_channels, "pro": pro, "fast": False}
    scale = 3 if shapes["unet1.conv_bottom.weight"][2] == 5 else 2
    return {"scale": scale, "in_channels": in_channels, "out_channels": int(shapes["unet2.conv_bottom.weight"][0]),
            "pro": pro, "fast": False}


SPEC = ArchSpec(name="realcugan", default_value_range=(0, 1), build=build, detect=detect, load=load)
