"""tf_keras model -> TF.js layers model and TF.js graph model (a model dir's tfjs_layers/, tfjs_graph/).

Layers: tensorflowjs' Keras converter, then the custom layers renamed the way UpscalerJS
registers them in JS (PixelShuffle{N}x with config `scale`, MultiplyBeta with `beta`), so the
package loads in UpscalerJS unmodified.
Graph: a SavedModel with a float32 [1,H,W,3] serving signature (H, W dynamic), converted with
the converter's grappler passes (conv+bias+activation fused; DepthToSpace is a native op, so
no custom JS is needed), after the exact simplifications in `fold`.

Both writers are deterministic (same model -> byte-identical files) and atomic (built in a
temporary sibling folder, renamed into place at the end).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from srjs import atomic, strict_json
from srjs.convert.patch import patch_model_json
from srjs.tf import keras, tf

MODEL_JSON = "model.json"


@dataclass
class ExportOptions:
    """How export writes a TF.js model.

    shard_bytes: largest weight shard file, in bytes.
    upscalerjs_compat: top-level class_name "Model" instead of "Functional", for tfjs runtimes
        older than 3.x (UpscalerJS 0.x pins such runtimes).
    quantization: tensorflowjs quantization_dtype_map, e.g. {"uint8": "*"}; None = float32.
    """

    shard_bytes: int = 4 * 1024 * 1024
    upscalerjs_compat: bool = False
    quantization: dict | None = None


def tensorflowjs():
    """The tensorflowjs module, imported quietly (see srjs.tf.quiet_import)."""
    from srjs.tf import quiet_import

    return quiet_import("tensorflowjs")


def export_layers(model: keras.Model, out_dir: Path, scale: int, opts: ExportOptions = ExportOptions()) -> Path:
    """Write `model` as a TF.js layers model into `out_dir` (model.json + shards).

    `scale` is the upscaling factor, used to name PixelShuffle layers PixelShuffle{scale}x.
    Returns the path of model.json.
    """
    out_dir = Path(out_dir)
    tfjs = tensorflowjs()
    with _atomic_dir(out_dir) as tmp:
        # save_keras_model goes through a temporary .h5, which gives the weight names
        # (layer/kernel) and order tfjs-layers expects.
        tfjs.converters.save_keras_model(
            model, str(tmp), quantization_dtype_map=opts.quantization, weight_shard_size_bytes=opts.shard_bytes)
        path = tmp / MODEL_JSON
        data = json.loads(path.read_text())
        # patch names custom layers as UpscalerJS registers them (PixelShuffle -> PixelShuffle{N}x)
        # and applies upscalerjs_compat's top-level "Model"
        data = patch_model_json(data, upscalerjs_compat=opts.upscalerjs_compat, scale=scale).data
        _write_json(path, data)
    return out_dir / MODEL_JSON


def export_saved_model(model: keras.Model, out_dir: Path, *, keras_metadata: bool = True) -> Path:
    """Write a SavedModel whose serving_default maps float32 [1,H,W,C] "input" -> "output".

    H and W are dynamic. With `keras_metadata` (a model dir's saved_model/) it is saved
    through Keras, so `srjs convert saved_model/` (or keras.models.load_model with srjs's
    custom objects) gets the full model back from the layer configs; without it (the graph
    export's input) it is a plain module holding only the variables and the signature.
    Either way the model is traced once, for the signature: Keras' per-layer call traces
    (save_traces) and a tracked Keras model would each trace every layer again, which took
    about 60 s for a 23-block RRDBNet. Callers write into a temporary folder; returns `out_dir`.
    """
    out_dir = Path(out_dir)
    spec = tf.TensorSpec([1, None, None, model.input_shape[-1]], tf.float32, name="input")  # C: 1, 3 or 4

    @tf.function(input_signature=[spec])
    def serve(input):  # noqa: A002 - the argument name becomes the signature's input name
        return {"output": model(input, training=False)}

    if keras_metadata:
        model.save(str(out_dir), save_format="tf", signatures={"serving_default": serve}, include_optimizer=False,
                   save_traces=False)
    else:
        module = tf.Module()
        module.variables_ = list(model.variables)  # only the variables: tracking the Keras model
        module.serve = serve                        # would save (and re-trace) every layer's call
        tf.saved_model.save(module, str(out_dir), signatures={"serving_default": serve})
    return out_dir


def export_graph(model: keras.Model, out_dir: Path, opts: ExportOptions = ExportOptions(),
                 simplify: bool = True) -> Path:
    """Write `model` as a TF.js graph model into `out_dir` (model.json + shards).

    simplify: apply the `fold` rewrites first (exact: folds constant scales and activations
    into convs, drops identity layers). The serving function is traced once and handed to
    the converter's own freeze / grappler / writer steps directly, the same steps
    `convert_tf_saved_model` runs after loading a SavedModel; no SavedModel is written and
    read back for it (for a 23-block RRDBNet that round trip cost about a minute).
    Returns the path of model.json.
    """
    out_dir = Path(out_dir)
    if simplify:
        from srjs.convert.fold import simplified_call

        call = simplified_call(model)
    else:
        def call(x):
            return model(x, training=False)
    spec = tf.TensorSpec([1, None, None, model.input_shape[-1]], tf.float32, name="input")  # C: 1, 3 or 4

    @tf.function(input_signature=[spec])
    def serve(input):  # noqa: A002 - the argument name becomes the signature's input name
        return {"output": call(input)}

    from srjs.convert.tfjs_ops import tfjs_graph_ops

    with tfjs_graph_ops():  # traced here: exact GELU as Erf (TF.js has no Erfc)
        concrete = serve.get_concrete_function()
    with _atomic_dir(out_dir) as tmp:
        _convert_concrete_function(concrete, tmp / MODEL_JSON, opts)
        path = tmp / MODEL_JSON
        _write_json(path, _canonical_graph_json(json.loads(path.read_text())))
    return out_dir / MODEL_JSON


def _convert_concrete_function(concrete, model_json: Path, opts: ExportOptions) -> None:
    """tensorflowjs' `_convert_tf_saved_model` from the point where it holds the serving
    function: freeze the variables, run grappler, extract and write the weights."""
    from google.protobuf.json_format import MessageToDict
    from tensorflow.core.protobuf import meta_graph_pb2

    tfjs = tensorflowjs()
    v2 = tfjs.converters.tf_saved_model_conversion_v2
    frozen, stash = _frozen_graph(concrete)
    # The SignatureDef a SavedModel would carry: keys "input"/"output" name the tensors.
    named = meta_graph_pb2.SignatureDef()
    for key, tensor in (("input", concrete.inputs[0]), ("output", concrete.outputs[0])):
        side = named.inputs if key == "input" else named.outputs
        side[key].dtype = tensor.dtype.as_datatype_enum
        side[key].tensor_shape.CopyFrom(tensor.shape.as_proto())
    signature = v2._build_signature_def(frozen, concrete.inputs, concrete.outputs, named)
    optimized = v2.optimize_graph(frozen, signature)
    if not _restore_constants(optimized, stash):  # grappler computed with a stand-in: redo in full
        frozen, _ = _frozen_graph(concrete, stash_weights=False)
        optimized = v2.optimize_graph(frozen, signature)
    del frozen
    weights = v2.extract_weights(optimized)
    v2.write_artifacts(MessageToDict(optimized), weights, str(model_json), tf.__version__, signature,
                       quantization_dtype_map=opts.quantization, weight_shard_size_bytes=opts.shard_bytes)


def _frozen_graph(concrete, stash_weights: bool = True):
    """`concrete` with its variables as constants, as a tf.Graph: what tensorflowjs'
    `_freeze_saved_model_v2` computes (convert_variables_to_constants_v2 with aggressive
    inlining), without wrapping the frozen GraphDef back into a ConcreteFunction, which the
    converter never calls and which took most of the freeze (tens of seconds for x4plus).
    Returns (graph, stash): stash_weights swaps the weights out (`_stash_constants`)."""
    from tensorflow.python.framework import convert_to_constants as c2c

    data = c2c._FunctionConverterDataInEager(func=concrete, lower_control_flow=True, aggressive_inlining=True)
    graph_def, _ = c2c._replace_variables_by_constants(converter_data=data)
    for node in graph_def.node:  # the wrapper drops this attribute; keep model.json as it was
        if node.op == "Placeholder":
            node.attr.pop("_user_specified_name", None)
    stash = _stash_constants(graph_def) if stash_weights else {}
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    return graph, stash


# Float constants at least this big travel through grappler as stand-ins (`_stash_constants`).
_STASH_MIN_VALUES = 256
# Stand-in values: odd integers far from 0 and 1 (which constant folding simplifies away),
# 4099 apart so that no small shift or scale of one is another; exact in float32 up to 2**24.
_MARKER_BASE, _MARKER_STEP, _MARKERS = 2**22 + 1, 4099, 3000


def _stash_constants(graph_def) -> dict:
    """Replace each big float32 constant of `graph_def` by a same-shape fill of one marker value
    and return {marker: the real TensorProto}.

    Why: grappler and the converter's passes copy the whole GraphDef about eight times
    (Python proto, tf.Graph, meta graph, serialized string, C++ copies, and back); with the
    weights inside, that was the peak of a 23-block RRDBNet convert (2 GiB). The passes only
    rewire and fuse ops around the weights, so they run on stand-ins and the real tensors go
    back afterwards (`_restore_constants` checks that nothing computed with them). Markers, not
    names, identify them: grappler folds Identity(ReadVariableOp) into a renamed constant.
    """
    from tensorflow.core.framework import tensor_pb2, types_pb2

    stash = {}
    for node in graph_def.node:
        tensor = node.attr["value"].tensor if node.op == "Const" else None
        if tensor is None or tensor.dtype != types_pb2.DT_FLOAT or not tensor.tensor_content:
            continue
        if len(tensor.tensor_content) < 4 * _STASH_MIN_VALUES or len(stash) == _MARKERS:
            continue
        marker = float(_MARKER_BASE + _MARKER_STEP * len(stash))
        real = tensor_pb2.TensorProto()
        real.CopyFrom(tensor)
        stash[marker] = real
        tensor.ClearField("tensor_content")
        tensor.float_val.append(marker)
    return stash


def _restore_constants(graph_def, stash: dict) -> bool:
    """Put the stashed tensors back into `graph_def` (grappler's output) where their stand-ins are.

    False, with nothing trusted, when grappler did more than rewire and rename: a big float
    constant that is not an unchanged stand-in (same marker, same shape) was computed from one,
    and so was a small one holding marker-sized values (no weight of an SR model is near 2**21).
    """
    import numpy as np

    from tensorflow.core.framework import types_pb2

    found = []
    for node in graph_def.node:
        tensor = node.attr["value"].tensor if node.op == "Const" else None
        if tensor is None or tensor.dtype != types_pb2.DT_FLOAT:
            continue
        real = stash.get(tensor.float_val[0]) if len(tensor.float_val) == 1 and not tensor.tensor_content else None
        if real is not None and tensor.tensor_shape == real.tensor_shape:
            found.append((tensor, real))
            continue
        values = 1
        for dim in tensor.tensor_shape.dim:
            values *= dim.size
        if values >= _STASH_MIN_VALUES or np.any(np.abs(tf.make_ndarray(tensor)) >= _MARKER_BASE / 2):
            return False
    for tensor, real in found:
        tensor.CopyFrom(real)
    return True


def _canonical_graph_json(data: dict) -> dict:
    """Graph model.json with protobuf-map-derived objects in sorted key order.

    The converter serialises node attributes from protobuf maps, whose iteration order
    changes between runs; sorting them (not the top level, whose order is fixed and read by
    people) makes the file byte-stable.
    """
    def ordered(value):
        if isinstance(value, dict):
            return {k: ordered(value[k]) for k in sorted(value)}
        if isinstance(value, list):
            return [ordered(v) for v in value]
        return value

    return {key: ordered(value) if key in ("modelTopology", "signature", "modelInitializer") else value
            for key, value in data.items()}


def _write_json(path: Path, data: dict) -> None:
    # Insertion order is the converter's (itself fixed), so no sort: tfjs readers and humans
    # expect format/generatedBy/... first.
    path.write_text(strict_json.dumps(data))


def _atomic_dir(target: Path):
    """A temporary sibling of `target`, renamed onto it at the end; only an earlier TF.js
    export (has model.json) or an empty folder is ever replaced."""
    return atomic.atomic_dir(target, is_ours=lambda p: (p / MODEL_JSON).exists(), what="a TF.js model folder")
