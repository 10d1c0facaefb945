"""RRDN (idealo ISR 'gans', UpscalerJS esrgan-thick) in tf_keras.

Mirrors ISR/models/rrdn.py layer for layer with ISR's layer names ('Pre_blocks_conv',
'F_{t}_{d}_{c}', 'LFF_{t}_{d}', 'post_blocks_conv', 'PreShuffle', 'SR'), so ISR .h5 weights load
by name and TF.js weight names map 1:1. The weightless MultiplyBeta / PixelShuffle layers get
the names Keras auto-numbering gives in a fresh session ('multiply_beta', 'multiply_beta_1', ...,
'pixel_shuffle'), as in UpscalerJS's esrgan-thick model.json, so builds are reproducible.

Params: C convs per dense block, D dense blocks per RRDB, T RRDBs, G growth channels, G0 block
channels, scale; beta (residual scaling) is 0.2 in ISR and UpscalerJS.
"""
from __future__ import annotations

import itertools
import math
import re


from srjs.archs import ArchSpec, keras_named_loader, keras_weight_name
from srjs.archs.layers import MultiplyBeta, PixelShuffle
from srjs.errors import BadInput
from srjs.tf import keras

L = keras.layers
C_DIM = 3


def _conv(filters: int, name: str) -> keras.layers.Layer:
    return L.Conv2D(filters, 3, padding="same", name=name)


def build(
    C: int = 4, D: int = 3, G: int = 32, G0: int = 32, T: int = 10, scale: int = 4,
    beta: float = 0.2,
) -> keras.Model:
    """ISR RRDN (defaults: ISR 'gans', C4 D3 G32 G0 32 T10 x4). Input [N, H, W, 3] float32."""
    counter = itertools.count()

    def times_beta(x):
        k = next(counter)
        return MultiplyBeta(beta, name="multiply_beta" + (f"_{k}" if k else ""))(x)

    inp = L.Input((None, None, C_DIM), name="LR_input")
    pre = _conv(G0, "Pre_blocks_conv")(inp)
    x = pre
    for t in range(1, T + 1):
        rrdb_in = x
        for d in range(1, D + 1):
            y = x
            for c in range(1, C + 1):
                f = L.Activation("relu", name=f"F_{t}_{d}_{c}_Relu")(_conv(G, f"F_{t}_{d}_{c}")(y))
                y = L.Concatenate(axis=3, name=f"RDB_Concat_{t}_{d}_{c}")([y, f])
            lff = _conv(G0, f"LFF_{t}_{d}")(y)  # ISR: 3x3 here, unlike RDN's 1x1
            x = L.Add(name=f"LRL_{t}_{d}")([x, times_beta(lff)])
        x = L.Add(name=f"RRDB_{t}_out")([rrdb_in, times_beta(x)])
    post = _conv(G0, "post_blocks_conv")(x)
    grl = L.Add(name="GRL")([post, pre])
    ps = PixelShuffle(scale, name="pixel_shuffle")(_conv(C_DIM * scale * scale, "PreShuffle")(grl))
    out = _conv(C_DIM, "SR")(ps)
    return keras.Model(inp, out, name="rrdn")


# ISR / UpscalerJS RRDN weights ('F_1_1_1/kernel' HWIO, ...) onto a model from `build`.
load = keras_named_loader("rrdn")


_F = re.compile(r"^F_(\d+)_(\d+)_(\d+)/kernel$")


def detect(shapes: dict[str, tuple]) -> dict | None:
    """C, D, G, G0, T and scale of ISR RRDN weights, or None if the names are not RRDN's."""
    shapes = {keras_weight_name(k): tuple(v) for k, v in shapes.items()}
    needed = ("Pre_blocks_conv/kernel", "PreShuffle/kernel", "F_1_1_1/kernel")
    if not all(name in shapes for name in needed):
        return None
    blocks = [tuple(map(int, m.groups())) for m in map(_F.match, shapes) if m]
    up = shapes["PreShuffle/kernel"][-1]
    scale = math.isqrt(up // C_DIM)
    if C_DIM * scale * scale != up:
        raise BadInput(f"rrdn: PreShuffle/kernel gives {up} channels, not 3*scale*scale")
    return {
        "C": max(c for t, d, c in blocks if (t, d) == (1, 1)),
        "D": max(d for t, d, _ in blocks if t == 1),
        "G": int(shapes["F_1_1_1/kernel"][-1]),
        "G0": int(shapes["Pre_blocks_conv/kernel"][-1]),
        "T": max(t for t, _, _ in blocks),
        "scale": scale,
    }


SPEC = ArchSpec(name="rrdn", default_value_range=None, build=build, detect=detect, load=load)
