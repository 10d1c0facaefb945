"""Choose the architecture and its parameters for a checkpoint, then build and load it.

`--arch auto` asks every registered family to recognise the weight names and shapes; an
explicit --arch/--scale is honoured and checked: a wrong one fails with a message naming the
first weight that does not fit. Full Keras sources whose weights match no family fall back to
their own architecture (arch 'keras'), loaded without executing any code from the file.
"""
from __future__ import annotations

from dataclasses import dataclass

from srjs.convert.sources import Checkpoint
from srjs.errors import BadInput

AUTO = "auto"
FALLBACK_ARCH = "keras"


@dataclass
class BuiltModel:
    arch: str
    params: dict
    scale: int
    model: object  # tf_keras Model
    default_value_range: tuple | None  # None: the family has no one convention


def build_model(ckpt: Checkpoint, arch: str = AUTO, scale: int | None = None) -> BuiltModel:
    """Build the tf_keras model for `ckpt` and load its weights (BadInput on any mismatch)."""
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
    params = {**params, **ckpt.hints.get("arch_params", {})}
    if scale is not None:
        params["scale"] = int(scale)
    spec = get_arch(wanted)
    model = spec.build(**params)
    spec.load(model, ckpt.weights)  # names the first missing / unexpected / mis-shaped weight
    return BuiltModel(wanted, params, int(params["scale"]), model, spec.default_value_range)


def _detect_any(shapes: dict) -> tuple[str, dict] | None:
    from srjs.archs import detect_arch

    try:
        return detect_arch(shapes)
    except BadInput:
        return None


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
