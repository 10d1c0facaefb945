"""srjs.convert.patch on real broken files: Keras 3 exports, UpscalerJS models, Lambda layers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srjs.convert.patch import patch_file, patch_model_json, validate_weights_manifest
from srjs.errors import BadInput
from srjs.tf import keras, tf  # module globals: the Lambdas below refer to `tf` as users' code does
from tests.conftest import THICK_X2, npm_model
from tests.runtime import CUSTOM, tensorflowjs  # test-local Keras twins of the JS custom layers

HERE = Path(__file__).parent
ISR_GANS = "npm:@upscalerjs/models@0.9.0/models/idealo/gans/model.json"


def load_tfjs_python(model_json: Path, custom_objects=None):
    loader = tensorflowjs().converters.keras_tfjs_loader
    with keras.utils.custom_object_scope(custom_objects or {}):
        return loader.load_keras_model(str(model_json))


def layer_list(data: dict) -> list[dict]:
    return data["modelTopology"]["model_config"]["config"]["layers"]


# ------------------------------------------------------------------ Keras 3 exports


@pytest.fixture(scope="module")
def keras3(tmp_path_factory) -> Path:
    """Exports written by Keras 3 + tensorflowjs 4.22 in a separate process (see keras3_models)."""
    out = tmp_path_factory.mktemp("keras3")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "0"}
    done = subprocess.run([sys.executable, str(HERE / "keras3_models.py"), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("flavour", ["save_keras_model", "keras_keras3"])
def test_keras3_export_fails_unpatched_and_matches_patched(keras3, tmp_path, flavour):
    src = keras3 / "net" / flavour / "model.json"
    raw = json.loads(src.read_text())
    assert raw["generatedBy"].startswith("keras v3.")
    with pytest.raises(Exception, match="batch_shape|Unrecognized keyword|keras_history|inbound"):
        load_tfjs_python(src)

    out = tmp_path / "fixed" / "model.json"
    result = patch_file(src, out)
    assert "layer 'LR': batch_shape -> batch_input_shape" in result.changes
    assert "layer 'cat': Keras 3 inbound_nodes -> nested-list form" in result.changes
    assert "layer 'c1': dtype DTypePolicy('float32') -> 'float32'" in result.changes
    assert json.loads(src.read_text()) == raw, "the source must stay untouched when -o is given"
    layers = {layer["name"]: layer for layer in layer_list(result.data)}
    assert layers["cat"]["inbound_nodes"] == [[["c1", 0, 0, {}], ["c2", 0, 0, {}]]]
    assert layers["add"]["inbound_nodes"] == [[["c1", 0, 0, {}], ["c3", 0, 0, {}]]]
    assert layers["c1"]["config"]["dtype"] == "float32"
    assert "module" not in json.dumps(result.data["modelTopology"])
    config = result.data["modelTopology"]["model_config"]["config"]
    assert config["input_layers"] == [["LR", 0, 0]] and config["output_layers"] == [["SR", 0, 0]]
    if flavour == "keras_keras3":
        assert "weight 'layers/conv2d_1/vars/0' -> 'c2/kernel'" in result.changes
        assert "weight 'layers/p_re_lu/vars/0' -> 'act/alpha'" in result.changes

    validate_weights_manifest(out)
    model = load_tfjs_python(out)
    x = np.load(keras3 / "input.npy")
    diff = np.abs(model.predict(x, verbose=0) - np.load(keras3 / "net" / "expected.npy")).max()
    assert diff < 1e-5, diff
    assert patch_file(out, check=True).changes == []


def test_keras3_lambdas_become_custom_layers(keras3, tmp_path):
    src = keras3 / "lambdas" / "save_keras_model" / "model.json"
    out = tmp_path / "model.json"
    result = patch_file(src, out)
    assert "layer 'scale_res': Lambda (x * 0.2) -> MultiplyBeta(beta=0.2)" in result.changes
    assert "layer 'shuffle': Lambda (depth_to_space, scale 2) -> PixelShuffle2x" in result.changes
    model = load_tfjs_python(out, CUSTOM)
    x = np.load(keras3 / "input.npy")
    diff = np.abs(model.predict(x, verbose=0) - np.load(keras3 / "lambdas" / "expected.npy")).max()
    assert diff < 1e-5, diff


def test_check_reports_without_writing(keras3, tmp_path):
    shutil.copytree(keras3 / "net" / "save_keras_model", tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    before = path.read_bytes()
    result = patch_file(path, check=True)
    assert result.changes and path.read_bytes() == before
    patch_file(path)  # in place
    assert path.read_bytes() != before
    assert patch_file(path, check=True).changes == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["group1-shard1of1.bin", "model.json"]


def test_cli_check_exit_codes(keras3, tmp_path):
    from tests.conftest import run_cli

    src = keras3 / "net" / "save_keras_model" / "model.json"
    assert run_cli("patch", src, "--check").exit_code == 1
    fixed = tmp_path / "fixed.json"
    shutil.copy(src.parent / "group1-shard1of1.bin", tmp_path)
    assert run_cli("patch", src, "-o", fixed).exit_code == 0
    done = run_cli("patch", fixed, "--check")
    assert done.exit_code == 0 and "nothing to change" in done.output


# ------------------------------------------------------------------ UpscalerJS models


def test_thick_functional_to_model_leaves_custom_layers():
    data = json.loads(npm_model(THICK_X2).read_text())
    assert data["modelTopology"]["model_config"]["class_name"] == "Functional"
    assert patch_model_json(data).changes == []  # a Keras 2 file needs nothing else

    once = patch_model_json(data, upscalerjs_compat=True)
    assert once.changes == ["model: class Functional -> Model (old tfjs runtimes)"]
    assert once.data["modelTopology"]["model_config"]["class_name"] == "Model"
    assert data["modelTopology"]["model_config"]["class_name"] == "Functional", "input mutated"
    shuffle = [layer for layer in layer_list(once.data) if layer["class_name"].startswith("Pixel")]
    assert shuffle == [layer for layer in layer_list(data) if layer["class_name"].startswith("Pixel")]
    assert shuffle[0]["class_name"] == "PixelShuffle2x" and shuffle[0]["config"]["scale"] == 2
    twice = patch_model_json(once.data, upscalerjs_compat=True)
    assert twice.changes == [] and twice.data == once.data


def test_isr_gans_pixelshuffle_renamed_and_quantized_manifest_valid():
    path = npm_model(ISR_GANS)
    validate_weights_manifest(path)  # uint8-quantized weights: 1 byte each
    result = patch_model_json(json.loads(path.read_text()))
    assert result.changes == ["layer 'pixel_shuffle_10': class PixelShuffle -> PixelShuffle4x "
                              "(UpscalerJS name)"]
    (layer,) = [la for la in layer_list(result.data) if la["name"] == "pixel_shuffle_10"]
    assert layer["class_name"] == "PixelShuffle4x" and layer["config"]["scale"] == 4


# ------------------------------------------------------------------ Keras 2 Lambda layers


def subpixel_conv2d(scale: int, name: str):
    """ISR / krasserm-style SubpixelConv2D: a def'd function closing over the scale."""

    def subpixel(x):
        return tf.nn.depth_to_space(x, scale)

    return keras.layers.Lambda(subpixel, name=name)


def multiply(beta: float, name: str):
    return keras.layers.Lambda(lambda x: x * beta, name=name)  # closure, as in ISR's RRDN


@pytest.fixture(scope="module")
def keras2_lambda(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3), name="LR")
    a = keras.layers.Conv2D(12, 3, padding="same", name="pre_a")(inp)
    b = keras.layers.Conv2D(12, 3, padding="same", name="pre_b")(inp)
    a = multiply(0.2, "beta_closure")(a)
    b = keras.layers.Lambda(lambda x: 0.2 * x, name="beta_const")(b)
    a = keras.layers.Lambda(lambda x: tf.nn.depth_to_space(x, 2), name="ps_lambda")(a)
    b = subpixel_conv2d(2, "ps_subpixel")(b)
    x = keras.layers.Add(name="sum")([a, b])
    model = keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same", name="SR")(x))
    out = tmp_path_factory.mktemp("keras2") / "lambda"
    tensorflowjs().converters.save_keras_model(model, str(out))
    return model, out / "model.json"


def test_keras2_lambdas_translated_and_match(keras2_lambda, tmp_path):
    model, src = keras2_lambda
    out = tmp_path / "model.json"
    result = patch_file(src, out)
    # tf_keras 2.19 also writes module/registered_name on initializers (dropped, one line each)
    assert sorted(c for c in result.changes if "Lambda" in c) == [
        "layer 'beta_closure': Lambda (x * 0.2) -> MultiplyBeta(beta=0.2)",
        "layer 'beta_const': Lambda (x * 0.2) -> MultiplyBeta(beta=0.2)",
        "layer 'ps_lambda': Lambda (depth_to_space, scale 2) -> PixelShuffle2x",
        "layer 'ps_subpixel': Lambda (depth_to_space, scale 2) -> PixelShuffle2x",
    ]
    classes = {la["name"]: (la["class_name"], la["config"]) for la in layer_list(result.data)}
    assert classes["ps_subpixel"] == ("PixelShuffle2x", {"name": "ps_subpixel", "trainable": True,
                                                         "dtype": "float32", "scale": 2})
    assert classes["beta_const"][1]["beta"] == pytest.approx(0.2)
    patched = load_tfjs_python(out, CUSTOM)
    x = np.random.default_rng(3).random((1, 7, 9, 3), dtype=np.float32)
    want = model.predict(x, verbose=0)
    assert want.shape == (1, 14, 18, 3)
    assert np.abs(patched.predict(x, verbose=0) - want).max() < 1e-5
    assert patch_file(out, check=True).changes == []


def _lambda_model_json(fn, name: str) -> dict:
    inp = keras.Input((None, None, 12))
    model = keras.Model(inp, keras.layers.Lambda(fn, name=name)(inp))
    return {"modelTopology": {"model_config": json.loads(model.to_json())}, "weightsManifest": []}


GLOBAL_BETA = 0.2


@pytest.mark.parametrize("fn", [
    lambda x: x + 0.2,  # the same constants as x * 0.2: the operator must be checked
    lambda x: x * GLOBAL_BETA,  # a global: its value is not in the file
    lambda x: tf.nn.depth_to_space(x, 2) * 2.0,
    lambda x: tf.nn.space_to_depth(x, 2),
], ids=["add", "global", "shuffle_then_scale", "space_to_depth"])
def test_unrecognised_lambda_is_bad_input(fn):
    data = _lambda_model_json(fn, "lambda_3")
    with pytest.raises(BadInput, match="layer 'lambda_3' is a Lambda srjs cannot translate; "
                                       "tfjs-layers cannot load Lambda layers"):
        patch_model_json(data)


# ------------------------------------------------------------------ weights manifest


@pytest.fixture
def exported(keras2_lambda, tmp_path) -> Path:
    _, src = keras2_lambda
    shutil.copytree(src.parent, tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    validate_weights_manifest(path)  # the untouched export is valid
    return path


def _edit(path: Path, edit) -> tuple[dict, dict]:
    data = json.loads(path.read_text())
    group = data["weightsManifest"][0]
    edit(group)
    path.write_text(json.dumps(data))
    return data, group


def test_truncated_shard(exported):
    shard = exported.parent / "group1-shard1of1.bin"
    size = shard.stat().st_size
    with open(shard, "r+b") as f:
        f.truncate(size - 4)
    with pytest.raises(BadInput, match=f"group1-shard1of1.bin hold {size - 4} bytes but the "
                                       f"manifest's weights need {size}"):
        validate_weights_manifest(exported)


def test_missing_shard(exported):
    (exported.parent / "group1-shard1of1.bin").unlink()
    with pytest.raises(BadInput, match="weight shard 'group1-shard1of1.bin' is missing"):
        validate_weights_manifest(exported)


def test_missing_weight(exported):
    # Drop the last weight and its bytes, so only the topology check can notice.
    _, group = _edit(exported, lambda g: g["weights"].pop())
    need = sum(int(np.prod(w["shape"])) * 4 for w in group["weights"])
    with open(exported.parent / "group1-shard1of1.bin", "r+b") as f:
        f.truncate(need)
    (missing,) = {"SR/kernel", "SR/bias", "pre_a/kernel", "pre_a/bias", "pre_b/kernel",
                  "pre_b/bias"} - {w["name"] for w in group["weights"]}
    with pytest.raises(BadInput, match=f"weight '{missing}' needed by the model is missing"):
        validate_weights_manifest(exported)


def test_extra_weight(exported):
    _edit(exported, lambda g: g["weights"].append({"name": "ghost/kernel", "shape": [2],
                                                   "dtype": "float32"}))
    with open(exported.parent / "group1-shard1of1.bin", "ab") as f:
        f.write(np.zeros(2, np.float32).tobytes())
    with pytest.raises(BadInput, match="weight 'ghost/kernel' belongs to no layer of the model"):
        validate_weights_manifest(exported)


# ------------------------------------------------------------------ in real TF.js (Node)

@pytest.mark.slow
def test_patched_files_load_and_match_in_tfjs_node(keras3, keras2_lambda, tmp_path):
    """Each broken file fails in TF.js as produced, and loads and matches once patched."""
    from srjs.runtime import run_tfjs

    x = np.load(keras3 / "input.npy")
    model, keras2_src = keras2_lambda
    cases = {  # name: (as produced, expected output)
        "keras3-save_keras_model": (keras3 / "net" / "save_keras_model" / "model.json",
                                    np.load(keras3 / "net" / "expected.npy")),
        "keras3-keras_keras3": (keras3 / "net" / "keras_keras3" / "model.json",
                                np.load(keras3 / "net" / "expected.npy")),
        "keras3-lambdas": (keras3 / "lambdas" / "save_keras_model" / "model.json",
                           np.load(keras3 / "lambdas" / "expected.npy")),
        "keras2-lambda-pixel-shuffle": (keras2_src, model.predict(x, verbose=0)),
    }
    fixed = {}
    for name, (src, _) in cases.items():
        fixed[name] = tmp_path / name / "model.json"
        patch_file(src, fixed[name])
    raw = run_tfjs([(src, "layers") for src, _ in cases.values()], [x], runtime="node", warm_runs=0)
    for name, result in zip(cases, raw):
        assert result.error is not None, f"{name} loaded in TF.js without patching"
    patched = run_tfjs([(fixed[name], "layers") for name in cases], [x], runtime="node", warm_runs=0)
    for name, result in zip(cases, patched):
        assert result.error is None, (name, result.error)
        assert np.abs(result.outputs[0] - cases[name][1]).max() < 1e-4, name
