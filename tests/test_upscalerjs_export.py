"""srjs's own layers export runs in UpscalerJS 1.0.0 (with tfjs 4.11) unmodified, tiled, and
matches `srjs upscale`."""
from __future__ import annotations

import numpy as np
import pytest

from srjs import modeldir
from tests.conftest import SLIM_X4, THICK_X2, run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("source", [SLIM_X4, THICK_X2], ids=["esrgan-slim-x4 (rdn)", "esrgan-thick-x2 (rrdn)"])
def test_layers_export_upscales_in_upscalerjs_like_srjs_upscale(source, converted, tmp_path):
    from skimage import data

    from srjs.runtime import run_upscalerjs

    model_dir = converted(source)
    manifest = modeldir.read_manifest(model_dir)
    image = data.astronaut()[120:152, 200:240]  # 32x40 photo crop
    # patchSize 24 with padding 8: UpscalerJS tiles the image into 2x3 windows; the padding
    # covers the nets' receptive field where UpscalerJS keeps pixels (seam-free there).
    got = run_upscalerjs(model_dir / "tfjs_layers", image, manifest.scale, tuple(manifest.value_range),
                         patch_size=24, padding=8)

    np.save(tmp_path / "in.npy", image.astype(np.float32) * (manifest.value_max / 255.0))
    result = run_cli("upscale", model_dir, tmp_path / "in.npy", "-o", tmp_path / "out.npy")
    assert result.exit_code == 0, result.output
    ours = np.clip(np.load(tmp_path / "out.npy") * (255.0 / manifest.value_max), 0, 255)

    assert got.shape == ours.shape == (32 * manifest.scale, 40 * manifest.scale, 3)
    assert np.abs(got - ours).max() <= 2.0  # 2/255 of the range, in 8-bit levels
