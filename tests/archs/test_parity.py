"""Every registered architecture reproduces its reference numerically.

rrdbnet / srvgg: random PyTorch weights (tests/torch_reference.py, identical to BasicSR) ->
state dict -> detect + build + load -> Keras output vs torch output.
rdn / rrdn: the real UpscalerJS models -> weights decoded by tensorflowjs -> detect + build + load
-> Keras output vs tensorflowjs' own Python loader on the same model.json.
"""
from __future__ import annotations

import json

import numpy as np
import pytest


from srjs.archs import ARCHS, custom_objects, detect_arch, get_arch  # noqa: E402
from srjs.tf import keras  # noqa: E402
from tests.conftest import npm_model  # noqa: E402
from tests.torch_reference import RRDBNet, SRVGGNetCompact, randomize, run_nhwc, state_dict_numpy  # noqa: E402

SMALL_RRDB = dict(num_feat=16, num_block=2, num_grow_ch=8)
SMALL_SRVGG = dict(num_feat=16, num_conv=4, upscale=4)

TORCH_CASES = {
    "rrdbnet-x4": ("rrdbnet", lambda: RRDBNet(3, 3, scale=4, **SMALL_RRDB)),
    "rrdbnet-x2": ("rrdbnet", lambda: RRDBNet(3, 3, scale=2, **SMALL_RRDB)),
    "rrdbnet-x1": ("rrdbnet", lambda: RRDBNet(3, 3, scale=1, **SMALL_RRDB)),
    "srvgg-x4-prelu": ("srvgg", lambda: SRVGGNetCompact(3, 3, act_type="prelu", **SMALL_SRVGG)),
    "srvgg-x4-leakyrelu": ("srvgg", lambda: SRVGGNetCompact(3, 3, act_type="leakyrelu", **SMALL_SRVGG)),
    # spandrel's classes (tests/spandrel_ref.py); grids over their params: tests/archs/test_zoo_compact.py
    "span-x2": ("span", lambda: _spandrel("SPAN", "SPAN", num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2,
                                          norm=False)),
    "plksr-x2": ("plksr", lambda: _spandrel("PLKSR", "PLKSR", dim=8, n_blocks=1, upscaling_factor=2, kernel_size=5)),
    "realplksr-x2": ("realplksr", lambda: _spandrel("PLKSR", "RealPLKSR", dim=8, n_blocks=1, upscaling_factor=2,
                                                    kernel_size=5)),
    "realcugan-x2": ("realcugan", lambda: _spandrel("RealCUGAN", "UpCunet2x")),
}
SIZES = {"realcugan-x2": (24, 28)}  # Real-CUGAN reflect-pads its input by 18 px: it needs more than 18


def _spandrel(module: str, cls: str, **hyperparameters):
    from tests import spandrel_ref

    return getattr(getattr(spandrel_ref.spandrel.architectures, module), cls)(**hyperparameters)
NPM_CASES = {  # UpscalerJS packages: esrgan-slim is ISR RDN in [0, 255], esrgan-thick ISR RRDN in [0, 1]
    "rdn-esrgan-slim-x4": ("rdn", "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json", 255.0),
    "rrdn-esrgan-thick-x4": ("rrdn", "npm:@upscalerjs/esrgan-thick@1.0.0/models/x4/model.json", 1.0),
}
COVERED = {arch for arch, *_ in [*TORCH_CASES.values(), *NPM_CASES.values()]}


@pytest.mark.parametrize("arch", ARCHS.names())
def test_every_registered_arch_has_a_parity_case(arch):
    assert arch in COVERED, f"architecture '{arch}' is registered but has no parity test case"


def build_from_state(state: dict[str, np.ndarray], params_override: dict | None = None):
    name, params = detect_arch({k: v.shape for k, v in state.items()})
    params = {**params, **(params_override or {})}
    spec = get_arch(name)
    model = spec.build(**params)
    spec.load(model, state)
    return name, params, model


@pytest.mark.parametrize("case", TORCH_CASES, ids=str)
def test_torch_parity(case):
    arch, make = TORCH_CASES[case]
    reference = randomize(make(), seed=7)
    state = state_dict_numpy(reference)
    override = {"act_type": "leakyrelu"} if case.endswith("leakyrelu") else None  # not visible in weights
    name, params, model = build_from_state(state, override)
    assert name == arch

    h, w = SIZES.get(case, (12, 20))
    x = np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32)
    expected = run_nhwc(reference, x)
    got = model.predict(x, verbose=0)
    scale = params["scale"]
    assert got.shape == expected.shape == (1, h * scale, w * scale, 3)
    peak = float(np.abs(expected).max())
    assert peak > 0.1  # a dead network would make the comparison meaningless
    assert np.abs(got - expected).max() <= 1e-4 * peak


def tensorflowjs():
    """The tensorflowjs module, imported quietly (see srjs.tf.quiet_import)."""
    from srjs.tf import quiet_import

    return quiet_import("tensorflowjs")


@pytest.mark.slow
@pytest.mark.parametrize("case", NPM_CASES, ids=str)
def test_upscalerjs_parity(case):
    arch, source, value_max = NPM_CASES[case]
    tfjs = tensorflowjs()
    from tensorflowjs import read_weights

    model_json = npm_model(source)
    manifest = json.loads(model_json.read_text())["weightsManifest"]
    entries = read_weights.read_weights(manifest, str(model_json.parent), flatten=True)
    weights = {entry["name"]: entry["data"] for entry in entries}

    name, params, model = build_from_state(weights)
    assert name == arch
    with keras.utils.custom_object_scope(custom_objects()):  # MultiplyBeta, PixelShuffle4x
        reference = tfjs.converters.load_keras_model(str(model_json))
    # Same names layer for layer, so TF.js weight names and ISR .h5 files map 1:1.
    assert [layer.name for layer in model.layers] == [layer.name for layer in reference.layers]

    x = np.random.default_rng(0).random((1, 16, 20, 3), dtype=np.float32) * value_max
    expected = reference.predict(x, verbose=0)
    got = model.predict(x, verbose=0)
    assert got.shape == expected.shape == (1, 16 * params["scale"], 20 * params["scale"], 3)
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max()))


ISR_PSNR_SMALL_H5 = (
    "npm:@upscalerjs/models@0.9.0/models/idealo/psnr-small-quant-uint8/image-super-resolution-psnr-small.h5"
)


@pytest.mark.slow
def test_isr_psnr_small_h5_matches_our_rdn():
    """A full Keras 2.3 ISR RDN .h5 loads, and our RDN with its weights (by dict and by
    load_weights(by_name=True)) gives the same output."""
    from srjs.archs import keras_weight_name

    path = npm_model(ISR_PSNR_SMALL_H5)
    reference = keras.models.load_model(path, custom_objects=custom_objects(), compile=False)
    weights = {keras_weight_name(v.name): v.numpy() for v in reference.weights}

    name, params, model = build_from_state(weights)
    assert (name, params) == ("rdn", {"C": 3, "D": 10, "G": 64, "G0": 64, "scale": 2, "upscaling": "ups"})
    by_name = get_arch("rdn").build(**params)
    by_name.load_weights(str(path), by_name=True)

    x = np.random.default_rng(0).random((1, 16, 20, 3), dtype=np.float32) * 255
    expected = reference.predict(x, verbose=0)
    tolerance = 1e-5 * max(1.0, float(np.abs(expected).max()))
    assert expected.shape == (1, 32, 40, 3)
    assert np.abs(model.predict(x, verbose=0) - expected).max() <= tolerance
    assert np.abs(by_name.predict(x, verbose=0) - expected).max() <= tolerance
