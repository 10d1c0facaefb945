"""TF.js in Node (js/harness/run-node.mjs) against tensorflowjs's Python loader."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from srjs.errors import BadInput
from srjs.runtime import run_tfjs
from srjs.tf import keras, tf
from tests.conftest import SLIM_X2, THICK_X2, npm_model

from . import CUSTOM, MultiplyBeta, PixelShuffle, PixelShuffle2x, PixelUnshuffle, max_diff, reference, tensorflowjs

pytestmark = pytest.mark.slow

# Float weights: TF.js and TF differ only by float32 summation order.
TOL = 1e-4


@pytest.fixture(scope="module")
def slim_x2():
    return npm_model(SLIM_X2)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(7)
    # Two sizes: the layers model has dynamic H, W; each input is a separate predict.
    return [rng.uniform(0, 255, (1, 16, 24, 3)).astype(np.float32),
            rng.uniform(0, 255, (1, 12, 8, 3)).astype(np.float32)]


def test_slim_matches_python_on_cpu_and_wasm(slim_x2, inputs):
    results = run_tfjs([(slim_x2, "layers")], inputs, runtime="node", backends=("cpu", "wasm"), warm_runs=2)
    assert [(r.backend, r.backend_used, r.runtime, r.error) for r in results] == [
        ("cpu", "cpu", "node", None), ("wasm", "wasm", "node", None)]
    expected = [reference(slim_x2, x) for x in inputs]
    for r in results:
        assert [o.shape for o in r.outputs] == [(1, 32, 48, 3), (1, 24, 16, 3)]
        for got, want in zip(r.outputs, expected):
            assert max_diff(got, want) <= TOL * 255, r.backend
        assert r.load_ms > 0 and r.first_ms > 0 and r.warm_ms > 0
        assert len(r.warm_runs_ms) == 2 and min(r.warm_runs_ms) <= r.warm_ms <= max(r.warm_runs_ms)
        assert r.info["tfjs"] == "4.22.0"


def test_thick_custom_layers_load_and_match_on_cpu():
    # esrgan-thick registers MultiplyBeta and PixelShuffle2x the UpscalerJS way; range [0, 1].
    thick = npm_model(THICK_X2)
    x = np.random.default_rng(3).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)
    (r,) = run_tfjs([(thick, "layers")], [x], runtime="node", backends=("cpu",), warm_runs=0)
    assert r.error is None
    assert r.warm_ms is None and r.warm_runs_ms == []
    assert max_diff(r.outputs[0], reference(thick, x)) <= TOL * 1


def _tiny_srjs_model():
    """srjs's own layer names with config keys: PixelUnshuffle, PixelShuffle (generic scale),
    PixelShuffle2x, MultiplyBeta(beta=0.5), around random convs."""
    keras.utils.set_random_seed(11)
    inp = keras.Input((None, None, 3))
    x = PixelUnshuffle(scale=2)(inp)
    x = keras.layers.Conv2D(48, 3, padding="same")(x)
    x = MultiplyBeta(beta=0.5)(x)
    x = PixelShuffle(scale=2)(x)
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu")(x)
    out = PixelShuffle2x(scale=2)(x)
    return keras.Model(inp, out)


def _graph_model():
    keras.utils.set_random_seed(12)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(12, 3, padding="same")(x)
    out = PixelShuffle2x(scale=2)(MultiplyBeta(beta=0.2)(x))
    return keras.Model(inp, out)


def test_srjs_layers_and_graph_models(tmp_path):
    tfjs = tensorflowjs()
    layers_model = _tiny_srjs_model()
    tfjs.converters.save_keras_model(layers_model, str(tmp_path / "layers"))
    saved = tmp_path / "saved"
    graph_model = _graph_model()
    spec = tf.TensorSpec([1, None, None, 3], tf.float32)
    tf.saved_model.save(graph_model, str(saved),
                        signatures=tf.function(lambda x: {"y": graph_model(x)}).get_concrete_function(spec))
    tfjs.converters.convert_tf_saved_model(str(saved), str(tmp_path / "graph"))
    topology = json.loads((tmp_path / "layers" / "model.json").read_text())["modelTopology"]
    names = {layer["class_name"] for layer in topology["model_config"]["config"]["layers"]}
    assert set(CUSTOM) <= names  # the JS side really meets each custom class

    x = np.random.default_rng(5).uniform(0, 1, (1, 10, 14, 3)).astype(np.float32)
    results = run_tfjs([(tmp_path / "layers" / "model.json", "layers"), (tmp_path / "graph", "graph")],
                       [x], runtime="node", backends=("cpu", "wasm"), warm_runs=1)
    assert [(r.format, r.backend, r.error) for r in results] == [
        ("layers", "cpu", None), ("layers", "wasm", None), ("graph", "cpu", None), ("graph", "wasm", None)]
    want = {"layers": layers_model.predict(x, verbose=0), "graph": graph_model.predict(x, verbose=0)}
    for r in results:
        assert r.outputs[0].shape == (1, 20, 28, 3)
        assert max_diff(r.outputs[0], want[r.format]) <= TOL, (r.format, r.backend)


def test_one_failing_model_does_not_hide_the_others(tmp_path, slim_x2, inputs):
    broken = tmp_path / "broken"
    shutil.copytree(slim_x2.parent, broken)
    text = (broken / "model.json").read_text().replace('"class_name": "UpSampling2D"', '"class_name": "NoSuchLayer"')
    (broken / "model.json").write_text(text)
    results = run_tfjs([(broken / "model.json", "layers"), (slim_x2, "layers")], inputs[:1],
                       runtime="node", backends=("cpu",), warm_runs=0)
    assert "NoSuchLayer" in results[0].error and results[0].outputs is None
    assert results[1].error is None
    assert max_diff(results[1].outputs[0], reference(slim_x2, inputs[0])) <= TOL * 255


def test_bad_arguments_are_bad_input(slim_x2, tmp_path):
    x = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(BadInput, match="webgl.*choose from cpu, wasm"):
        run_tfjs([(slim_x2, "layers")], [x], runtime="node", backends=("webgl",))
    with pytest.raises(BadInput, match="no TF.js runtime named 'deno'"):
        run_tfjs([(slim_x2, "layers")], [x], runtime="deno")
    with pytest.raises(BadInput, match="does not exist"):
        run_tfjs([(tmp_path / "none.json", "layers")], [x])
    with pytest.raises(BadInput, match=r"expected NHWC"):
        run_tfjs([(slim_x2, "layers")], [x[0]])


@pytest.mark.parametrize("runtime", ["node", "browser"])
def test_missing_node_modules_says_run_make_setup(tmp_path, monkeypatch, slim_x2, runtime):
    from srjs.runtime import env

    shutil.copytree(env.js_dir() / "harness", tmp_path / "harness")
    monkeypatch.setenv("SRJS_JS_DIR", str(tmp_path))
    with pytest.raises(BadInput, match=r"node_modules lacks @tensorflow/tfjs.*run `make setup`$"):
        run_tfjs([(slim_x2, "layers")], [np.zeros((1, 4, 4, 3), np.float32)], runtime=runtime)
