"""Run TF.js models in Node (js/harness/run-node.mjs): backends cpu and wasm."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from srjs import strict_json
from srjs.runtime import env
from srjs.runtime.jobs import check_backends, check_models, write_inputs
from srjs.runtime.result import RunResult, collect

BACKENDS = ("cpu", "wasm")


def run_node(models, inputs, backends=("cpu",), warm_runs: int = 3,
             timeout_s: float = 900) -> list[RunResult]:
    """Every model on every backend in one Node process; see `srjs.runtime.run_tfjs`."""
    models = check_models(models)
    backends = check_backends(backends, BACKENDS, "node")
    js = env.require_js_deps("node")
    script = env.harness("run-node.mjs")
    node = env.node()
    with tempfile.TemporaryDirectory(prefix="srjs-node-") as tmp:
        tmp = Path(tmp)
        out_dir = tmp / "out"
        job = {
            "models": [{"path": str(p), "format": f} for p, f in models],
            "backends": backends,
            "inputs": [str(p) for p in write_inputs(inputs, tmp)],
            "out_dir": str(out_dir),
            "warm_runs": int(warm_runs),
        }
        (tmp / "job.json").write_text(strict_json.dumps(job))
        try:
            done = subprocess.run([node, str(script), str(tmp / "job.json")], cwd=js,
                                  capture_output=True, text=True, timeout=timeout_s)
            reason = f"node harness exited with code {done.returncode}: {_tail(done.stderr)}"
        except subprocess.TimeoutExpired:
            reason = f"node harness timed out after {timeout_s:.0f} s"
        return collect(out_dir, models, backends, "node", reason)


def _tail(text: str, lines: int = 5) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no output"
