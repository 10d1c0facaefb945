"""ONNX export: every registered family runs in onnxruntime like its Keras model.

float32: within 1e-4 of the output's scale (verify's tolerance). float16: within
FP16_REL_BOUND of the output's scale on random weights, both in onnxruntime (whose CPU provider
runs float16 ops without a float16 kernel in float32) and in onnx's numpy reference evaluator
(every tensor float16 between ops, as on a WebGPU device with shader-f16). Tiny random-weight models, one 16x20
and one 12x8 input per session (dynamic H and W).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from srjs.archs import ARCHS, get_arch
from srjs.convert import onnx_dir, onnx_export
from srjs.errors import BadInput
from srjs.tf import keras, tf

FP16_REL_BOUND = 5e-3
CASES = {  # tiny configs; together they build every layer class the families use
    "rrdbnet-x4": ("rrdbnet", dict(scale=4, num_feat=8, num_block=1, num_grow_ch=4)),
    "rrdbnet-x2": ("rrdbnet", dict(scale=2, num_feat=8, num_block=1, num_grow_ch=4)),
    "srvgg-x4-prelu": ("srvgg", dict(scale=4, num_feat=8, num_conv=2)),
    # animevideov3 x2 from ncnn: the x4 net then a fixed bicubic (edge pad, depthwise, strided conv)
    "srvgg-x2-ncnn-leakyrelu": ("srvgg", dict(scale=2, num_feat=8, num_conv=1, act_type="leakyrelu",
                                              shuffle_scale=4)),
    "srvgg-x4-relu": ("srvgg", dict(scale=4, num_feat=8, num_conv=1, act_type="relu")),
    "rdn-x3-ups": ("rdn", dict(C=2, D=2, G=4, G0=8, scale=3)),
    "rdn-x2-shuffle": ("rdn", dict(C=2, D=2, G=4, G0=8, scale=2, upscaling="shuffle")),
    "rrdn-x4": ("rrdn", dict(C=2, D=2, G=4, G0=8, T=2, scale=4)),
    "span-x4": ("span", dict(scale=4, feature_channels=8)),  # swish, sigmoid attention, normalisation
    "span-x2-no-norm": ("span", dict(scale=2, feature_channels=4, norm=False)),
    # gelu, partial large kernel (split conv + Concatenate), dilated sparse kernels, attention
    "plksr-x4-sparse": ("plksr", dict(scale=4, dim=8, n_blocks=1, kernel_size=5, lk_type="SparsePLK",
                                      sparse_kernels=(3, 3), sparse_dilations=(1, 2))),
    "plksr-x2-iccm": ("plksr", dict(scale=2, dim=8, n_blocks=1, kernel_size=5, ccm_type="ICCM")),
    # mish, GroupNorm from per-group LayerNormalization over (H, W, C/G), channel LayerNorm
    "realplksr-x4-groupnorm": ("realplksr", dict(scale=4, dim=8, n_blocks=1, kernel_size=5, norm_groups=2)),
    "realplksr-x2-layernorm": ("realplksr", dict(scale=2, dim=8, n_blocks=1, kernel_size=5, layer_norm=True)),
    # valid/strided convs, Conv2DTranspose, SE blocks (pool, reshape, multiply), Cropping2D, reflect
    # padding to a multiple of 4 (odd sizes below), CropToInput, pro's affine in and out
    "realcugan-x3-pro": ("realcugan", dict(scale=3, pro=True)),
}
CASES = {case: spec for case, spec in CASES.items() if spec[0] in ARCHS}  # families land in parallel
SHAPES = ((1, 16, 20, 3), (1, 12, 8, 3))
# Real-CUGAN's U-Nets need inputs larger than their reflect padding (14 px for 3x), which also
# rounds H and W up to a multiple of 4: 21x23 pads 3 and 1 more pixels, 24x22 none and 2
SHAPES_BY_CASE = {"realcugan-x3-pro": ((1, 21, 23, 3), (1, 24, 22, 3))}
# fixed 64-channel U-Nets: onnx's numpy evaluator takes minutes; float16 checked in onnxruntime only
NO_FLOAT16_EVALUATOR = {"realcugan"}


def _random_model(arch: str, params: dict, seed: int = 3, std: float = 0.1):
    """Random weights of a trained net's size (larger ones make SPAN's attention chaotic: float32
    rounding alone then moves its output by 1e-2)."""
    model = get_arch(arch).build(**params)
    rng = np.random.default_rng(seed)
    for var in model.trainable_weights:
        if not var.name.startswith("resize__"):  # ncnn's fixed bicubic stays exact
            var.assign(rng.normal(0, std, var.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def models():
    return {case: _random_model(arch, params) for case, (arch, params) in CASES.items()}


def _inputs(seed: int = 5, case: str = ""):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 1, shape).astype(np.float32) for shape in SHAPES_BY_CASE.get(case, SHAPES)]


@pytest.mark.parametrize("arch", ARCHS.names())
def test_every_registered_arch_has_an_onnx_case(arch):
    assert arch in {a for a, _ in CASES.values()}, f"architecture '{arch}' has no ONNX export case"


def test_every_layer_class_the_families_build_is_translated(models):
    used = {type(layer): layer for m in models.values() for layer in m.layers
            if type(layer).__name__ != "InputLayer"}
    keys = {onnx_export._class_key(layer) for layer in used.values()}  # BadInput if one is unknown
    assert keys <= set(onnx_export.layer_classes()) and len(keys) >= 12


@pytest.mark.parametrize("activations,bound", [("float32", 1e-4), ("float16", FP16_REL_BOUND)])
@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_matches_keras(models, case, activations, bound):
    model = models[case]
    inputs = _inputs(case=case)
    proto = onnx_export.to_onnx(model, activations=activations)
    runs = {"onnxruntime": onnx_dir.run_onnx(proto, inputs)}  # one session, two sizes: H, W dynamic
    if activations == "float16" and CASES[case][0] not in NO_FLOAT16_EVALUATOR:
        # onnxruntime's CPU upcasts float16 ops; numpy's evaluator does not
        runs["float16 evaluator"] = onnx_dir.run_float16(proto, inputs)
    for where, outs in runs.items():
        for x, out in zip(inputs, outs):
            ref = model(x, training=False).numpy()
            assert out.shape == ref.shape and out.dtype == np.float32
            rel = float(np.abs(out - ref).max()) / float(np.abs(ref).max())
            assert rel <= bound, f"{case} {activations} in {where}: max diff {rel:.3g} of the output scale"
    if "float16 evaluator" in runs:  # it really computes in float16: not bit-equal to float32
        assert float(np.abs(runs["float16 evaluator"][0] - model(inputs[0]).numpy()).max()) > 1e-5


def test_pixel_shuffle_is_dcr_not_crd():
    """srjs's PixelShuffle is TF depth_to_space: ONNX mode DCR reproduces it, CRD would not."""
    from srjs.archs.layers import PixelShuffle

    inp = keras.Input((None, None, 12))
    model = keras.Model(inp, PixelShuffle(2)(inp))
    x = np.arange(2 * 3 * 12, dtype=np.float32).reshape(1, 2, 3, 12)
    proto = onnx_export.to_onnx(model)
    assert [n.attribute[1].s for n in proto.graph.node if n.op_type == "DepthToSpace"] == [b"DCR"]
    np.testing.assert_array_equal(onnx_dir.run_onnx(proto, [x])[0], tf.nn.depth_to_space(x, 2).numpy())
    for node in proto.graph.node:
        if node.op_type == "DepthToSpace":
            node.attribute[1].s = b"CRD"
    assert not np.array_equal(onnx_dir.run_onnx(proto, [x])[0], tf.nn.depth_to_space(x, 2).numpy())


def test_an_untranslatable_layer_is_bad_input_naming_it():
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.BatchNormalization(name="bn")(inp))
    with pytest.raises(BadInput, match=r"'bn' is a BatchNormalization.*known: .*Conv2D"):
        onnx_export.to_onnx(model)


def test_stride_2_same_padding_is_refused():
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Conv2D(3, 3, strides=2, padding="same", name="down")(inp))
    with pytest.raises(BadInput, match="'down'.*stride above 1"):
        onnx_export.to_onnx(model)


def _model_dir(tmp_path, model, arch, params, quantization=None):
    """A model dir with keras/ and tfjs_layers/ only (enough for ONNX export; no graph export)."""
    from srjs import modeldir
    from srjs.convert import export
    from srjs.convert.write import save_keras

    out = tmp_path / arch
    out.mkdir()
    save_keras(model, out / modeldir.KERAS_FILE)
    export.export_layers(model, out / modeldir.TFJS_LAYERS_DIR, params["scale"],
                         export.ExportOptions(quantization=quantization))
    modeldir.write_manifest(out, modeldir.Manifest(
        name=f"tiny-{arch}", arch=arch, arch_params=params, scale=params["scale"], value_range=[0, 1],
        source={"path": "random", "format": "test"}))
    return out


@pytest.fixture(scope="module")
def uint8_dir(tmp_path_factory):
    arch, params = CASES["srvgg-x4-prelu"]
    model = _random_model(arch, params, seed=9)
    return _model_dir(tmp_path_factory.mktemp("onnx"), model, arch, params, quantization={"uint8": "*"}), model


def test_a_quantized_model_dir_exports_the_weights_it_ships(uint8_dir):
    """uint8 TF.js shards: the ONNX file computes the dequantized net, not the float one."""
    from srjs import modeldir
    from srjs.evaluate.shipped import load_shipped

    root, float_model = uint8_dir
    images = onnx_dir.check_images(1.0, side=16, names=["astronaut", "coffee"])
    manifest = onnx_dir.add_onnx(root, check_images_=images)
    info = manifest.results["onnx"]
    assert info["input"] == {"name": "input", "layout": "NHWC", "dtype": "float32", "shape": ["N", "H", "W", 3]}
    assert info["value_range"] == [0, 1] and info["scale"] == 4
    assert {"onnx/model.onnx", "onnx/model.fp16.onnx"} <= set(manifest.files)
    assert json.loads((root / modeldir.MANIFEST).read_text())["results"]["onnx"] == info

    x = images[0]
    shipped = load_shipped(root)(x).numpy()
    out = onnx_dir.run_onnx(root / info["files"]["float32"], [x])[0]
    scale = float(np.abs(shipped).max())
    assert float(np.abs(out - shipped).max()) <= 1e-4 * scale
    assert float(np.abs(out - float_model(x).numpy()).max()) > 1e-3 * scale  # uint8 changed it

    fp16 = info["float16"]
    assert fp16["safe"] and fp16["activations"] == "float16"
    assert fp16["float16_psnr_db"] >= onnx_dir.FP16_MIN_PSNR_DB
    half = onnx_dir.run_onnx(root / info["files"]["float16"], [x])[0]
    assert float(np.abs(half - shipped).max()) <= FP16_REL_BOUND * scale


def test_activations_near_float16s_limit_keep_float32_compute(tmp_path):
    """A net whose activations reach ~1e5 overflows float16: its fp16 file computes in float32."""
    import onnx

    arch, params = CASES["srvgg-x4-relu"]
    model = _random_model(arch, params, seed=4)
    conv = model.get_layer("body__0")
    conv.set_weights([w * 3e4 for w in conv.get_weights()])
    images = onnx_dir.check_images(1.0, side=16, names=["astronaut"])
    info = onnx_dir.export_model(model, _manifest(arch, params), tmp_path, check_images_=images)["float16"]
    assert not info["safe"] and info["activations"] == "float32"
    assert info["max_abs_activation"] > onnx_dir.FP16_MAX / onnx_dir.FP16_HEADROOM
    assert "body__" in info["why_not"]
    half = onnx.load(tmp_path / onnx_dir.FLOAT16_FILE)
    assert {t.data_type for t in half.graph.initializer if t.name.endswith("kernel_float16")} == {onnx.TensorProto.FLOAT16}
    out = onnx_dir.run_onnx(half, images)[0]
    ref = model(images[0]).numpy()
    assert np.isfinite(out).all()
    assert float(np.abs(out - ref).max()) <= 2e-3 * float(np.abs(ref).max())  # only weight rounding


def _manifest(arch, params):
    from srjs.modeldir import Manifest

    return Manifest(name=f"tiny-{arch}", arch=arch, arch_params=params, scale=params["scale"],
                    value_range=[0, 1], source={"path": "random", "format": "test"})


def test_a_grayscale_model_exports_and_is_checked_on_luminance(tmp_path):
    arch, params = "srvgg", dict(scale=2, num_feat=4, num_conv=1, num_in_ch=1, num_out_ch=1)
    model = _random_model(arch, params, seed=6)
    images = onnx_dir.check_images(1.0, side=16, names=["astronaut", "coffee"], channels=1)
    info = onnx_dir.export_model(model, _manifest(arch, params), tmp_path, check_images_=images)
    assert info["input"]["shape"] == ["N", "H", "W", 1] and info["output"]["shape"] == ["N", "H*2", "W*2", 1]
    out = onnx_dir.run_onnx(tmp_path / onnx_dir.FLOAT32_FILE, images)[0]
    ref = model(images[0]).numpy()
    assert float(np.abs(out - ref).max()) <= 1e-4 * float(np.abs(ref).max())
    assert info["float16"]["safe"]
