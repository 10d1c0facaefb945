"""A Functional top level fails in an old TF.js runtime; --upscalerjs-compat output loads there."""
from __future__ import annotations

import numpy as np

from srjs import modeldir
from srjs.convert.patch import patch_file
from srjs.runtime.legacy import run_legacy_tfjs
from tests.conftest import SLIM_X2


def test_functional_fails_in_tfjs_1_7_and_compat_output_loads_and_matches(converted, tmp_path):
    model_dir = converted(SLIM_X2)
    exported = model_dir / "tfjs_layers" / "model.json"
    x = np.random.default_rng(5).uniform(0, 255, (1, 10, 14, 3)).astype(np.float32)

    out, error = run_legacy_tfjs(exported, x)
    assert out is None and "Unknown layer: Functional" in error

    fixed = tmp_path / "compat" / "model.json"
    result = patch_file(exported, fixed, upscalerjs_compat=True)
    assert result.changes == ["model: class Functional -> Model (old tfjs runtimes)"]
    out, error = run_legacy_tfjs(fixed, x)
    assert error is None
    want = np.asarray(modeldir.load_keras(model_dir)(x, training=False))
    assert out.shape == want.shape == (1, 20, 28, 3)
    assert np.abs(out - want).max() <= 1e-4 * 255
