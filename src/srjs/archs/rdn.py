"""RDN (idealo ISR, UpscalerJS esrgan-slim / esrgan-medium / div2k) in tf_keras.

Mirrors ISR/models/rdn.py layer for layer, with ISR's layer names, so ISR .h5 weights load with
`model.load_weights(path, by_name=True)` and TF.js weight names ('F_1_1/kernel') map 1:1.
Weights are Keras HWIO; `load` takes `{'<layer>/kernel' | '<layer>/bias': array}` and accepts
the ':0' and h5 'F_0/F_0/kernel:0' spellings too.

Params: C convs per residual dense block, D blocks, G growth channels, G0 block channels,
scale, upscaling 'ups' (conv to 3*s*s channels + nearest UpSampling2D, ISR's default and what
the pretrained weights use) or 'shuffle' (conv + depth_to_space). The two cannot be told apart
from weights, so `detect` returns 'ups' and the caller may override it.
"""
from __future__ import annotations

import math
import re


from srjs.archs import ArchSpec, keras_named_loader, keras_weight_name
from srjs.archs.layers import PixelShuffle
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers
C_DIM = 3  # ISR's c_dim: RGB


def _conv(filters: int, kernel: int, name: str) -> keras.layers.Layer:
    return L.Conv2D(filters, kernel, padding="same", name=name)


def _rdbs(x, C: int, D: int, G: int, G0: int):
    """D residual dense blocks; returns the concat of their outputs (ISR's _RDBs)."""
    outputs = []
    rdb_in = x
    for d in range(1, D + 1):
        x = rdb_in
        for c in range(1, C + 1):
            f = _conv(G, 3, f"F_{d}_{c}")(x)
            f = L.Activation("relu", name=f"F_{d}_{c}_Relu")(f)
            x = L.Concatenate(axis=3, name=f"RDB_Concat_{d}_{c}")([x, f])
        x = _conv(G0, 1, f"LFF_{d}")(x)
        rdb_in = L.Add(name=f"LRL_{d}")([x, rdb_in])
        outputs.append(rdb_in)
    if len(outputs) == 1:
        return outputs[0]  # Keras cannot concatenate a single tensor; ISR never builds D=1
    return L.Concatenate(axis=3, name="LRLs_Concat")(outputs)


def build(
    C: int = 3, D: int = 10, G: int = 64, G0: int = 64, scale: int = 2, upscaling: str = "ups"
) -> keras.Model:
    """ISR RDN (defaults: psnr-small, C3 D10 G64 G0 64 x2). Input [N, H, W, 3] float32."""
    if upscaling not in ("ups", "shuffle"):
        raise BadInput(f"rdn upscaling must be 'ups' or 'shuffle', not '{upscaling}'")
    inp = L.Input((None, None, C_DIM), name="LR")
    f_m1 = _conv(G0, 3, "F_m1")(inp)
    f_0 = _conv(G0, 3, "F_0")(f_m1)
    fd = _rdbs(f_0, C, D, G, G0)
    gff1 = _conv(G0, 1, "GFF_1")(fd)
    gff2 = _conv(G0, 3, "GFF_2")(gff1)
    fdf = L.Add(name="FDF")([gff2, f_m1])
    # ISR hard-codes 64 and 32 channels here, whatever G0 is.
    x = L.Activation("relu", name="UPN1_Relu")(_conv(64, 5, "UPN1")(fdf))
    x = L.Activation("relu", name="UPN2_Relu")(_conv(32, 3, "UPN2")(x))
    x = _conv(C_DIM * scale * scale, 3, "UPN3")(x)
    if upscaling == "ups":
        x = L.UpSampling2D(size=scale, interpolation="nearest", name="UPsample")(x)
    else:
        x = PixelShuffle(scale, name="PixelShuffle")(x)
    out = _conv(C_DIM, 3, "SR")(x)
    return keras.Model(inp, out, name="rdn")


# ISR / UpscalerJS RDN weights ('F_0/kernel' HWIO, ...) onto a model from `build`.
load = keras_named_loader("rdn")


_F = re.compile(r"^F_(\d+)_(\d+)/kernel$")


def detect(shapes: dict[str, tuple]) -> dict | None:
    """C, D, G, G0 and scale of ISR RDN weights, or None if the names are not RDN's."""
    shapes = {keras_weight_name(k): tuple(v) for k, v in shapes.items()}
    needed = ("F_m1/kernel", "F_0/kernel", "GFF_1/kernel", "UPN3/kernel", "F_1_1/kernel")
    if not all(name in shapes for name in needed):
        return None
    blocks = [tuple(map(int, m.groups())) for m in map(_F.match, shapes) if m]
    up = shapes["UPN3/kernel"][-1]
    scale = math.isqrt(up // C_DIM)
    if C_DIM * scale * scale != up:
        raise BadInput(f"rdn: UPN3/kernel gives {up} channels, not 3*scale*scale")
    return {
        "C": max(c for d, c in blocks if d == 1),
        "D": max(d for d, _ in blocks),
        "G": int(shapes["F_1_1/kernel"][-1]),
        "G0": int(shapes["F_m1/kernel"][-1]),
        "scale": scale,
        "upscaling": "ups",
    }


SPEC = ArchSpec(name="rdn", default_value_range=None, build=build, detect=detect, load=load)
