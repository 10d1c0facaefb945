"""A model dir's onnx/ folder: model.onnx (float32) and model.fp16.onnx, checked for float16 safety.

The weights exported are the ones the model dir ships (its TF.js layers shards, decoded as
TF.js decodes them), so a quantized or pruned variant's ONNX file computes what its TF.js
package computes. The float16 file computes in float16 when the model is float16-safe on
real images (`fp16_safety`), else it stores float16 weights and computes in float32 (half
the download, no overflow). What was decided and why goes into the manifest's
results["onnx"], with the I/O conventions a caller needs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from srjs import atomic, modeldir
from srjs.convert import onnx_export
from srjs.errors import BadInput

ONNX_DIR = "onnx"
FLOAT32_FILE = "model.onnx"
FLOAT16_FILE = "model.fp16.onnx"
SCHEMA = "srjs.onnx/1"
FP16_MAX = 65504.0
# An activation must stay this many times below float16's largest value: a conv's partial sums
# and the runtime's order of accumulation can exceed the layer's output magnitude.
FP16_HEADROOM = 4.0
# The float16 output must agree with float32 to this PSNR (dB, on the 8-bit scale of the value
# range): 50 dB is well under one 8-bit level of RMS error.
FP16_MIN_PSNR_DB = 50.0
CHECK_SIDE = 32  # LR crop side, px, per built-in image (the float16 run is numpy: keep it small)
# The numpy float16 run is slow on large nets (esrgan-thick: minutes per crop on a loaded 2-core
# machine): it takes the first crops only; the activation peak (TensorFlow) sees all of them.
FLOAT16_RUN_IMAGES = 3


def check_images(value_max: float, side: int = CHECK_SIDE, names=None, channels: int = 3) -> list[np.ndarray]:
    """Centre crops of the built-in photos, float32 [1, side, side, channels] in [0, value_max]
    (grayscale: luminance; RGBA: opaque, as `image_channels.to_model` makes them)."""
    from srjs import image_channels
    from srjs.evaluate import datasets

    crops = []
    for image in datasets.builtin(names):
        h, w = image.hr.shape[:2]
        top, left = (h - side) // 2, (w - side) // 2
        rgb = image.hr[top:top + side, left:left + side].astype(np.float32) * (value_max / 255.0)
        crop = image_channels.to_model(rgb, None, channels, value_max)
        crops.append(np.ascontiguousarray(crop[None], dtype=np.float32))
    return crops


def max_activation(model, images: list[np.ndarray]) -> tuple[float, str]:
    """(largest |value| of any layer output over `images`, that layer's name), in float32."""
    from srjs.tf import keras, quiet_fds, tf

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])

    @tf.function(reduce_retracing=True)
    def peaks(x):  # reduced inside the graph: no layer's full output is kept
        return tf.stack([tf.reduce_max(tf.abs(t)) for t in probe(x, training=False)])

    best = np.zeros(len(layers))
    with quiet_fds():  # grappler logs failed remapper passes on this probe graph to fd 2
        for image in images:
            best = np.maximum(best, peaks(tf.constant(image)).numpy())
    k = int(np.argmax(best))
    return float(best[k]), layers[k].name


def run_onnx(proto_or_path, images: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of an ONNX model in onnxruntime (CPU) for each NHWC float32 image."""
    import onnxruntime as ort

    source = proto_or_path.SerializeToString() if hasattr(proto_or_path, "SerializeToString") else str(proto_or_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return [session.run(None, {onnx_export.INPUT: image})[0] for image in images]


def run_float16(proto, images: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of a float16-compute ONNX model with every tensor really float16 between ops.

    onnxruntime's CPU provider (and so its wasm build) runs float16 ops it has no float16
    kernel for in float32, which hides overflow; onnx's numpy reference evaluator keeps each
    op's inputs and outputs float16, as a WebGPU device with shader-f16 does."""
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(proto)
    return [np.asarray(evaluator.run(None, {onnx_export.INPUT: image})[0], np.float32) for image in images]


def psnr8(a: np.ndarray, b: np.ndarray, value_max: float) -> float:
    """PSNR in dB between two outputs on the 8-bit scale (both clipped to the value range)."""
    a = np.clip(a, 0, value_max) * (255.0 / value_max)
    b = np.clip(b, 0, value_max) * (255.0 / value_max)
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def fp16_safety(model, float32_proto, float16_proto, value_max: float,
                images: list[np.ndarray] | None = None) -> dict:
    """Is computing `model` in float16 safe? Measured on real photos (built-in crops).

    Two measures: the largest float32 activation of any layer (overflow: float16 ends at
    65504), and the float16 export's output (`run_float16`) against the float32 export's in
    onnxruntime (non-finite values, PSNR in dB on the 8-bit scale). Safe when the peak is
    FP16_HEADROOM below 65504, every value is finite and the PSNR reaches FP16_MIN_PSNR_DB.
    """
    if images is None:
        channels = int(float32_proto.graph.input[0].type.tensor_type.shape.dim[3].dim_value)
        images = check_images(value_max, channels=channels)
    peak, layer = max_activation(model, images)
    ref = run_onnx(float32_proto, images[:FLOAT16_RUN_IMAGES])
    half = run_float16(float16_proto, images[:FLOAT16_RUN_IMAGES])
    finite = all(bool(np.isfinite(h).all()) for h in half)
    psnr = min(psnr8(h, r, value_max) for h, r in zip(half, ref)) if finite else None
    reasons = []
    if peak * FP16_HEADROOM > FP16_MAX:
        reasons.append(f"activation peak {peak:.4g} in '{layer}' is within {FP16_HEADROOM:g}x of 65504")
    if not finite:
        reasons.append("the float16 output has inf/NaN")
    elif psnr < FP16_MIN_PSNR_DB:
        reasons.append(f"float16 output is {psnr:.1f} dB from float32 (< {FP16_MIN_PSNR_DB:g})")
    return {
        "safe": not reasons,
        "why_not": "; ".join(reasons),
        "max_abs_activation": round(peak, 4),
        "max_activation_layer": layer,
        "float16_psnr_db": None if psnr is None or not np.isfinite(psnr) else round(psnr, 2),
        "images": f"{len(images)} built-in photo crops of {images[0].shape[1]}x{images[0].shape[2]} px "
                  f"(float16 run: the first {min(len(images), FLOAT16_RUN_IMAGES)})",
    }


def conventions(manifest: modeldir.Manifest, proto) -> dict:
    """What a caller of the ONNX files needs to know: names, layout, dtype, range, scale."""
    return {
        "schema": SCHEMA,
        "opset": onnx_export.OPSET,
        "input": {"name": onnx_export.INPUT, "layout": "NHWC", "dtype": "float32",
                  "shape": ["N", "H", "W", int(proto.graph.input[0].type.tensor_type.shape.dim[3].dim_value)]},
        "output": {"name": onnx_export.OUTPUT, "layout": "NHWC", "dtype": "float32",
                   "shape": ["N", f"H*{manifest.scale}", f"W*{manifest.scale}",
                             int(proto.graph.output[0].type.tensor_type.shape.dim[3].dim_value)]},
        "value_range": list(manifest.value_range),
        "scale": manifest.scale,
    }


def export_model(model, manifest: modeldir.Manifest, out_dir: Path, *, check_images_=None) -> dict:
    """Write out_dir/model.onnx and model.fp16.onnx for `model`; returns results["onnx"].

    `model` must already hold the shipped weights (see `shipped_model`).
    """
    float32 = onnx_export.to_onnx(model, activations="float32", name=manifest.name)
    float16 = onnx_export.to_onnx(model, activations="float16", name=manifest.name)
    safety = fp16_safety(model, float32, float16, manifest.value_max, check_images_)
    if not safety["safe"]:
        float16 = onnx_export.to_onnx(model, activations="float32", weights="float16", name=manifest.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FLOAT32_FILE).write_bytes(float32.SerializeToString())
    (out_dir / FLOAT16_FILE).write_bytes(float16.SerializeToString())
    return conventions(manifest, float32) | {
        "files": {"float32": f"{ONNX_DIR}/{FLOAT32_FILE}", "float16": f"{ONNX_DIR}/{FLOAT16_FILE}"},
        "float16": {"weights": "float16", "activations": "float16" if safety["safe"] else "float32",
                    **safety},
    }


def read_info(model_dir: Path, manifest: modeldir.Manifest | None = None) -> dict:
    """The manifest's results["onnx"], checked: the files are the fixed names inside onnx/ (a
    manifest may come from anyone; its paths are never followed elsewhere) and the float16
    activations are float16 or float32. BadInput when absent or malformed."""
    manifest = manifest or modeldir.read_manifest(model_dir)
    info = manifest.results.get("onnx")
    if not info:
        raise BadInput(f"'{model_dir}' has no ONNX export; run `srjs onnx {model_dir}` first")
    expected = {"float32": f"{ONNX_DIR}/{FLOAT32_FILE}", "float16": f"{ONNX_DIR}/{FLOAT16_FILE}"}
    activations = (info.get("float16") or {}).get("activations") if isinstance(info, dict) else None
    if info.get("files") != expected or activations not in onnx_export.ACTIVATIONS:
        raise BadInput(f"'{model_dir}': manifest results.onnx is malformed (files must be {expected}, "
                       "float16.activations float16 or float32); re-run `srjs onnx`")
    return info


def shipped_model(model_dir: Path):
    """The model dir's Keras model with the weights it ships (TF.js layers decoded as TF.js
    does; the Keras file's own weights when there is no TF.js export)."""
    from srjs.evaluate.shipped import load_shipped, shipped_model_json

    if shipped_model_json(model_dir).is_file():
        return load_shipped(model_dir)
    return modeldir.load_keras(model_dir)


def add_onnx(model_dir: Path, *, check_images_=None) -> modeldir.Manifest:
    """Add onnx/ to an existing model dir (replacing an earlier one) and record it in the
    manifest: the folder is written atomically, then the manifest (file index included)."""
    model_dir = Path(model_dir)
    manifest = modeldir.read_manifest(model_dir)
    model = shipped_model(model_dir)
    target = model_dir / ONNX_DIR
    with atomic.atomic_dir(target, is_ours=lambda p: (p / FLOAT32_FILE).exists(),
                           what="an srjs onnx folder") as tmp:
        info = export_model(model, manifest, tmp, check_images_=check_images_)
    manifest.results["onnx"] = info
    manifest.files = modeldir.index_files(model_dir)
    atomic.write_text(model_dir / modeldir.MANIFEST, modeldir.manifest_text(manifest))
    return manifest
