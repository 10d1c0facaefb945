"""Weight clustering (tfmot `cluster_weights`): each Conv2D kernel keeps only K distinct values.

Centroids are fine-tuned by distillation from the parent; when the parent is pruned the
sparsity-preserving variant keeps its zeros. `strip_clustering` leaves a plain Keras model.
K distinct values per tensor gzip far better than K*anything (the shards repeat bytes), and
after uint8 quantization K <= 256 values map to K bytes exactly.
"""
from __future__ import annotations

from srjs.errors import BadInput


def check_clusters(k: int) -> int:
    """BadInput unless K is an integer of at least 2."""
    if int(k) != k or k < 2:
        raise BadInput(f"--cluster K must be an integer of at least 2 (got {k})")
    return int(k)


def wrap_for_clustering(model, k: int, preserve_sparsity: bool):
    """A copy of `model` with every Conv2D wrapped for clustering (weights copied first)."""
    import tensorflow_model_optimization as tfmot

    from srjs.optimize.prune import _clone
    from srjs.tf import keras

    # The sparsity-preserving switch is only on the experimental entry point.
    from tensorflow_model_optimization.python.core.clustering.keras.experimental import (
        cluster as experimental,
    )

    init = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS
    plain = _clone(model, None)
    plain.set_weights(model.get_weights())

    wrapped_layers = {}

    def wrap_trained(layer):
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            clone = layer.__class__.from_config(layer.get_config())
            clone.build(layer.input_shape)
            clone.set_weights(layer.get_weights())
            w = experimental.cluster_weights(clone, number_of_clusters=k, cluster_centroids_init=init,
                                             preserve_sparsity=preserve_sparsity)
            wrapped_layers[layer.name] = w
            return w
        return layer.__class__.from_config(layer.get_config())

    wrapped = _clone(plain, wrap_trained)
    by_name = {layer.name: layer for layer in wrapped.layers}
    for layer in plain.layers:
        if layer.weights and layer.name not in wrapped_layers:
            by_name[layer.name].set_weights(layer.get_weights())
    return wrapped


def strip(model):
    import tensorflow_model_optimization as tfmot

    from srjs.archs import custom_objects
    from srjs.tf import keras

    with keras.utils.custom_object_scope(custom_objects()):
        return tfmot.clustering.keras.strip_clustering(model)


def distinct_values(model) -> dict[str, int]:
    """Number of distinct values in each Conv2D kernel, by layer name."""
    import numpy as np

    from srjs.tf import keras

    return {layer.name: int(np.unique(layer.get_weights()[0]).size)
            for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}


def cluster(model, teacher, images, *, k: int, value_max: float, preserve_sparsity: bool | None = None,
            steps: int | None = None, time_budget_s: float | None = None, progress: bool = False,
            **distill_options):
    """Cluster `model`'s Conv2D kernels to `k` values, centroids distilled from `teacher`.

    preserve_sparsity: None = on when the kernels already hold zeros (a pruned parent).
    Returns (stripped model, report dict: distinct values per layer, fine-tune report).
    """
    from srjs.optimize.distill import distill
    from srjs.optimize.prune import overall_sparsity, renamed_like

    k = check_clusters(k)
    if preserve_sparsity is None:
        preserve_sparsity = overall_sparsity(model) > 0.01
    wrapped = wrap_for_clustering(model, k, preserve_sparsity)
    if steps is None and time_budget_s is None:
        steps = 1
    wrapped, fit = distill(wrapped, teacher, images, value_max=value_max, steps=steps,
                           time_budget_s=time_budget_s, progress=progress, **distill_options)
    stripped = renamed_like(model, strip(wrapped))
    values = distinct_values(stripped)
    return stripped, {
        "clusters": k,
        "preserve_sparsity": bool(preserve_sparsity),
        "max_distinct_values": int(max(values.values())) if values else 0,
        "sparsity": round(overall_sparsity(stripped), 4),
        "fine_tune": fit.to_dict(),
    }
