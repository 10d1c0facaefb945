"""Exact graph simplification of a functional tf_keras model, before graph export.

Three rewrites, each exact up to float32 rounding:
- a constant scale right after a linear Conv2D (MultiplyBeta, or a Lambda that computes x*c)
  is folded into that conv's kernel and bias: conv(x)*c == conv_{W*c, b*c}(x);
- an activation layer right after a linear Conv2D becomes the conv's own activation, so the
  graph holds one fused conv instead of conv + activation;
- identity layers (Activation('linear'), Dropout at inference, scale 1) are dropped.
A rewrite applies only where the conv's output has no other consumer and neither layer is
shared (called more than once), so no other path sees a changed tensor.

The result is a new model (cloned layers, adjusted weights); the input model is untouched.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from srjs.tf import keras, tf

# Layers that compute the identity at inference time.
_DROPOUTS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
             "GaussianDropout", "GaussianNoise", "AlphaDropout")
# A Lambda counts as a constant multiply if it matches x*c this closely on random probes;
# float32 rounding of x*c vs x/(1/c) is ~6e-8.
_PROBE_RTOL = 1e-6


@dataclass
class FoldResult:
    """The simplified model and what changed (layer names of the input model)."""

    model: keras.Model
    folded_scales: dict[str, str] = field(default_factory=dict)  # scale layer -> conv it went into
    merged_activations: dict[str, str] = field(default_factory=dict)  # activation layer -> conv
    dropped: list[str] = field(default_factory=list)  # identity layers removed

    @property
    def changed(self) -> bool:
        return bool(self.folded_scales or self.merged_activations or self.dropped)


def constant_scale(layer: keras.layers.Layer, channels: int | None = None) -> float | None:
    """The constant c if `layer` computes exactly x*c elementwise (shape kept), else None.

    MultiplyBeta is read from its `beta`; a Lambda is probed on random inputs with
    `channels` channels (its function may depend on the channel count).
    """
    if type(layer).__name__ == "MultiplyBeta" and hasattr(layer, "beta"):
        return float(layer.beta)
    if not isinstance(layer, keras.layers.Lambda) or channels is None:
        return None
    rng = np.random.default_rng(0)
    estimates = []
    for shape in ((1, 3, 5, channels), (1, 4, 2, channels)):
        x = rng.uniform(0.5, 2.0, size=shape).astype(np.float32) * rng.choice([-1.0, 1.0], size=shape).astype(np.float32)
        try:
            y = np.asarray(layer(tf.constant(x)), dtype=np.float64)
        except Exception:  # noqa: BLE001 - a Lambda that cannot take this input is not a scale
            return None
        if y.shape != x.shape:
            return None
        c = float(np.median(y / x))
        if not np.allclose(y, c * x.astype(np.float64), rtol=_PROBE_RTOL, atol=0):
            return None
        estimates.append(c)
    if not np.isclose(estimates[0], estimates[1], rtol=_PROBE_RTOL, atol=0):
        return None
    return float(np.float32(estimates[0]))


def _is_identity(layer: keras.layers.Layer, channels: int | None) -> bool:
    name = type(layer).__name__
    if name in _DROPOUTS:
        return True
    if isinstance(layer, keras.layers.Activation):
        return keras.activations.serialize(layer.activation) == "linear"
    return constant_scale(layer, channels) == 1.0


def _is_linear_conv(layer: keras.layers.Layer) -> bool:
    return (type(layer) is keras.layers.Conv2D
            and keras.activations.serialize(layer.activation) == "linear")


def _inputs(entry: dict) -> list[list[tuple[str, int, int, dict]]]:
    """Per call of the layer: its inputs as (layer name, node index, tensor index, kwargs)."""
    calls = []
    for node in entry["inbound_nodes"]:
        if not isinstance(node, list):
            raise ValueError(f"layer '{entry['name']}' has an inbound node in an unknown format: {node!r}")
        calls.append([(ref[0], int(ref[1]), int(ref[2]), ref[3] if len(ref) > 3 else {}) for ref in node])
    return calls


@dataclass
class _Plan:
    """What `simplify` decided: which layers go, which convs absorb a scale or an activation."""

    config: dict
    layers: dict  # name -> layer of the input model
    calls: dict  # name -> its calls' input refs (see _inputs)
    alias: dict  # removed output (name, node, tensor) -> the output that replaces it
    scale: dict  # conv name -> accumulated constant factor
    activation: dict  # conv name -> activation merged into it
    result: FoldResult

    def resolve(self, key):
        while key in self.alias:
            key = self.alias[key]
        return key

    @property
    def removed(self) -> set:
        return {key[0] for key in self.alias}


def _plan(model: keras.Model) -> _Plan:
    config = model.get_config()
    if "layers" not in config or "output_layers" not in config:
        raise ValueError("simplify needs a functional tf_keras model")
    entries = config["layers"]
    calls = {e["name"]: _inputs(e) for e in entries}

    consumers: dict[tuple[str, int, int], int] = {}
    for name, layer_calls in calls.items():
        for refs in layer_calls:
            for ref in refs:
                consumers[ref[:3]] = consumers.get(ref[:3], 0) + 1
    for ref in config["output_layers"]:
        key = (ref[0], int(ref[1]), int(ref[2]))
        consumers[key] = consumers.get(key, 0) + 1

    layers = {layer.name: layer for layer in model.layers}  # model.get_layer is a linear scan
    plan = _Plan(config, layers, calls, {}, {}, {}, FoldResult(model=model))
    alias, scale, activation, result = plan.alias, plan.scale, plan.activation, plan.result
    for entry in entries:
        name = entry["name"]
        layer = layers[name]
        if len(calls[name]) != 1 or len(calls[name][0]) != 1:
            continue
        src = plan.resolve(calls[name][0][0][:3])
        out = (name, 0, 0)
        producer = layers[src[0]]
        channels = layer.input_shape[-1] if isinstance(layer.input_shape, tuple) else None
        foldable = (_is_linear_conv(producer) and src[0] not in activation and len(calls[src[0]]) == 1
                    and consumers.get(src, 0) == 1)
        if _is_identity(layer, channels):
            result.dropped.append(name)
        elif foldable and (c := constant_scale(layer, channels)) is not None:
            scale[src[0]] = scale.get(src[0], 1.0) * c
            result.folded_scales[name] = src[0]
        elif foldable and isinstance(layer, keras.layers.Activation):
            activation[src[0]] = keras.activations.serialize(layer.activation)
            result.merged_activations[name] = src[0]
        else:
            continue
        alias[out] = src
        consumers[src] = consumers.get(src, 0) - 1 + consumers.get(out, 0)
    return plan


def simplify(model: keras.Model) -> FoldResult:
    """Fold constant scales and activations into linear convs and drop identity layers.

    `model` must be a functional tf_keras model. Outputs match the input model's within
    float32 rounding (about 1e-6 relative).
    """
    plan = _plan(model)
    if plan.result.changed:
        plan.result.model = _rebuild(plan, model.name)
    return plan.result


def simplified_call(model: keras.Model):
    """The simplified network as a function of one input tensor, for tracing (graph export).

    Same rewrites as `simplify`, but no Keras model is built: the kept layers are called on
    the traced tensors directly (unchanged layers are the input model's own; a conv that
    absorbed a scale or an activation is a built clone with adjusted weights), which skips
    the symbolic pass a functional model costs (seconds for a 23-block RRDBNet).
    """
    plan = _plan(model)
    if not plan.result.changed:
        return lambda x: model(x, training=False)
    if len(plan.config["input_layers"]) != 1 or len(plan.config["output_layers"]) != 1:
        raise ValueError("simplified_call needs a model with one input and one output")
    removed = plan.removed
    callables = {}
    for name, layer in plan.layers.items():
        if name in removed or isinstance(layer, keras.layers.InputLayer):
            continue
        if name in plan.scale or name in plan.activation:
            layer = _clone(layer, plan.activation.get(name))
            layer.build(plan.layers[name].input_shape)
            _set_scaled_weights(layer, plan.layers[name].get_weights(), plan.scale.get(name))
        callables[name] = layer

    def call(x):
        tensors = {}
        for entry in plan.config["layers"]:
            name = entry["name"]
            if name in removed:
                continue
            if name not in callables:  # the input layer
                tensors[(name, 0, 0)] = x
                continue
            for node_index, refs in enumerate(plan.calls[name]):
                args = [tensors[plan.resolve(ref[:3])] for ref in refs]
                kwargs = refs[0][3] if refs else {}
                outputs = callables[name](args[0] if len(args) == 1 else args, **kwargs)
                for tensor_index, tensor in enumerate(tf.nest.flatten(outputs)):
                    tensors[(name, node_index, tensor_index)] = tensor
        ref = plan.config["output_layers"][0]
        return tensors[plan.resolve((ref[0], int(ref[1]), int(ref[2])))]

    return call


def _set_scaled_weights(layer, weights: list, factor: float | None) -> None:
    if factor is not None:
        c = np.float64(factor)
        weights = [(w.astype(np.float64) * c).astype(w.dtype) for w in weights]
    layer.set_weights(weights)


def _clone(layer: keras.layers.Layer, activation: str | None) -> keras.layers.Layer:
    if isinstance(layer, keras.layers.Lambda):
        return layer  # no weights to protect, and re-deserialising its bytecode buys nothing
    cfg = layer.get_config()
    if activation is not None:
        cfg["activation"] = activation
    return type(layer).from_config(cfg)


def _rebuild(plan: _Plan, model_name: str) -> keras.Model:
    config, removed = plan.config, plan.removed
    tensors: dict[tuple[str, int, int], object] = {}
    for entry in config["layers"]:
        name = entry["name"]
        if name in removed:
            continue
        layer = plan.layers[name]
        if isinstance(layer, keras.layers.InputLayer):
            spec = layer.get_config()
            tensors[(name, 0, 0)] = keras.Input(batch_shape=spec["batch_input_shape"], dtype=spec["dtype"], name=name)
            continue
        clone = _clone(layer, plan.activation.get(name))
        for node_index, refs in enumerate(plan.calls[name]):
            args = [tensors[plan.resolve(ref[:3])] for ref in refs]
            kwargs = refs[0][3] if refs else {}
            outputs = clone(args[0] if len(args) == 1 else args, **kwargs)
            for tensor_index, tensor in enumerate(tf.nest.flatten(outputs)):
                tensors[(name, node_index, tensor_index)] = tensor
        _set_scaled_weights(clone, layer.get_weights(), plan.scale.get(name))
    outputs = [tensors[plan.resolve((r[0], int(r[1]), int(r[2])))] for r in config["output_layers"]]
    inputs = [tensors[(r[0], int(r[1]), int(r[2]))] for r in config["input_layers"]]
    return keras.Model(inputs=inputs if len(inputs) > 1 else inputs[0],
                       outputs=outputs if len(outputs) > 1 else outputs[0], name=model_name)
