"""run_tfjs: one entry point over the runtimes (Node, headless Chromium)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from srjs.errors import BadInput
from srjs.registry import Registry
from srjs.runtime.browser import BrowserSession, run_browser
from srjs.runtime.node import run_node
from srjs.runtime.result import RunResult

RUNTIMES: Registry[Callable[..., list[RunResult]]] = Registry("TF.js runtime")
RUNTIMES.register("node")(run_node)
RUNTIMES.register("browser")(run_browser)


def run_tfjs(models: Sequence[tuple[Path, str]], inputs: Sequence[np.ndarray], runtime: str = "node",
             backends: Sequence[str] = ("cpu",), warm_runs: int = 3, *, timeout_s: float = 900,
             session: BrowserSession | None = None) -> list[RunResult]:
    """Run TF.js models the way users load them and return their outputs and timings.

    models: (model.json path or its folder, 'layers' | 'graph') pairs. inputs: float32 NHWC
    arrays in the models' value range, each run through every model. runtime: 'node'
    (backends cpu, wasm) or 'browser' (cpu, webgl, wasm; pass `session` to reuse a running
    Chromium). warm_runs: timed repeats on the first input after the first run (warm_ms is
    their median, in ms). timeout_s bounds the whole call.

    Returns one RunResult per model x backend, models outer; a failed combination carries its
    error string and outputs None, and never hides the others. Missing node, chromium or
    js/node_modules raise BadInput.
    """
    try:
        runner = RUNTIMES.get(runtime)
    except KeyError as err:
        raise BadInput(str(err).strip('"')) from None
    kwargs = {"session": session} if runtime == "browser" else {}
    return runner(list(models), list(inputs), backends=tuple(backends), warm_runs=warm_runs,
                  timeout_s=timeout_s, **kwargs)
