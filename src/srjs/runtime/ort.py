"""Run ONNX models in onnxruntime-web: wasm in Node (js/harness/run-ort-node.mjs), wasm and
WebGPU in headless Chromium (js/harness/ort.html). WebGPU here runs on SwiftShader, Chromium's
software adapter (no shader-f16), so its numbers are correctness checks, not GPU speed.

Results are `RunResult`s like TF.js's (format 'onnx' or 'onnx-fp16', runtime 'ort-node' or
'ort-browser'), read back by the same `collect`.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from srjs import strict_json
from srjs.errors import BadInput
from srjs.runtime import env
from srjs.runtime.browser import BrowserSession, page_job
from srjs.runtime.jobs import check_backends, write_inputs
from srjs.runtime.result import RunResult, collect

NODE_BACKENDS = ("wasm",)
BROWSER_BACKENDS = ("wasm", "webgpu")
FORMATS = ("onnx", "onnx-fp16")


def check_onnx_models(models) -> list[tuple[Path, str]]:
    """(path, 'onnx' | 'onnx-fp16') pairs, each an existing .onnx file. 'onnx-fp16' marks a
    file that computes in float16: WebGPU runs it only on adapters with shader-f16 (the
    result's info then says `skipped` and why; its outputs are empty)."""
    checked = []
    for path, fmt in models:
        path = Path(path)
        if not path.is_file() or path.suffix != ".onnx":
            raise BadInput(f"ONNX model {path} does not exist (or is not a .onnx file)")
        if fmt not in FORMATS:
            raise BadInput(f"model format '{fmt}' for {path} is not one of {', '.join(FORMATS)}")
        checked.append((path.resolve(), fmt))
    return checked


def _entry(path: str, fmt: str) -> dict:
    return {"path": path, "format": fmt, "needs_shader_f16": fmt == "onnx-fp16"}


def run_ort_node(models, inputs, backends=("wasm",), warm_runs: int = 3, timeout_s: float = 900,
                 threads: int = 1) -> list[RunResult]:
    """Every ONNX model on every backend in one Node process (onnxruntime-web, wasm).

    threads: wasm threads (1: onnxruntime-web's Node default)."""
    models = check_onnx_models(models)
    backends = check_backends(backends, NODE_BACKENDS, "ort-node")
    js = env.require_js_deps("node")
    with tempfile.TemporaryDirectory(prefix="srjs-ort-node-") as tmp:
        tmp = Path(tmp)
        out_dir = tmp / "out"
        job = {"models": [_entry(str(p), f) for p, f in models], "backends": backends,
               "inputs": [str(p) for p in write_inputs(inputs, tmp)], "out_dir": str(out_dir),
               "warm_runs": int(warm_runs), "threads": int(threads)}
        (tmp / "job.json").write_text(strict_json.dumps(job))
        try:
            done = subprocess.run([env.node(), str(env.harness("run-ort-node.mjs")), str(tmp / "job.json")],
                                  cwd=js, capture_output=True, text=True, timeout=timeout_s)
            tail = " | ".join(line for line in done.stderr.strip().splitlines()[-5:] if line.strip())
            reason = f"ort node harness exited with code {done.returncode}: {tail or 'no output'}"
        except subprocess.TimeoutExpired:
            reason = f"ort node harness timed out after {timeout_s:.0f} s"
        return collect(out_dir, models, backends, "ort-node", reason)


def run_ort_browser(models, inputs, backends=("wasm",), warm_runs: int = 3, timeout_s: float = 900,
                    session: BrowserSession | None = None, threads: int = 0) -> list[RunResult]:
    """Every ONNX model on every backend in one page of headless Chromium (cross-origin
    isolated, so wasm may use threads). threads: wasm threads, 0 = onnxruntime-web's default
    (half the logical cores, at most 4)."""
    models = check_onnx_models(models)
    backends = check_backends(backends, BROWSER_BACKENDS, "ort-browser")
    with page_job(session, "srjs-ort-browser-") as (session, tmp, mount):
        (tmp / "out").mkdir()
        inputs_url = mount(tmp)
        out_url = mount(tmp / "out", writable=True)
        job = {"models": [_entry(mount(path.parent) + path.name, fmt) for path, fmt in models],
               "backends": backends, "inputs": [inputs_url + p.name for p in write_inputs(inputs, tmp)],
               "out_url": out_url, "warm_runs": int(warm_runs), "threads": int(threads)}
        reply = session.call("ort.html", "srjsOrtRun", job, timeout_s)
        reason = "ort browser harness: " + (reply.get("error") or "no result written")
        return collect(tmp / "out", models, backends, "ort-browser", reason)


RUNNERS = {"ort-node": run_ort_node, "ort-browser": run_ort_browser}


def run_ort(runtime: str, models, inputs, backends, warm_runs: int = 3, **options) -> list[RunResult]:
    """`run_ort_node` or `run_ort_browser` by runtime name ('ort-node' | 'ort-browser')."""
    if runtime not in RUNNERS:
        raise BadInput(f"unknown ONNX runtime '{runtime}' (known: {', '.join(RUNNERS)})")
    return RUNNERS[runtime](models, inputs, backends=tuple(backends), warm_runs=warm_runs, **options)
