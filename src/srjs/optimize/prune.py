"""Magnitude pruning (tfmot `prune_low_magnitude`) fine-tuned by distillation from the parent.

Only Conv2D layers are wrapped: srjs's custom layers (PixelShuffle, MultiplyBeta, ...) carry no
prunable kernels and tfmot refuses layers it does not know. Sparsity ramps from 0 to the target
along a PolynomialDecay over the first ~70% of the fine-tune, so the last steps repair the
damage at full sparsity; `strip_pruning` then leaves a plain Keras model whose kernels hold
exact zeros (which only pay off once the shards are gzip'd, as servers send them).
"""
from __future__ import annotations

import numpy as np

from srjs.errors import BadInput


def check_sparsity(sparsity: float) -> float:
    """BadInput unless 0 < sparsity < 1 (fraction of each kernel's weights set to zero)."""
    if not (0.0 < float(sparsity) < 1.0):
        raise BadInput(f"--prune sparsity must be between 0 and 1 exclusive (got {sparsity})")
    return float(sparsity)


def _clone(model, clone_function):
    from srjs.archs import custom_objects
    from srjs.tf import keras

    with keras.utils.custom_object_scope(custom_objects()):
        return keras.models.clone_model(model, clone_function=clone_function)


def wrap_for_pruning(model, sparsity: float, end_step: int):
    """A copy of `model` with every Conv2D wrapped in PruneLowMagnitude (weights copied)."""
    import tensorflow_model_optimization as tfmot

    from srjs.tf import keras

    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
        end_step=max(1, end_step), frequency=max(1, end_step // 20))

    def wrap(layer):
        clone = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            return tfmot.sparsity.keras.prune_low_magnitude(clone, pruning_schedule=schedule)
        return clone

    wrapped = _clone(model, wrap)
    _copy_weights(model, wrapped)
    return wrapped


def _copy_weights(source, wrapped) -> None:
    """Copy each source layer's weights into its (possibly wrapped) clone by layer name."""
    by_name = {layer.name: layer for layer in wrapped.layers}
    for layer in source.layers:
        if not layer.weights:
            continue
        target = by_name.get(layer.name) or by_name.get(f"prune_low_magnitude_{layer.name}") \
            or by_name.get(f"cluster_{layer.name}")
        if target is None:
            raise RuntimeError(f"layer {layer.name} lost in wrapping")
        inner = getattr(target, "layer", target)
        inner.set_weights(layer.get_weights())


def renamed_like(template, stripped):
    """A fresh clone of `template` holding `stripped`'s weights.

    Stripped layers keep variables named after their wrappers (prune_low_magnitude_conv1/kernel),
    and the TF.js export would ship those names; a clean clone restores the parent's names.
    """
    fresh = _clone(template, None)
    values = stripped.get_weights()
    shapes = [tuple(w.shape) for w in fresh.weights]
    if shapes != [tuple(v.shape) for v in values]:
        raise RuntimeError("stripped model's weights do not line up with the parent's")
    fresh.set_weights(values)
    return fresh


def keep_zeros(values: np.ndarray, enc):
    """`enc` with its uint grid shifted (< half a step) so pruned zeros decode to exact 0.

    Calibrated ranges may put 0 between two grid points; a pruned kernel would then ship a
    small constant instead of its zeros (gzip is unharmed, the sparsity and the bias are not).
    TF.js decodes `q * scale + min` in doubles, so min = -k * scale makes q = k exactly 0.
    """
    from srjs.tfjs_weights import Encoding

    if enc.dtype not in ("uint8", "uint16") or not np.any(values == 0) or not enc.scale:
        return enc
    k = round(-enc.min / enc.scale)
    levels = 255 if enc.dtype == "uint8" else 65535
    if not 0 <= k <= levels:
        return enc
    return Encoding(enc.dtype, enc.scale, -k * enc.scale)


def strip(model):
    """The plain Keras model under the pruning wrappers (kernels hold the masked weights)."""
    import tensorflow_model_optimization as tfmot

    from srjs.archs import custom_objects
    from srjs.tf import keras

    with keras.utils.custom_object_scope(custom_objects()):
        return tfmot.sparsity.keras.strip_pruning(model)


def layer_sparsity(model) -> dict[str, float]:
    """Fraction of exact zeros in each Conv2D kernel, by layer name."""
    from srjs.tf import keras

    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.get_weights()[0]
            out[layer.name] = round(float(np.mean(kernel == 0)), 4)
    return out


def overall_sparsity(model) -> float:
    """Fraction of exact zeros over all Conv2D kernels together (weighted by size)."""
    from srjs.tf import keras

    zeros = total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.get_weights()[0]
            zeros += int(np.sum(kernel == 0))
            total += kernel.size
    return zeros / total if total else 0.0


def prune(model, teacher, images, *, sparsity: float, value_max: float, steps: int | None = None,
          time_budget_s: float | None = None, progress: bool = False, **distill_options):
    """Prune `model`'s Conv2D kernels to `sparsity` while distilling from `teacher`.

    The decay's end step is 70% of `steps`; with only a time budget, steps are estimated from
    the time of a short warm-up on the same loop. Returns (stripped model, report dict with
    per-layer sparsity and the fine-tune report).
    """
    import tensorflow_model_optimization as tfmot

    from srjs.optimize.distill import distill

    sparsity = check_sparsity(sparsity)
    if steps is None:
        steps = _estimate_steps(model, teacher, images, value_max, time_budget_s, **distill_options)
    wrapped = wrap_for_pruning(model, sparsity, end_step=int(steps * 0.7))
    wrapped, fit = distill(
        wrapped, teacher, images, value_max=value_max, steps=steps, time_budget_s=time_budget_s,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], progress=progress, **distill_options)
    stripped = renamed_like(model, strip(wrapped))
    return stripped, {
        "sparsity_target": sparsity,
        "sparsity": round(overall_sparsity(stripped), 4),
        "layers": layer_sparsity(stripped),
        "fine_tune": fit.to_dict(),
    }


def _estimate_steps(model, teacher, images, value_max, time_budget_s, **distill_options) -> int:
    """Steps that fit in `time_budget_s`, from timing a few plain distillation steps on a copy."""
    from srjs.optimize.distill import distill

    probe = _clone(model, None)
    probe.set_weights(model.get_weights())
    _, timed = distill(probe, teacher, images, value_max=value_max, steps=6, **distill_options)
    # The first step traces the graph; the median of the others is the steady cost. Pruning
    # wrappers add mask work on top of a plain step: 1.3 covers it here (measured ~1.2).
    per_step = max(timed.step_seconds, 1e-3)
    return max(10, int(time_budget_s / (per_step * 1.3)))
