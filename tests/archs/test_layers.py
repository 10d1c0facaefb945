"""Custom layers: TensorFlow channel order, the PyTorch permutation, and plain config names."""
from __future__ import annotations

import json

import numpy as np
import pytest

import torch  # noqa: E402  (the test extra; make test installs it)

from srjs.archs import custom_objects  # noqa: E402
from srjs.archs.layers import MultiplyBeta, PixelShuffle, PixelUnshuffle, torch_to_tf_depth_order  # noqa: E402
from srjs.tf import keras, tf  # noqa: E402


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_permuted_depth_to_space_equals_torch_pixel_shuffle(scale):
    packed = np.random.default_rng(scale).random((1, 3 * scale * scale, 5, 7), dtype=np.float32)
    expected = torch.nn.functional.pixel_shuffle(torch.from_numpy(packed), scale).numpy().transpose(0, 2, 3, 1)
    nhwc = packed.transpose(0, 2, 3, 1)[..., torch_to_tf_depth_order(3 * scale * scale, scale)]
    np.testing.assert_array_equal(PixelShuffle(scale)(nhwc).numpy(), expected)
    assert not np.array_equal(PixelShuffle(scale)(packed.transpose(0, 2, 3, 1)).numpy(), expected)


@pytest.mark.parametrize("scale", [2, 4])
def test_pixel_unshuffle_is_space_to_depth_and_inverts_pixel_shuffle(scale):
    x = np.random.default_rng(0).random((2, 12, 20, 3), dtype=np.float32)
    packed = PixelUnshuffle(scale)(x).numpy()
    np.testing.assert_array_equal(packed, tf.nn.space_to_depth(x, scale).numpy())
    np.testing.assert_array_equal(PixelShuffle(scale)(packed).numpy(), x)
    torch_packed = torch.nn.functional.pixel_unshuffle(torch.from_numpy(x.transpose(0, 3, 1, 2)), scale)
    perm = torch_to_tf_depth_order(3 * scale * scale, scale)
    np.testing.assert_array_equal(packed, torch_packed.numpy().transpose(0, 2, 3, 1)[..., perm])


def test_pixel_unshuffle_graph_has_no_space_to_depth():
    """TF.js has no SpaceToDepth op; the graph converter would refuse the model."""
    fn = tf.function(PixelUnshuffle(2)).get_concrete_function(tf.TensorSpec([1, None, None, 3]))
    ops = {op.type for op in fn.graph.get_operations()}
    assert "SpaceToDepth" not in ops and {"Reshape", "Transpose"} <= ops
    assert fn.structured_outputs.shape.as_list() == [1, None, None, 12]


def test_configs_name_plain_classes_and_round_trip():
    inp = keras.Input((None, None, 12))
    out = PixelShuffle(2, name="ps")(MultiplyBeta(0.5, name="mb")(inp))
    model = keras.Model(inp, PixelUnshuffle(2, name="pu")(out))
    layers = {layer["name"]: layer for layer in json.loads(model.to_json())["config"]["layers"]}
    assert (layers["ps"]["class_name"], layers["ps"]["config"]["scale"]) == ("PixelShuffle", 2)
    assert (layers["pu"]["class_name"], layers["pu"]["config"]["scale"]) == ("PixelUnshuffle", 2)
    assert (layers["mb"]["class_name"], layers["mb"]["config"]["beta"]) == ("MultiplyBeta", 0.5)
    again = keras.models.model_from_json(model.to_json())  # no custom_objects: registered globally
    x = np.random.default_rng(0).random((1, 4, 6, 12), dtype=np.float32)
    np.testing.assert_allclose(again(x).numpy(), x * 0.5, rtol=1e-6)


def test_upscalerjs_class_names_load():
    objects = custom_objects()
    assert {"PixelShuffle", "PixelUnshuffle", "MultiplyBeta"} <= set(objects)
    for scale in (2, 3, 4, 8):
        layer = objects[f"PixelShuffle{scale}x"].from_config({"name": "pixel_shuffle", "trainable": True})
        assert layer.scale == scale
        assert layer(np.zeros((1, 2, 3, 3 * scale * scale), np.float32)).shape == (1, 2 * scale, 3 * scale, 3)
    beta = objects["MultiplyBeta"].from_config({"beta": 0.2, "name": "multiply_beta", "trainable": True})
    assert float(beta(np.ones((1, 1, 1, 1), np.float32))[0, 0, 0, 0]) == pytest.approx(0.2)
