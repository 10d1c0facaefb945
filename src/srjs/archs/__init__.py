"""tf_keras builders for the ESRGAN family, one module per network, and their registry.

Each module (rrdbnet, srvgg, rdn, rrdn) exposes `SPEC`, an `ArchSpec`: how to build the Keras
model, how to recognise the network from its weight names and shapes (`detect`), and how to
assign weights in the source's own naming and layout (`load`). The networks know nothing about
checkpoint files; readers in `srjs.convert` turn files into `{name: array}` dicts first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from srjs.errors import BadInput
from srjs.registry import Registry
from srjs.tf import keras


@dataclass(frozen=True)
class ArchSpec:
    """One network family.

    default_value_range: (low, high) of input and output, or None when the family has no one range.
    build(**params) -> keras.Model, input [N, H, W, 3] float32, output [N, H*scale, W*scale, 3].
    detect({weight name: shape}) -> params (always with 'scale') or None if not this family.
    load(model, {weight name: array}) assigns source weights, BadInput on any name/shape mismatch.
    Families with other image channels take num_in_ch / num_out_ch params (1 gray, 4 RGBA).
    """

    name: str
    # The range every published checkpoint of the family uses (BasicSR trains on [0, 1]);
    # None where checkpoints disagree (ISR: [0, 1], UpscalerJS's RDNs: [0, 255]): convert probes.
    default_value_range: tuple | None
    build: Callable[..., keras.Model]
    detect: Callable[[dict[str, tuple]], dict | None]
    load: Callable[[keras.Model, dict[str, np.ndarray]], None]
    # assumed(shapes, params) -> {param: why}: the params detect had to default because the
    # weights cannot tell (Compact's relu vs leakyrelu). convert records them in the manifest
    # (`arch_params_assumed`) and `--arch-param NAME=VALUE` overrides them.
    assumed: Callable[[dict[str, tuple], dict], dict[str, str]] = lambda shapes, params: {}


ARCHS: Registry[ArchSpec] = Registry("architecture")


def get_arch(name: str) -> ArchSpec:
    """The registered architecture `name`; BadInput listing the known names otherwise."""
    if name not in ARCHS:
        raise BadInput(f"unknown architecture '{name}' (known: {', '.join(ARCHS.names())})")
    return ARCHS.get(name)


def detect_arch(shapes: Mapping[str, tuple]) -> tuple[str, dict]:
    """(arch name, params) of the first family whose detect() recognises these weights."""
    shapes = {name: tuple(shape) for name, shape in shapes.items()}
    for name in ARCHS.names():
        params = ARCHS.get(name).detect(shapes)
        if params is not None:
            return name, params
    first = ", ".join(repr(k) for k in list(shapes)[:4]) or "no weights at all"
    raise BadInput(
        f"no known architecture ({', '.join(ARCHS.names())}) matches these weights; "
        f"first names: {first}"
    )


def custom_objects() -> dict:
    """Every custom layer class by its config name, for load_model / model_from_json.

    Includes UpscalerJS's fixed-scale aliases PixelShuffle2x/3x/4x/8x so UpscalerJS and ISR
    models load in Python.
    """
    from srjs.archs.layers import CUSTOM_LAYERS, SHUFFLE_ALIASES

    return {**CUSTOM_LAYERS, **SHUFFLE_ALIASES}


@dataclass(frozen=True)
class Target:
    """Where one source weight goes: a Keras variable, the source shape, and the conversion."""

    variable: object
    source_shape: tuple
    convert: Callable[[np.ndarray], np.ndarray]


def assign_weights(family: str, targets: dict[str, Target], weights: Mapping[str, np.ndarray]) -> None:
    """Check every name and shape first, then assign; BadInput names the first problem.

    Checks run in model order (missing or mis-shaped), then unexpected extra names, so nothing
    is assigned unless the whole dict fits.
    """
    check_weights(family, {name: t.source_shape for name, t in targets.items()}, weights)
    keras.backend.batch_set_value(
        [
            (t.variable, t.convert(np.asarray(weights[name], dtype=np.float32)))
            for name, t in targets.items()
        ]
    )


def check_weights(family: str, expected: Mapping[str, tuple], weights: Mapping[str, np.ndarray]) -> None:
    """BadInput naming the first missing or mis-shaped weight (in `expected`'s order), then the
    first unexpected one; returns quietly only if `weights` has exactly these names and shapes."""
    for name, shape in expected.items():
        if name not in weights:
            raise BadInput(f"{family}: missing weight '{name}' (expected shape {tuple(shape)})")
        got = tuple(np.shape(weights[name]))
        if got != tuple(shape):
            raise BadInput(f"{family}: weight '{name}' has shape {got}, expected {tuple(shape)}")
    extra = [name for name in weights if name not in expected]
    if extra:
        raise BadInput(
            f"{family}: unexpected weight '{extra[0]}' (shape {tuple(np.shape(weights[extra[0]]))})"
            + (f" and {len(extra) - 1} more" if len(extra) > 1 else "")
        )


def shape_errors_as_bad_input(family: str):
    """Decorator for a detect(): a checkpoint that matches the family's key condition but has a
    missing companion weight or a tensor of the wrong rank is BadInput naming the family,
    not an IndexError / KeyError traceback."""
    def wrap(detect):
        def checked(shapes):
            try:
                return detect(shapes)
            except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as err:
                raise BadInput(f"{family}: the weights match {family}'s names but not its layout "
                               f"({type(err).__name__}: {err})") from None

        checked.__doc__, checked.__name__ = detect.__doc__, detect.__name__
        return checked

    return wrap


def keras_weight_name(name: str) -> str:
    """'F_0/kernel' from any Keras spelling: 'F_0/kernel:0', 'F_0/F_0/kernel:0' (h5 groups)."""
    name = name.split(":")[0]
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == parts[1]:
        parts = parts[1:]
    return "/".join(parts)


def variable_suffix(variable) -> str:
    """'kernel' for a variable named 'F_0/kernel:0' (TF variable names carry scopes and ':0')."""
    return variable.name.split("/")[-1].split(":")[0]


def keras_targets(model: keras.Model) -> dict[str, Target]:
    """'<layer>/<variable>' -> identity Target for every weight (Keras layouts on both sides)."""
    return {
        f"{layer.name}/{variable_suffix(var)}": Target(var, tuple(var.shape), lambda a: a)
        for layer in model.layers
        for var in layer.weights
    }


def keras_named_loader(family: str) -> Callable[[keras.Model, Mapping[str, np.ndarray]], None]:
    """`load` for families whose source weights already use Keras names and layouts (ISR).

    Any Keras spelling of a name is accepted ('F_0/kernel:0', the .h5 'F_0/F_0/kernel:0').
    """

    def load(model: keras.Model, weights: Mapping[str, np.ndarray]) -> None:
        named = {keras_weight_name(k): v for k, v in weights.items()}
        assign_weights(family, keras_targets(model), named)

    return load


def _register_all() -> None:
    from srjs.archs import plksr, rdn, realcugan, rrdbnet, rrdn, span, srvgg

    # A module may hold several families (plksr: PLKSR and RealPLKSR) as SPECS.
    for module in (rrdbnet, srvgg, rdn, rrdn, span, plksr, realcugan):
        for spec in getattr(module, "SPECS", None) or (module.SPEC,):
            ARCHS.register(spec.name)(spec)


_register_all()
