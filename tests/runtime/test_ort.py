"""ONNX exports in onnxruntime-web: Node wasm, Chromium wasm and WebGPU (SwiftShader, software).

One tiny random-weight model per family (tests/convert/test_onnx_export.py's cases) runs in
one Chromium page on both backends; verify's ort rows on a uint8-quantized model dir; a wrong
ONNX file fails verify. Float32 within 1e-4 of the output's scale everywhere.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from srjs.archs import ARCHS
from srjs.convert import onnx_dir, onnx_export
from srjs.runtime.ort import run_ort_browser
from srjs.verify import verify_model_dir
from tests.convert.test_onnx_export import CASES, SHAPES_BY_CASE, _model_dir, _random_model

# one case per family, covering every translated layer class the family builds
FAMILY_CASES = {"rrdbnet": "rrdbnet-x2", "srvgg": "srvgg-x2-ncnn-leakyrelu", "rdn": "rdn-x3-ups",
                "rrdn": "rrdn-x4", "span": "span-x4", "plksr": "plksr-x4-sparse",
                "realplksr": "realplksr-x4-groupnorm", "realcugan": "realcugan-x3-pro"}


def test_every_registered_family_runs_in_the_browser_test():
    assert set(ARCHS.names()) <= set(FAMILY_CASES)


# Real-CUGAN's fixed 64-channel U-Nets take 36 s of SwiftShader shader compiles and arithmetic on
# the 2-core machine (WebGPU parity measured once there: 2.6e-6 of the output scale); the suite
# runs them on wasm only. Every other family runs on both.
WASM_ONLY = {"realcugan"}


@pytest.mark.slow
def test_every_family_matches_keras_in_chromium_wasm_and_webgpu(tmp_path):
    from srjs.runtime.browser import BrowserSession

    cases = [FAMILY_CASES[arch] for arch in ARCHS.names()]
    groups: dict = {}  # input shape -> [(case, model path, Keras output)]
    for case in cases:
        arch, params = CASES[case]
        shape = SHAPES_BY_CASE.get(case, ((1, 12, 16, 3),))[0]
        x = np.random.default_rng(2).uniform(0, 1, shape).astype(np.float32)
        model = _random_model(arch, params)
        path = tmp_path / f"{case}.onnx"
        path.write_bytes(onnx_export.to_onnx(model).SerializeToString())
        backends = ("wasm",) if arch in WASM_ONLY else ("wasm", "webgpu")
        groups.setdefault((shape, backends), (x, []))[1].append((case, path, model(x).numpy()))
    checked = 0
    with BrowserSession() as session:
        for (_, backends), (x, group) in groups.items():
            results = run_ort_browser([(path, "onnx") for _, path, _ in group], [x], backends=backends,
                                      warm_runs=0, session=session)
            by_model = {(r.model.name, r.backend): r for r in results}
            for case, path, ref in group:
                for backend in backends:
                    result = by_model[(path.name, backend)]
                    assert result.ok, f"{case} {backend}: {result.error}"
                    rel = float(np.abs(result.outputs[0] - ref).max()) / float(np.abs(ref).max())
                    assert rel <= 1e-4, f"{case} on {backend}: {rel:.3g} of the output scale"
                    if backend == "webgpu":
                        assert result.info["webgpu"] and "swiftshader" in result.info["adapter"].lower()
                    checked += 1
    assert checked == 2 * len(cases) - sum(CASES[c][0] in WASM_ONLY for c in cases)


@pytest.fixture(scope="module")
def uint8_onnx_dir(tmp_path_factory):
    arch, params = CASES["srvgg-x4-prelu"]
    root = _model_dir(tmp_path_factory.mktemp("ort"), _random_model(arch, params, seed=9), arch, params,
                      quantization={"uint8": "*"})
    onnx_dir.add_onnx(root, check_images_=onnx_dir.check_images(1.0, side=16, names=["astronaut"]))
    return root


@pytest.mark.slow
def test_verify_runs_both_onnx_files_in_node_and_chromium(uint8_onnx_dir):
    report = verify_model_dir(uint8_onnx_dir, runtimes=("ort-node", "ort-browser"), shapes=((16, 20),),
                              warm_runs=1)
    got = {(r.format, r.runtime, r.backend) for r in report.rows}
    assert got == {("onnx", "ort-node", "wasm"), ("onnx-fp16", "ort-node", "wasm"),
                   ("onnx", "ort-browser", "wasm"), ("onnx", "ort-browser", "webgpu"),
                   ("onnx-fp16", "ort-browser", "wasm")}
    assert report.ok, report.table()
    assert all(r.max_abs_diff <= r.tol for r in report.rows)
    # SwiftShader has no shader-f16: the float16-compute file is named as not run, not passed
    assert report.skipped == ["onnx-fp16/ort-browser/webgpu: the WebGPU adapter has no shader-f16 "
                              "(float16 compute)"]


def test_verify_fails_an_onnx_file_with_other_weights(uint8_onnx_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(uint8_onnx_dir, broken)
    arch, params = CASES["srvgg-x4-prelu"]
    other = onnx_export.to_onnx(_random_model(arch, params, seed=10))
    (broken / "onnx" / "model.onnx").write_bytes(other.SerializeToString())
    report = verify_model_dir(broken, runtimes=("ort-node",), shapes=((16, 20),), warm_runs=0)
    rows = {r.format: r for r in report.rows}
    assert not rows["onnx"].ok and rows["onnx"].max_abs_diff > 100 * rows["onnx"].tol
    assert rows["onnx-fp16"].ok and not report.ok


def test_bench_times_the_onnx_export_in_node(uint8_onnx_dir):
    from srjs.evaluate.latency import run_bench

    bench = run_bench([uint8_onnx_dir], runtimes=("ort-node",), sizes=(24,), tiles=(0, 8), warm=1, pad=4,
                      progress=False)
    rows = {t.tile: t for t in bench.timings}
    assert set(rows) == {0, 8} and all(t.error is None for t in rows.values())
    assert {(t.runtime, t.backend, t.format) for t in rows.values()} == {("ort-node", "wasm", "onnx")}
    assert rows[8].tiles == 4 and rows[8].method == "per-tile" and rows[0].warm_ms > 0  # 24 px in 16 px windows

