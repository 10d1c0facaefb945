"""`srjs verify --runtime ort-node,ort-browser`: the model dir's onnx/ files in onnxruntime-web.

Each ONNX file is compared with the Keras model holding the weights it was exported from (the
shipped TF.js weights; for a float16 file, those weights rounded to float16), so a row checks
faithful execution, not weight rounding: float32 compute within verify's relative tolerance,
float16 compute within FP16_REL_TOL of the output's scale.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np


# float16 compute (10-bit mantissa, every layer rounded): 1% of the output's scale is about
# 2.5 8-bit levels at worst on one pixel; measured errors are 10-50x below it.
FP16_REL_TOL = 1e-2


ORT_RUNTIMES = ("ort-node", "ort-browser")  # srjs.runtime.ort.RUNNERS (imported lazily: it starts nothing)


def onnx_files(model_dir: Path) -> list[tuple[Path, str, str]]:
    """(path, format, weights dtype) of the model dir's ONNX files: format 'onnx' (float32),
    'onnx-fp16' (float16 compute) or 'onnx-fp16w' (float16 weights, float32 compute)."""
    from srjs.convert.onnx_dir import read_info

    info = read_info(model_dir)
    half = "onnx-fp16" if info["float16"]["activations"] == "float16" else "onnx-fp16w"
    return [(Path(model_dir) / info["files"]["float32"], "onnx", "float32"),
            (Path(model_dir) / info["files"]["float16"], half, "float16")]


def onnx_rows(model_dir: Path, runtime: str, backends, inputs: list[np.ndarray], rel_tol: float,
              warm_runs: int = 3) -> tuple[list, list[str]]:
    """(VerifyRows, skipped) for every ONNX file x backend of `model_dir` in `runtime`.

    skipped: 'format/runtime/backend: why' for combinations the runtime cannot run here
    (float16 compute on a WebGPU adapter without shader-f16)."""
    from srjs.evaluate.shipped import load_shipped
    from srjs.verify import VerifyRow

    files = onnx_files(model_dir)
    model = load_shipped(model_dir)
    references = {"float32": [np.asarray(model(x, training=False)) for x in inputs]}
    model.set_weights([w.astype(np.float16).astype(np.float32) for w in model.get_weights()])
    references["float16"] = [np.asarray(model(x, training=False)) for x in inputs]
    scale = max(float(np.abs(ref).max()) for ref in references["float32"])
    from srjs.runtime.ort import run_ort

    results = run_ort(runtime, [(path, fmt) for path, fmt, _ in files], inputs, backends, warm_runs)
    rows, skipped = [], []
    for result in results:
        weights = next(w for path, fmt, w in files if fmt == result.format)
        tol = (FP16_REL_TOL if result.format == "onnx-fp16" else rel_tol) * scale
        if result.ok and (result.info or {}).get("skipped"):
            skipped.append(f"{result.format}/{runtime}/{result.backend}: {result.info['skipped']}")
            continue
        diff = None
        if result.ok:
            diff = max(float(np.abs(out - ref).max()) if out.shape == ref.shape else float("inf")
                       for out, ref in zip(result.outputs, references[weights]))
        rows.append(VerifyRow(format=result.format, runtime=runtime, backend=result.backend,
                              max_abs_diff=diff, tol=tol, ok=result.ok and diff is not None and diff <= tol,
                              load_ms=result.load_ms, first_ms=result.first_ms, warm_ms=result.warm_ms,
                              error=result.error))
    return rows, skipped
