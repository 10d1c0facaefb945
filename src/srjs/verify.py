"""`srjs verify`: run a model dir's TF.js exports in real TF.js and compare with Python.

The reference is the Keras model holding exactly the weights the TF.js artifact ships
(dequantized as TF.js decodes them), so a quantized variant is checked for faithful
execution, not for quantization error. Each format x runtime x backend gets one row: max
abs diff against the reference, the tolerance, and load / first-run / warm timings.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from srjs import image_channels, imageio, modeldir
from srjs.evaluate import results
from srjs.evaluate.results import fmt_number
from srjs.runtime import kinds
from srjs.errors import BadInput, CheckFailed
from srjs.verify_onnx import ORT_RUNTIMES, onnx_rows

SCHEMA = "srjs.verify/1"
FORMATS = {"layers": modeldir.TFJS_LAYERS_DIR, "graph": modeldir.TFJS_GRAPH_DIR}
# UpscalerJS hands back 8-bit-range pixels after its own scaling; 2 levels is the promise.
UPSCALERJS_TOL_LEVELS = 2.0
DEFAULT_REL_TOL = 1e-4  # of the output's scale (max |reference|), for float32 arithmetic


@dataclass
class VerifyRow:
    format: str
    runtime: str
    backend: str
    max_abs_diff: float | None
    tol: float
    ok: bool
    load_ms: float | None
    first_ms: float | None
    warm_ms: float | None
    error: str | None = None


@dataclass
class VerifyReport:
    model_dir: str
    input_shapes: list
    rows: list[VerifyRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # 'format/runtime/backend: why' not runnable here
    schema: str = SCHEMA

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    def table(self) -> str:
        """An aligned text table, one line per format x runtime x backend."""
        from srjs import tables

        rows = [asdict(r) | {"ok": "ok" if r.ok else "FAIL" + (": " + r.error if r.error else "")}
                for r in self.rows]
        number = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731  (tolerances span decades)
        return tables.render(rows, ("format", "runtime", "backend", "max_abs_diff", "tol", "load_ms", "first_ms",
                                    "warm_ms", "ok"), cells={"max_abs_diff": number, "tol": number})


def verify_inputs(value_max: float, shapes=((20, 28),), channels: int = 3) -> list[np.ndarray]:
    """Photo crops (scikit-image's astronaut) in the model's range and image channels
    (`image_channels`: luminance for grayscale models; RGBA ones get a diagonal alpha ramp, so
    the alpha path carries content); sides divisible by 4 so every pixel-unshuffle applies."""
    from skimage import data

    photo = data.astronaut().astype(np.float32) * (value_max / 255.0)
    crops = []
    for h, w in shapes:
        ramp = np.add.outer(np.arange(h), np.arange(w)) * (255.0 / max(h + w - 2, 1))
        crop = image_channels.to_model(photo[100:100 + h, 180:180 + w], np.round(ramp).astype(np.uint8),
                                       channels, value_max)
        crops.append(np.ascontiguousarray(crop[None]))
    return crops


def verify_model_dir(model_dir: Path, runtimes=("node",), backends: dict | None = None,
                     rel_tol: float = DEFAULT_REL_TOL, warm_runs: int = 3,
                     shapes=((20, 28),)) -> VerifyReport:
    """Run every TF.js export of `model_dir` in each runtime/backend; see the module doc."""
    from srjs.evaluate.shipped import load_shipped
    from srjs.runtime import run_tfjs

    if not runtimes:  # nothing run would be reported as nothing failed
        raise BadInput("verify needs at least one runtime (node, browser, upscalerjs)")
    model_dir = Path(model_dir)
    manifest = modeldir.read_manifest(model_dir)
    models = [(model_dir / folder / "model.json", fmt) for fmt, folder in FORMATS.items()
              if (model_dir / folder / "model.json").is_file()]
    if not models:
        raise BadInput(f"'{model_dir}' has no TF.js exports to verify (convert without --no-tfjs)")
    inputs = verify_inputs(manifest.value_max, shapes, manifest.channels)
    reference_model = load_shipped(model_dir)
    references = [np.asarray(reference_model(x, training=False)) for x in inputs]
    tol = rel_tol * max(float(np.abs(ref).max()) for ref in references)

    report = VerifyReport(str(model_dir), [list(x.shape) for x in inputs])
    for runtime in runtimes:
        chosen = (backends or {}).get(runtime) or kinds.get(runtime, "verify").check_backends
        if runtime == "upscalerjs":
            # UpscalerJS gives and takes RGB: a grayscale / RGBA model runs through the layers
            # definition's channel adapters, checked against the same rule in Python
            rgb = verify_inputs(manifest.value_max, shapes[:1])[0]
            want = image_channels.rgb_runner(lambda b: np.asarray(reference_model(b, training=False)),
                                             manifest.channels, manifest.value_max)(rgb)
            report.rows += [_upscalerjs_row(model_dir, manifest, rgb, want, backend) for backend in chosen]
            continue
        if runtime in ORT_RUNTIMES:  # the onnx/ files, in onnxruntime-web
            rows, skipped = onnx_rows(model_dir, runtime, chosen, inputs, rel_tol, warm_runs)
            report.rows += rows
            report.skipped += skipped
            continue
        for result in run_tfjs(models, inputs, runtime=runtime, backends=chosen, warm_runs=warm_runs):
            diff = None
            if result.ok:
                diff = max(float(np.abs(out - ref).max()) for out, ref in zip(result.outputs, references))
            report.rows.append(VerifyRow(
                format=result.format, runtime=runtime, backend=result.backend, max_abs_diff=diff,
                tol=tol, ok=result.ok and diff is not None and diff <= tol,
                load_ms=result.load_ms, first_ms=result.first_ms, warm_ms=result.warm_ms,
                error=result.error,
            ))
    return report


def _upscalerjs_row(model_dir: Path, manifest, batch: np.ndarray, reference: np.ndarray,
                    backend: str) -> VerifyRow:
    """The layers export inside UpscalerJS 1.0.0 itself (whole image), as a site would use it.

    UpscalerJS takes and returns 8-bit pixels, so the input is the photo crop in 8-bit and the
    reference is the Python output clipped to the value range; diff and tol are in model units.
    """
    from srjs.runtime import run_upscalerjs

    vmax = manifest.value_max
    image = imageio.to_rgb8(batch[0], vmax)
    want = np.clip(reference[0], 0, vmax)
    tol = UPSCALERJS_TOL_LEVELS * vmax / 255.0
    try:
        got = run_upscalerjs(model_dir / modeldir.TFJS_LAYERS_DIR, image, manifest.scale,
                             tuple(manifest.value_range), backend=backend,
                             channels=manifest.channels) * (vmax / 255.0)
    except CheckFailed as err:
        return VerifyRow("layers", "upscalerjs", backend, None, tol, False, None, None, None, str(err))
    diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    return VerifyRow("layers", "upscalerjs", backend, diff, tol, diff <= tol, None, None, None,
                     None if got.shape == want.shape else f"output shape {got.shape}, expected {want.shape}")


def write_json(report: VerifyReport, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    results.write_json(asdict(report) | {"ok": report.ok}, path)


def raise_if_failed(report: VerifyReport) -> None:
    failed = [f"{r.format}/{r.runtime}/{r.backend}" for r in report.rows if not r.ok]
    if failed:
        raise CheckFailed(f"verify failed for {', '.join(failed)} (tolerance {report.rows[0].tol:.3g})")
