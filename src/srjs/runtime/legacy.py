"""Load a layers model in an old TF.js runtime (1.7, before the 'Functional' class name).

UpscalerJS users on old tfjs versions hit "Unknown layer: Functional" with Keras 2.4+ exports;
`srjs patch --upscalerjs-compat` / `srjs convert --upscalerjs-compat` write 'Model' instead.
This runs js/harness/run-legacy.mjs to prove such a file loads and predicts there.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from srjs.errors import BadInput
from srjs.runtime import env


def run_legacy_tfjs(model_json: Path, batch: np.ndarray, timeout_s: float = 300) -> tuple[np.ndarray | None, str | None]:
    """Predict `batch` (float32 NHWC) with TF.js 1.7 on cpu: (output, None) or (None, error)."""
    env.require_js_deps("node")
    if not Path(model_json).is_file():
        raise BadInput(f"TF.js model {model_json} does not exist")
    with tempfile.TemporaryDirectory(prefix="srjs-legacy-") as tmp:
        inp, out = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        np.save(inp, np.ascontiguousarray(batch, dtype=np.float32))
        done = subprocess.run([env.node(), str(env.harness("run-legacy.mjs")), str(model_json), str(inp), str(out)],
                              capture_output=True, text=True, timeout=timeout_s)
        replies = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not replies:
            return None, f"legacy harness printed no result (exit {done.returncode}): {done.stderr.strip()[-300:]}"
        reply = json.loads(replies[-1])
        return (np.load(out), None) if reply["ok"] else (None, reply["error"])
