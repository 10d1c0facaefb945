"""TF.js in headless Chromium (page.html) and UpscalerJS itself (upscaler.html)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from srjs.errors import BadInput
from srjs.runtime import BrowserSession, run_tfjs, run_upscalerjs
from srjs.runtime.upscalerjs import upscale_like_upscalerjs
from tests.conftest import SLIM_X2, THICK_X2, npm_model

from . import keras_model, max_diff, reference

pytestmark = pytest.mark.slow

TOL = 1e-4
# WebGL runs float32 on SwiftShader with its own op order (measured: 1.1e-4 abs on outputs up
# to ~270, the same as wasm); 10x the float tolerance leaves room for another GPU driver.
WEBGL_TOL = 1e-3


@pytest.fixture(scope="session")
def browser():
    # Chromium starts once per test session (about a second); each call gets a fresh context.
    with BrowserSession() as session:
        yield session


@pytest.fixture(scope="module")
def slim_x2():
    return npm_model(SLIM_X2)


def test_page_matches_python_on_cpu_webgl_wasm(browser, slim_x2):
    x = np.random.default_rng(7).uniform(0, 255, (1, 16, 24, 3)).astype(np.float32)
    results = run_tfjs([(slim_x2, "layers")], [x], runtime="browser", backends=("cpu", "webgl", "wasm"),
                       warm_runs=2, session=browser)
    assert [(r.backend, r.backend_used, r.runtime, r.error) for r in results] == [
        ("cpu", "cpu", "browser", None), ("webgl", "webgl", "browser", None), ("wasm", "wasm", "browser", None)]
    want = reference(slim_x2, x)
    diffs = {r.backend: max_diff(r.outputs[0], want) for r in results}
    assert diffs["cpu"] <= TOL * 255 and diffs["wasm"] <= TOL * 255, diffs
    assert diffs["webgl"] <= WEBGL_TOL * 255, diffs
    by = {r.backend: r for r in results}
    assert by["webgl"].info["WEBGL_RENDER_FLOAT32_ENABLED"] is True
    # COOP/COEP from srjs's server make the page cross-origin isolated: threaded wasm.
    assert by["wasm"].info["crossOriginIsolated"] is True
    assert by["wasm"].info["WASM_HAS_MULTITHREAD_SUPPORT"] is True
    assert all(r.load_ms > 0 and r.first_ms > 0 and r.warm_ms > 0 for r in results)


def test_page_reports_a_missing_shard_and_runs_the_rest(browser, slim_x2, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(slim_x2.parent, broken)
    (broken / "group1-shard1of1.bin").unlink()
    x = np.random.default_rng(8).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    bad, good = run_tfjs([(broken, "layers"), (slim_x2, "layers")], [x], runtime="browser",
                         backends=("cpu",), warm_runs=0, session=browser)
    assert "404" in bad.error and bad.outputs is None
    assert good.error is None and max_diff(good.outputs[0], reference(slim_x2, x)) <= TOL * 255


def test_page_loads_a_model_of_seven_4mib_shards_on_every_backend(browser):
    # Regression: over HTTP/1.1 (6 connections a host) TF.js awaited all 7 shard responses
    # before reading any body; 4 MiB bodies (more than Chromium buffers) held their connections
    # and the 7th shard never started, so the call hung until its timeout.
    thick = npm_model(THICK_X2)
    manifest = json.loads(thick.read_text())["weightsManifest"]
    shards = [thick.parent / p for group in manifest for p in group["paths"]]
    assert len(shards) == 7 and min(p.stat().st_size for p in shards) > 2 << 20
    x = np.random.default_rng(9).uniform(0, 1, (1, 8, 12, 3)).astype(np.float32)
    results = run_tfjs([(thick, "layers")], [x], runtime="browser", backends=("cpu", "webgl", "wasm"),
                       warm_runs=0, timeout_s=120, session=browser)
    assert [(r.backend, r.backend_used, r.error) for r in results] == [
        ("cpu", "cpu", None), ("webgl", "webgl", None), ("wasm", "wasm", None)]
    want = reference(thick, x)
    diffs = {r.backend: max_diff(r.outputs[0], want) for r in results}
    assert diffs["cpu"] <= TOL and diffs["wasm"] <= TOL and diffs["webgl"] <= WEBGL_TOL, diffs


def test_a_stalled_request_is_named_when_the_call_times_out(browser, slim_x2, monkeypatch):
    release = threading.Event()
    resolve = browser.server.resolve

    def stall_the_shard(url_path):
        if url_path.endswith(".bin"):
            release.wait(30)
        return resolve(url_path)

    monkeypatch.setattr(browser.server, "resolve", stall_the_shard)
    x = np.zeros((1, 4, 4, 3), np.float32)
    try:
        (result,) = run_tfjs([(slim_x2, "layers")], [x], runtime="browser", backends=("cpu",),
                             warm_runs=0, timeout_s=3, session=browser)
    finally:
        release.set()
    assert result.outputs is None
    assert "srjsRun timed out after 3000 ms; unfinished requests: GET http://127.0.0.1:" in result.error
    assert "/group1-shard1of1.bin (waiting for a response for " in result.error


def test_upscalerjs_tiled_output_matches_python(browser, slim_x2):
    image = np.random.default_rng(1).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    got = run_upscalerjs(slim_x2, image, 2, (0, 255), patch_size=16, padding=4, session=browser)
    assert got.shape == (64, 80, 3) and got.dtype == np.float32

    model = keras_model(str(slim_x2))

    def run(batch):
        return model.predict(batch, verbose=0)

    # Same tiling as UpscalerJS, in Python: measured max diff 1.2e-4 (webgl, its default here).
    tiled = upscale_like_upscalerjs(run, image, 2, (0, 255), patch_size=16, padding=4)
    assert max_diff(got, tiled) <= 2
    assert max_diff(got, tiled) <= 0.01  # float error only, far below one level
    # Against the whole image the seams show: padding 4 is less than the RDN's receptive
    # field (measured max 6.2 levels, 99th percentile 2.7), so this is no tolerance question.
    whole = upscale_like_upscalerjs(run, image, 2, (0, 255))
    assert 2 < max_diff(got, whole) < 16


def test_upscalerjs_whole_image_matches_python(browser, slim_x2):
    image = np.random.default_rng(2).integers(0, 256, (20, 12, 3), dtype=np.uint8)
    got = run_upscalerjs(slim_x2, image, 2, (0, 255), backend="cpu", session=browser)
    want = np.clip(reference(slim_x2, image[None].astype(np.float32))[0], 0, 255)
    assert max_diff(got, want) <= 2 and max_diff(got, want) <= TOL * 255


def test_upscalerjs_rejects_a_backend_its_page_lacks(slim_x2):
    with pytest.raises(BadInput, match="'wasm' is not one the UpscalerJS page loads"):
        run_upscalerjs(slim_x2, np.zeros((4, 4, 3), np.uint8), 2, (0, 255), backend="wasm")
