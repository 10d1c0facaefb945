"""Quantization search that scales (issue 17): conv output error instead of whole-network passes
per candidate, a first-order harm ranking, bisections, and progress lines off a terminal."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest

from srjs.optimize import layerwise, mixed, quantize
from srjs.optimize.calib import Quality
from srjs.progress import Progress
from srjs.tfjs_weights import Encoding


@pytest.fixture(scope="module")
def small_net():
    """conv(3->6, 3x3) -> LeakyReLU -> conv(6->5, 3x3, stride 2) -> conv(5->3, 1x1), random weights."""
    from srjs.tf import keras

    keras.utils.set_random_seed(7)
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(6, 3, padding="same", name="a")(x)
    y = keras.layers.LeakyReLU(0.2)(y)
    y = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="b")(y)
    y = keras.layers.Conv2D(3, 1, name="c")(y)
    model = keras.Model(x, y)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([w + np.float32(0.05) for w in layer.get_weights()])  # nonzero biases
    batch = np.random.default_rng(0).random((2, 12, 10, 3), dtype=np.float32)
    return model, batch


def _weights(model):
    from srjs.archs import keras_targets

    targets = keras_targets(model)
    return targets, {n: t.variable.numpy() for n, t in targets.items()}


def test_conv_choice_is_the_least_conv_output_error(small_net):
    """Each conv, in order, takes the range whose output (on its inputs in the network whose
    earlier convs hold their chosen values) is closest to its float output in the float net."""
    from srjs.tf import keras

    model, batch = small_net
    targets, weights = _weights(model)
    choices = layerwise.calibrate_convs(weights, {n: "uint8" for n in weights}, model, batch)
    assert set(choices) == set(weights)
    assert all(np.array_equal(t.variable.numpy(), weights[n]) for n, t in targets.items())  # restored
    for done, name in enumerate(("a", "b", "c")):
        layer = model.get_layer(name)
        probe = keras.Model(model.inputs, layer.input)
        for other, target in targets.items():
            target.variable.assign(weights[other])
        clean = layer(probe(batch)).numpy()  # float network
        for earlier in ("a", "b", "c")[:done]:
            for part in ("kernel", "bias"):
                targets[f"{earlier}/{part}"].variable.assign(
                    quantize.dequantized(weights[f"{earlier}/{part}"], choices[f"{earlier}/{part}"].encoding))
        x = probe(batch).numpy()
        kernel = weights[f"{name}/kernel"]
        errors = []
        for enc in quantize.candidate_encodings(kernel, "uint8"):  # brute force: the layer itself
            layer.kernel.assign(quantize.dequantized(kernel, enc))
            errors.append(float(np.mean((layer(x).numpy() - clean) ** 2)))
        layer.kernel.assign(kernel)
        picked = choices[f"{name}/kernel"]
        assert picked.encoding == quantize.candidate_encodings(kernel, "uint8")[int(np.argmin(errors))]
        assert picked.output_mse == pytest.approx(min(errors), rel=1e-3)
    for name, target in targets.items():
        target.variable.assign(weights[name])


def test_capped_window_scores_interior_outputs_exactly(small_net):
    from srjs.tf import tf

    model, batch = small_net
    layer = model.get_layer("b")
    x = np.random.default_rng(1).random((2, 20, 18, 6), dtype=np.float32)
    kernel = np.random.default_rng(2).normal(size=(3, 3, 6, 5)).astype(np.float32)
    window, padding = layerwise._window(x, layer, max_pixels=2 * 4 * 4)
    assert padding == "VALID" and window.shape[1:3] == (9, 9)
    small = tf.nn.convolution(window, kernel, strides=2, padding="VALID").numpy()
    full = tf.nn.convolution(x, kernel, strides=2, padding="SAME").numpy()
    assert small.shape == (2, 4, 4, 5)
    assert any(np.allclose(small, full[:, r:r + 4, c:c + 4], atol=1e-5) for r in range(7) for c in range(6))


def test_projected_harm_estimates_each_tensors_output_mse(small_net):
    model, batch = small_net
    targets, weights = _weights(model)
    uint8 = {n: quantize.tfjs_encoding(v, "uint8") for n, v in weights.items()}
    deltas = layerwise.encodings_deltas(weights, uint8)
    harm = layerwise.projected_harm(model, {n: t.variable for n, t in targets.items()}, deltas, batch,
                                    projections=256)
    reference = np.concatenate([model(b[None]).numpy() for b in batch])
    for name, values in weights.items():
        targets[name].variable.assign(quantize.dequantized(values, uint8[name]))
        actual = float(np.mean((model(batch).numpy() - reference) ** 2))
        targets[name].variable.assign(values)
        assert harm[name] == pytest.approx(actual, rel=0.35), name  # 256 projections: ~9% noise


def test_budget_search_passes_grow_with_log_tensors():
    """The held-out back-off used to walk one tensor at a time (hundreds of passes for x4plus)."""
    n = 700
    sizes = {f"t{i}": 100 for i in range(n)}
    harm = {f"t{i}": float(i) for i in range(n)}
    enc8, enc16 = Encoding("uint8", 1.0, 0.0), Encoding("uint16", 1.0, 0.0)

    def measure(a):  # 30 dB less 0.001 dB per uint8 tensor
        return Quality(30.0 - 0.001 * sum(e.dtype == "uint8" for e in a.values()), 99.0)

    result = mixed.choose(sizes, {n: enc8 for n in sizes}, {n: enc16 for n in sizes}, harm,
                          measure, measure, 30.0, 30.1, max_drop_db=0.5, min_fidelity_db=None)
    # calibration allows 500 tensors; held out (parent 30.1 dB: 0.1 dB less room) allows 400
    assert result.uint8 == [f"t{i}" for i in range(400)]
    assert result.backed_off == [f"t{i}" for i in range(499, 399, -1)]
    assert result.evaluations <= mixed.max_evaluations(n) < 25


def test_progress_lines_off_a_terminal():
    now = [0.0]
    out = io.StringIO()
    prog = Progress("quantize", stream=out, every_s=5, clock=lambda: now[0], heartbeat=False)
    prog.phase("calibrate", 4, "tensors")
    for t in (1, 6, 7, 20):
        now[0] = float(t)
        prog.update()
    lines = out.getvalue().splitlines()
    assert lines == ["quantize: calibrate 0/4 tensors, 0 s",
                     "quantize: calibrate 2/4 tensors, 6 s, about 6 s left in this step",
                     "quantize: calibrate 4/4 tensors, 20 s"]  # 1 s and 7 s: within 5 s of a line
    beat = io.StringIO()  # one long unit of work (a forward pass) still prints lines
    with Progress("optimize", stream=beat, every_s=0.05) as ticking:
        ticking.phase("load", 1, "steps")
        time.sleep(0.5)
    assert beat.getvalue().count("optimize: load 0/1 steps") >= 3
    silent = io.StringIO()
    off = Progress("quantize", stream=silent, enabled=False)
    off.phase("x", 1)
    off.update()
    assert silent.getvalue() == ""


@pytest.mark.slow
def test_uint8_search_runs_the_network_a_fixed_number_of_times(converted, tmp_path, monkeypatch, capfd):
    """Over the whole-network budget, esrgan-slim x4 (24 tensors) takes 5 network passes
    whatever the tensor count (the whole-network search runs about 120)."""
    from srjs.optimize import run
    from srjs.optimize.run import Recipe, make_variant
    from tests.conftest import SLIM_X4

    slim = converted(SLIM_X4)
    monkeypatch.setattr(run, "WHOLE_NETWORK_GMAC", 100.0)  # slim's whole-network search: 104.7 GMAC
    calls = []
    real = run._Runner.run

    def counted(self, batch=None):
        calls.append(batch is None)
        return real(self, batch)

    monkeypatch.setattr(run._Runner, "run", counted)
    manifest = make_variant(slim, tmp_path / "u8", Recipe(quantize="uint8"), progress=True)
    # reference + parent held-out + 2 tensorflowjs-vs-srjs checks + the variant's held-out score
    assert len(calls) == 5
    kept = manifest.results["quantization"]["kept"]
    assert manifest.results["heldout"]["fidelity_psnr_y"] == pytest.approx(max(kept["srjs_db"], kept["tensorflowjs_db"]),
                                                                       abs=1e-3)
    err = capfd.readouterr().err
    assert "optimize: calibrate ranges (conv output error) 0/24 tensors" in err
    assert "optimize: held-out check against tensorflowjs' ranges 2/2 passes" in err


@pytest.mark.slow
def test_small_models_keep_the_whole_network_search(converted, tmp_path, capfd):
    from srjs.optimize.run import Recipe, make_variant
    from tests.conftest import SLIM_X4

    make_variant(converted(SLIM_X4), tmp_path / "u8", Recipe(quantize="uint8"), progress=True)
    err = capfd.readouterr().err
    assert "optimize: calibrate ranges (whole network) 0/24 tensors" in err and "conv output error" not in err
