"""Every real npm model converts, and the converted Keras model equals tensorflowjs' loader."""
from __future__ import annotations

import numpy as np
import pytest

from srjs import modeldir
from tests.conftest import ISR_PSNR_SMALL, npm_model

ESRGAN_PACKAGES = ["esrgan-slim", "esrgan-medium", "esrgan-thick"]
NPM_LAYERS_MODELS = [
    f"npm:@upscalerjs/{package}@1.0.0/models/x{scale}/model.json"
    for package in ESRGAN_PACKAGES for scale in (2, 3, 4, 8)
] + [
    f"npm:@upscalerjs/models@0.9.0/models/{path}/model.json"
    for path in ("idealo/gans", "idealo/psnr-small-quant-uint8", "div2k/005-2x", "div2k/019-3x", "div2k/017-4x")
]
EXPECTED = {  # what the packages' own definitions and config.json files say
    "esrgan-slim": ("rdn", [0, 255]),
    "esrgan-medium": ("rdn", [0, 255]),
    "esrgan-thick": ("rrdn", [0, 1]),
}


def tfjs_reference(model_json, batch):
    """tensorflowjs' own Python loader, on the original model.json."""
    import tensorflowjs as tfjs

    from srjs.archs import custom_objects
    from srjs.tf import keras

    with keras.utils.custom_object_scope(custom_objects()):
        model = tfjs.converters.load_keras_model(str(model_json))
    return np.asarray(model(batch, training=False))


@pytest.mark.slow  # real npm models: make test runs them, make test-fast (the dev lane) does not
@pytest.mark.parametrize("source", NPM_LAYERS_MODELS, ids=lambda s: s.split("@upscalerjs/")[1])
def test_npm_model_converts_and_matches_tfjs_loader(source, converted):
    out = converted(source, export_tfjs=False)
    manifest = modeldir.read_manifest(out)
    package = source.split("@upscalerjs/")[1].split("@")[0]
    if package in EXPECTED:
        arch, value_range = EXPECTED[package]
        assert (manifest.arch, manifest.value_range) == (arch, value_range)
        assert manifest.name == f"{package}-x{manifest.scale}"  # package + folder
        assert f"/x{manifest.scale}/" in source
    assert manifest.source["format"] == "tfjs_layers"

    batch = np.random.default_rng(0).random((1, 12, 16, 3), dtype=np.float32) * manifest.value_max
    ours = np.asarray(modeldir.load_keras(out)(batch, training=False))
    reference = tfjs_reference(npm_model(source), batch)
    assert ours.shape == (1, 12 * manifest.scale, 16 * manifest.scale, 3)
    assert np.abs(ours - reference).max() <= 1e-5 * max(1.0, float(np.abs(reference).max()))


@pytest.mark.slow
def test_isr_psnr_small_h5_beats_bicubic(converted):
    """The full Keras ISR RDN x2 converts and really super-resolves: > 1 dB Y-PSNR over bicubic."""
    from skimage import data

    from srjs.evaluate.metrics import psnr_y
    from srjs.evaluate.resize import bicubic_downsample, bicubic_upsample

    out = converted(ISR_PSNR_SMALL, export_tfjs=False)
    manifest = modeldir.read_manifest(out)
    assert (manifest.arch, manifest.scale, manifest.source["format"]) == ("rdn", 2, "h5")
    assert manifest.value_range == [0, 1]  # idealo ISR works on [0, 1]

    hr = data.astronaut()[96:288, 160:352]  # 192 px crop: the face and the flag
    lr = np.clip(np.round(bicubic_downsample(hr, 2)), 0, 255)
    model = modeldir.load_keras(out)
    sr = np.asarray(model((lr / 255.0).astype(np.float32)[None], training=False))[0] * 255.0
    bicubic = bicubic_upsample(lr, 2)
    gain = psnr_y(sr, hr, crop=2) - psnr_y(bicubic, hr, crop=2)
    assert gain > 1.0, f"ISR psnr-small gains only {gain:.2f} dB over bicubic"
