"""Python side of the TF.js runtimes srjs drives (Node and headless Chromium, js/harness/).

run_tfjs runs exported models in real TF.js and returns outputs + timings; run_upscalerjs
pushes an image through UpscalerJS itself. BrowserSession keeps one Chromium for many calls.
"""
from srjs.runtime.browser import BrowserSession
from srjs.runtime.result import RunResult
from srjs.runtime.run import RUNTIMES, run_tfjs
from srjs.runtime.upscalerjs import run_upscalerjs

__all__ = ["BrowserSession", "RunResult", "RUNTIMES", "run_tfjs", "run_upscalerjs"]
