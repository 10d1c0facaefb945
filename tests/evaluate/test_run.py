"""srjs evaluate: numbers equal the metrics computed directly, on what the TF.js artifact ships."""
import json
import math
import shutil

import numpy as np
import pytest
from skimage import data

from srjs import modeldir
from srjs.evaluate import metrics, resize, tiling
from srjs.evaluate.results import Evaluation
from srjs.evaluate.run import encoded_bytes, payback_images, run_evaluate
from srjs.evaluate.shipped import load_shipped, shipped_weights
from srjs.runtime.python import keras_runner
from tests.conftest import SLIM_X2, run_cli

CROP = 64
FAST = dict(dataset="builtin", limit=2, crop=CROP, latency_size=32, latency_tiles=(0, 16), warm=1,
            progress=False)


def _altered_copy(src, dst):
    """A copy of a model dir whose tfjs_layers shard is scaled by 0.9 (Keras file untouched)."""
    shutil.copytree(src, dst)
    shards = sorted((dst / modeldir.TFJS_LAYERS_DIR).glob("*.bin"))
    values = np.fromfile(shards[0], dtype="<f4")  # float32 export: the shard is raw float32
    (values * np.float32(0.9)).astype("<f4").tofile(shards[0])
    return dst


@pytest.fixture(scope="module")
def slim(converted):
    return converted(SLIM_X2)


@pytest.fixture(scope="module")
def altered(slim, tmp_path_factory):
    return _altered_copy(slim, tmp_path_factory.mktemp("altered") / "slim-x2-altered")


@pytest.fixture(scope="module")
def evaluation(slim, altered, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    result = run_evaluate([slim, altered], json_path=out / "e.json", **FAST)
    return result, json.loads((out / "e.json").read_text())


def _centre(image, side):
    h, w = image.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def test_bicubic_row_equals_metrics_computed_directly(evaluation):
    result, _ = evaluation
    bicubic = result.rows[0]
    assert (bicubic.name, bicubic.kind, bicubic.scale) == ("bicubic x2", "bicubic", 2)
    assert [s.image for s in bicubic.images] == ["astronaut", "chelsea"]
    direct = []
    for image in (data.astronaut(), data.chelsea()):
        hr = _centre(image, CROP)
        lr = resize.bicubic_downsample(hr, 2, uint8=True)
        sr = metrics.to_uint8(resize.bicubic_upsample(lr, 2))
        direct.append((metrics.psnr_y(sr, hr, 2), metrics.ssim_y(sr, hr, 2), metrics.psnr_rgb(sr, hr, 2)))
    for score, (p, s, r) in zip(bicubic.images, direct):
        assert (score.psnr_y, score.ssim_y, score.psnr_rgb) == (p, s, r)
    assert bicubic.psnr_y == pytest.approx(np.mean([d[0] for d in direct]), abs=1e-12)
    assert 20 < bicubic.psnr_y < 40 and 0.5 < bicubic.ssim_y < 1


def test_model_row_scores_the_shipped_model_output(evaluation, slim):
    result, _ = evaluation
    row = result.rows[1]
    hr = _centre(data.astronaut(), CROP)
    lr = resize.bicubic_downsample(hr, 2, uint8=True).astype(np.float32)  # esrgan-slim: range [0, 255]
    sr = load_shipped(slim)(lr[None]).numpy()[0]
    assert row.images[0].psnr_y == pytest.approx(metrics.psnr_y(sr, hr, 2), abs=1e-9)
    manifest = modeldir.read_manifest(slim)
    layers = [e for p, e in manifest.files.items() if p.startswith("tfjs_layers/")]
    assert row.bytes == sum(e["bytes"] for e in layers) and row.gzip_bytes == sum(e["gzip_bytes"] for e in layers)
    assert row.weights_from == "tfjs_layers/model.json"


def test_fidelity_of_a_model_against_itself_is_inf_and_one(evaluation):
    result, _ = evaluation
    row = result.rows[1]
    assert row.reference == row.name
    assert row.fidelity_psnr_y == math.inf and row.fidelity_ssim_y == 1.0
    assert all(s.fidelity_psnr_y == math.inf and s.fidelity_ssim_y == 1.0 for s in row.images)


def test_altered_tfjs_weights_change_the_numbers_keras_weights_do_not(evaluation, slim, altered):
    result, _ = evaluation
    original, changed = result.rows[1], result.rows[2]
    # Same Keras file, different shipped shard: evaluation must follow the shard.
    assert (slim / modeldir.KERAS_FILE).read_bytes() == (altered / modeldir.KERAS_FILE).read_bytes()
    assert abs(original.psnr_y - changed.psnr_y) > 0.1
    assert changed.reference == original.name
    assert math.isfinite(changed.fidelity_psnr_y) and changed.fidelity_ssim_y < 1.0
    x = np.random.default_rng(0).random((1, 24, 24, 3)).astype(np.float32) * 255
    keras_out = modeldir.load_keras(altered)(x).numpy()
    shipped_out = load_shipped(altered)(x).numpy()
    assert np.abs(keras_out - shipped_out).max() > 1.0
    np.testing.assert_array_equal(shipped_weights(altered)["F_0/bias"],
                                  np.float32(0.9) * shipped_weights(slim)["F_0/bias"])


def test_payback_on_a_hand_made_case():
    # 1000 gzip bytes, savings 300 and 500 bytes per image: mean 400 -> 2.5 -> paid after image 3.
    assert payback_images(1000, [300, 500]) == 3
    assert payback_images(800, [300, 500]) == 2
    assert payback_images(10, [300, 500]) == 1
    assert payback_images(1000, [-50, 40]) is None
    assert payback_images(1000, []) is None


def test_bandwidth_and_payback_in_the_evaluation(evaluation):
    result, _ = evaluation
    first = result.bandwidth[0]
    hr = _centre(data.astronaut(), CROP)
    lr = resize.bicubic_downsample(hr, 2, uint8=True)
    assert (first.image, first.hr_size, first.lr_size) == ("astronaut", [CROP, CROP], [CROP // 2, CROP // 2])
    assert (first.hr_png, first.hr_jpeg) == encoded_bytes(hr)
    assert (first.lr_png, first.lr_jpeg) == encoded_bytes(lr)
    assert first.hr_png > first.lr_png > 0
    row = result.rows[1]
    mean_png = np.mean([b.hr_png - b.lr_png for b in result.bandwidth])
    assert row.payback_png == math.ceil(row.gzip_bytes / mean_png)


def test_seam_free_padding_is_measured_and_minimal(evaluation, slim):
    result, _ = evaluation
    row = result.rows[1]
    pad, patch = row.seam_free_padding, row.seam_patch
    assert isinstance(pad, int) and pad > 0 and patch == 32
    run = keras_runner(load_shipped(slim))
    lr = resize.bicubic_downsample(data.astronaut(), 2, uint8=True)
    lr = _centre(lr, 128).astype(np.float32)
    assert tiling.tiling_error(run, lr, 2, patch, pad) <= 1.0
    assert tiling.tiling_error(run, lr, 2, patch, pad - 1) > 1.0


def test_evaluate_leaves_its_inputs_alone_unless_asked_to_record(evaluation, altered):
    result, _ = evaluation  # measured the altered copy's padding without --record
    row = next(r for r in result.rows if r.path == str(altered))
    assert row.seam_free_padding is not None
    assert "seam_free_padding" not in modeldir.read_manifest(altered).results
    run_evaluate([altered], record=True, seam=True, **FAST)
    recorded = modeldir.read_manifest(altered).results
    assert (recorded["seam_free_padding"], recorded["seam_patch"]) == (row.seam_free_padding, row.seam_patch)


def test_json_is_strict_versioned_and_round_trips(evaluation):
    result, raw = evaluation
    assert raw["schema"] == "srjs.evaluate/1"
    assert raw["rows"][1]["fidelity_psnr_y"] == "inf"  # strict JSON has no Infinity
    text = json.dumps(raw)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    back = Evaluation.from_dict(raw)
    assert back.rows[1].fidelity_psnr_y == math.inf
    assert [r.psnr_y for r in back.rows] == [r.psnr_y for r in result.rows]
    assert back.latency[0].warm_ms == result.latency[0].warm_ms


def test_cli_evaluate_prints_the_table_and_rejects_bad_datasets(slim, tmp_path):
    out = tmp_path / "e.json"
    done = run_cli("evaluate", slim, "--limit", "1", "--crop", "48", "--json", out)
    assert done.exit_code == 0, done.output
    assert "bicubic x2" in done.output and "esrgan-slim-x2" in done.output
    assert json.loads(out.read_text())["images"][0]["size"] == [48, 48]
    bad = run_cli("evaluate", slim, "--dataset", tmp_path / "missing")
    assert bad.exit_code == 2 and "missing" in bad.output
    assert run_cli("evaluate", "--help").exit_code == 0
