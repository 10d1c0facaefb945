"""srjs.tfjs_weights: shards srjs writes are the ones tensorflowjs writes; reads stay inside the folder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srjs import tfjs_weights
from srjs.errors import BadInput
from srjs.tfjs_weights import Encoding


@pytest.fixture(scope="module")
def tiny_model():
    from srjs.tf import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv_a")(inputs)
    x = keras.layers.LeakyReLU(0.2)(x)
    outputs = keras.layers.Conv2D(3, 3, padding="same", name="conv_b")(x)
    return keras.Model(inputs, outputs)


def _export(model, out: Path, quantization=None) -> Path:
    from srjs.convert.export import ExportOptions, export_layers

    return export_layers(model, out, 1, ExportOptions(shard_bytes=200, quantization=quantization))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16"])
def test_write_weights_matches_tensorflowjs_bytes(tiny_model, tmp_path, dtype):
    """With tensorflowjs' own per-tensor (scale, min), srjs writes byte-identical shards and manifest."""
    reference = _export(tiny_model, tmp_path / "tfjs", {dtype: "*"})
    data = json.loads(reference.read_text())
    specs = [w for g in data["weightsManifest"] for w in g["weights"]]
    originals = {f"{layer.name}/{w.name.split('/')[-1].split(':')[0]}": w.numpy()
                 for layer in tiny_model.layers for w in layer.weights}
    tensors = [(s["name"], originals[s["name"]], tfjs_weights.encoding_of(s, "ref")) for s in specs]
    manifest = tfjs_weights.write_weights(tmp_path / "srjs", tensors, shard_bytes=200)

    assert manifest[0]["weights"] == specs
    assert manifest[0]["paths"] == data["weightsManifest"][0]["paths"]
    assert len(manifest[0]["paths"]) > 1  # tensors straddle shards
    for shard in manifest[0]["paths"]:
        assert (tmp_path / "srjs" / shard).read_bytes() == (tmp_path / "tfjs" / shard).read_bytes()


def test_decode_is_tfjs_arithmetic(rng):
    values = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    enc = Encoding("uint8", scale=float((values.max() - values.min()) / 255), min=float(values.min()))
    stored = tfjs_weights.quantize_tensor(values, enc)
    assert stored.dtype == np.uint8 and stored.min() == 0 and stored.max() == 255
    decoded = tfjs_weights.decode(stored, enc)
    # q * scale + min in doubles, then float32: the error is at most half a step
    assert np.abs(decoded - values).max() <= enc.scale / 2 + 1e-6
    np.testing.assert_array_equal(decoded, (stored.astype(np.float64) * enc.scale + enc.min).astype(np.float32))
    clipped = tfjs_weights.quantize_tensor(values * 3, enc)  # out-of-range values clip, never wrap
    assert clipped.min() == 0 and clipped.max() == 255


def test_read_weights_round_trip(tmp_path, rng):
    tensors = [("a/kernel", rng.normal(size=(3, 3, 3, 4)).astype(np.float32), Encoding("uint16", 1e-4, -3.0)),
               ("a/bias", rng.normal(size=(4,)).astype(np.float32), Encoding()),
               ("b/kernel", rng.normal(size=(4, 2)).astype(np.float32), Encoding("float16"))]
    manifest = tfjs_weights.write_weights(tmp_path, tensors, shard_bytes=64)
    (tmp_path / "model.json").write_text(json.dumps({"weightsManifest": manifest}))
    read = tfjs_weights.read_weights(tmp_path / "model.json")
    assert list(read) == ["a/kernel", "a/bias", "b/kernel"]
    for name, values, enc in tensors:
        expected = tfjs_weights.decode(tfjs_weights.quantize_tensor(values, enc), enc)
        np.testing.assert_array_equal(read[name], expected)


@pytest.mark.parametrize("path", ["../evil.bin", "/etc/passwd", "a/../../evil.bin", "", "a\\..\\b"])
def test_shard_paths_outside_the_folder_are_refused(tmp_path, path):
    (tmp_path / "evil.bin").write_bytes(b"\0" * 4)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"weightsManifest": [
        {"paths": [path], "weights": [{"name": "x", "shape": [1], "dtype": "float32"}]}]}))
    with pytest.raises(BadInput, match="path"):
        tfjs_weights.read_weights(folder / "model.json")


def test_symlinked_shard_leaving_the_folder_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 4)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "s.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(BadInput, match="leaves the model folder"):
        tfjs_weights.resolve_inside(folder, "s.bin", "m")


@pytest.mark.parametrize("spec, message", [
    ({"name": "x", "shape": [2], "dtype": "complex64"}, "unsupported dtype 'complex64'"),
    ({"name": "x", "shape": [2], "dtype": "float32", "quantization": {"dtype": "int4"}}, "unsupported quantization"),
    ({"name": "x", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint8"}}, "scale/min"),
    ({"name": "x", "shape": [-1], "dtype": "float32"}, "no valid shape"),
    ({"name": "x", "shape": [1 << 20, 1 << 20], "dtype": "float32"}, "claims"),
])
def test_bad_manifest_entries_are_bad_input(tmp_path, spec, message):
    (tmp_path / "s.bin").write_bytes(b"\0" * 8)
    (tmp_path / "model.json").write_text(json.dumps({"weightsManifest": [{"paths": ["s.bin"], "weights": [spec]}]}))
    with pytest.raises(BadInput, match=message):
        tfjs_weights.read_weights(tmp_path / "model.json")


@pytest.mark.parametrize("text", ["[1, 2]", "\"model\"", "{not json", "null"])
def test_non_object_json_is_bad_input(tmp_path, text):
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(BadInput, match="model.json"):
        tfjs_weights.read_model_json(tmp_path / "model.json")
