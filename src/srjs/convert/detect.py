"""Choose the architecture and its parameters for a checkpoint, then build and load it.

`--arch auto` asks every registered family to recognise the weight names and shapes; an
explicit --arch/--scale is honoured and checked: a wrong one fails with a message naming the
first weight that does not fit. Full Keras sources whose weights match no family fall back to
their own architecture (arch 'keras'), loaded without executing any code from the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from srjs.convert.sources import Checkpoint
from srjs.errors import BadInput

AUTO = "auto"
FALLBACK_ARCH = "keras"


IMAGE_CHANNELS = {1: "grayscale", 3: "RGB", 4: "RGBA"}


@dataclass
class BuiltModel:
    arch: str
    params: dict
    scale: int
    model: object  # tf_keras Model
    default_value_range: tuple | None  # None: the family has no one convention
    assumed: dict = field(default_factory=dict)  # {param: why a default was taken}
    channels: int = 3  # image channels in and out (1, 3 or 4)


def parse_arch_params(items) -> dict:
    """['act_type=leakyrelu', 'img_range=255'] -> {'act_type': 'leakyrelu', 'img_range': 255}.

    Values are read as JSON (numbers, true/false) and else kept as strings.
    """
    out = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise BadInput(f"--arch-param takes NAME=VALUE, not '{item}'")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value
    return out


def build_model(ckpt: Checkpoint, arch: str = AUTO, scale: int | None = None,
                arch_params: dict | None = None) -> BuiltModel:
    """Build the tf_keras model for `ckpt` and load its weights (BadInput on any mismatch).

    arch_params override detected (or assumed) params by name; a name the family's detection
    does not produce is refused.
    """
    from srjs.archs import get_arch

    shapes = {name: tuple(array.shape) for name, array in ckpt.weights.items()}
    wanted = arch if arch != AUTO else ckpt.hints.get("arch", AUTO)
    if wanted == AUTO:
        found = _detect_any(shapes)
        if found is None:
            return _fallback(ckpt, scale)
        wanted, params = found
    else:
        params = get_arch(wanted).detect(shapes)  # BadInput names the known archs
        if params is None:
            first = next(iter(shapes), "<none>")
            other = _detect_any(shapes)
            hint = f"; its weights look like '{other[0]}'" if other else ""
            raise BadInput(f"checkpoint is not a '{wanted}' model: weight '{first}' does not fit{hint}")
    spec = get_arch(wanted)
    assumed = dict(spec.assumed(shapes, params))
    params = {**params, **ckpt.hints.get("arch_params", {})}
    for name, value in (arch_params or {}).items():
        if name not in params:
            raise BadInput(f"--arch-param {name}: '{wanted}' has no such parameter "
                           f"(it has: {', '.join(sorted(params))})")
        params[name] = value
        assumed.pop(name, None)
    detected = params.get("scale")
    if scale is not None:
        params["scale"] = int(scale)
    try:
        model = spec.build(**params)
        spec.load(model, ckpt.weights)  # names the first missing / unexpected / mis-shaped weight
    except BadInput as err:
        if scale is None or scale == detected:
            raise
        raise BadInput(f"--scale {scale} does not fit these weights (they read as a x{detected} "
                       f"'{wanted}'): {err.message}") from None
    channels = image_channels(model, wanted)
    return BuiltModel(wanted, params, int(params["scale"]), model, spec.default_value_range,
                      assumed, channels)


def image_channels(model, arch: str) -> int:
    """The image channels `model` takes and gives; BadInput unless both are 1, 3 or 4 and equal."""
    got_in, got_out = int(model.input_shape[-1]), int(model.output_shape[-1])
    if got_in != got_out or got_in not in IMAGE_CHANNELS:
        raise BadInput(f"{arch}: the model takes {got_in} and gives {got_out} image channels; srjs "
                       "converts models whose input and output are both grayscale (1), RGB (3) or RGBA (4)")
    return got_in


def _detect_any(shapes: dict) -> tuple[str, dict] | None:
    """The family that recognises `shapes`, None if none does (a family's own BadInput, e.g.
    an impossible scale, passes through: it knows its weights better than the fallback)."""
    from srjs.archs import detect_arch

    try:
        return detect_arch(shapes)
    except BadInput as err:
        if "no known architecture" in err.message:
            return None
        raise


def _fallback(ckpt: Checkpoint, scale: int | None) -> BuiltModel:
    if ckpt.load_original is None:
        first = ", ".join(list(ckpt.weights)[:3])
        raise BadInput(f"no known architecture matches this {ckpt.format} checkpoint (first weights: {first})")
    model = ckpt.load_original()
    measured = _measure_scale(model)
    if scale is not None and scale != measured:
        raise BadInput(f"--scale {scale} does not match the model, which upscales x{measured}")
    return BuiltModel(FALLBACK_ARCH, {}, measured, model, (0, 1))


def _measure_scale(model) -> int:
    import numpy as np

    probe = np.zeros((1, 8, 8, 3), np.float32)
    out = model(probe, training=False).shape
    if len(out) != 4 or out[-1] != 3 or out[1] % 8 or out[1] != out[2]:
        raise BadInput(f"model maps [1,8,8,3] to {list(out)}; srjs needs [1,8s,8s,3]")
    return int(out[1] // 8)
