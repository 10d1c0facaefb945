"""Keras-family sources: ISR weight-only .h5 named by ISR, .keras, SavedModel; Lambda refused."""
from __future__ import annotations

import numpy as np
import pytest

from srjs import modeldir
from tests.conftest import ISR_PSNR_SMALL, SLIM_X2, run_cli


def outputs_equal(dir_a, dir_b, value_max):
    batch = np.random.default_rng(3).random((1, 10, 14, 3), dtype=np.float32) * value_max
    a = np.asarray(modeldir.load_keras(dir_a)(batch, training=False))
    b = np.asarray(modeldir.load_keras(dir_b)(batch, training=False))
    return np.abs(a - b).max()


def test_isr_weights_only_h5_takes_arch_from_its_name(converted, tmp_path):
    full = converted(ISR_PSNR_SMALL, export_tfjs=False)
    weights = tmp_path / "rdn-C3-D10-G64-G064-x2_epoch086.hdf5"  # ISR's naming scheme
    modeldir.load_keras(full).save_weights(weights)
    out = tmp_path / "from-weights"
    result = run_cli("convert", weights, "-o", out, "--no-tfjs")
    assert result.exit_code == 0, result.output
    manifest = modeldir.read_manifest(out)
    assert manifest.source["format"] == "h5-weights"
    assert (manifest.arch, manifest.arch_params["C"], manifest.arch_params["D"], manifest.scale) == ("rdn", 3, 10, 2)
    assert outputs_equal(full, out, 1.0) == 0.0


@pytest.mark.parametrize("fmt", ["keras", "saved_model"])
def test_keras_and_savedmodel_sources_round_trip(fmt, converted, tmp_path):
    first = converted(SLIM_X2, export_tfjs=False)
    source = first / (modeldir.KERAS_FILE if fmt == "keras" else modeldir.SAVED_MODEL_DIR)
    out = tmp_path / "again"
    result = run_cli("convert", source, "-o", out, "--no-tfjs", "--value-range", "0-255")
    assert result.exit_code == 0, result.output
    manifest = modeldir.read_manifest(out)
    assert (manifest.source["format"], manifest.arch, manifest.scale) == (fmt, "rdn", 2)
    assert outputs_equal(first, out, 255.0) == 0.0


def test_h5_with_a_lambda_layer_is_refused_before_loading(tmp_path):
    from srjs.tf import keras

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(keras.layers.Conv2D(3, 3, padding="same")(inputs))
    path = tmp_path / "lambda.h5"
    keras.Model(inputs, outputs).save(path)
    result = run_cli("convert", path, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "Lambda" in result.output and not (tmp_path / "out").exists()


def test_model_dir_saved_model_serves_any_size(converted):
    from srjs.tf import tf

    loaded = tf.saved_model.load(str(converted(SLIM_X2, export_tfjs=False) / modeldir.SAVED_MODEL_DIR))
    serve = loaded.signatures["serving_default"]
    assert serve.structured_input_signature[1]["input"].shape.as_list() == [1, None, None, 3]
    out = serve(input=tf.zeros([1, 7, 9, 3]))["output"]
    assert out.shape.as_list() == [1, 14, 18, 3]
