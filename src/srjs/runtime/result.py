"""RunResult, and reading the harnesses' result JSON + .npy outputs back from a folder."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class RunResult:
    """One model x backend in one runtime. Times in milliseconds; outputs are float32 NHWC
    arrays, one per input, or None when the run failed (then `error` says why)."""

    model: Path
    format: str  # 'layers' | 'graph'
    runtime: str  # 'node' | 'browser'
    backend: str  # asked for: 'cpu' | 'wasm' | 'webgl'
    outputs: list[np.ndarray] | None
    load_ms: float | None
    first_ms: float | None  # first predict, incl. warm-up / shader compile
    warm_ms: float | None  # median of the warm runs, on the first input
    error: str | None
    backend_used: str | None = None  # what tf.getBackend() reported
    warm_runs_ms: list[float] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # tfjs version, wasm/webgl flags

    @property
    def ok(self) -> bool:
        return self.error is None


def collect(out_dir: Path, models: list[tuple[Path, str]], backends: list[str], runtime: str,
            missing_reason: str) -> list[RunResult]:
    """Results in (model, backend) order; a combination the harness never wrote becomes a
    RunResult whose error is `missing_reason` (a crash or timeout must not hide the rest)."""
    results = []
    for mi, (model, fmt) in enumerate(models):
        for backend in backends:
            path = out_dir / f"result_{mi}_{backend}.json"
            if not path.is_file():
                results.append(RunResult(model, fmt, runtime, backend, None, None, None, None,
                                         missing_reason))
                continue
            raw = json.loads(path.read_text())
            outputs = None
            if raw["error"] is None:
                outputs = [np.load(out_dir / name) for name in raw["outputs"]]
            results.append(RunResult(
                model=model, format=fmt, runtime=runtime, backend=backend, outputs=outputs,
                load_ms=raw["load_ms"], first_ms=raw["first_ms"], warm_ms=raw["warm_ms"],
                error=raw["error"], backend_used=raw["backend_used"],
                warm_runs_ms=raw["warm_runs_ms"], info=raw["info"] or {},
            ))
    return results
