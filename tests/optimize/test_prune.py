"""srjs optimize --prune / --cluster: distillation fine-tune, sparsity and gzip on the shipped weights."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from srjs import modeldir, tfjs_weights
from srjs.optimize import distill
from srjs.optimize.run import Recipe, make_variant
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random-weight RRDBNet x4 model dir (8 features, 1 block): cheap to fine-tune and to run."""
    from srjs.archs import get_arch
    from srjs.convert.write import write_model_dir
    from srjs.modeldir import Manifest
    from srjs.tf import keras

    keras.utils.set_random_seed(7)
    params = {"scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4}
    model = get_arch("rrdbnet").build(**params)
    out = tmp_path_factory.mktemp("tiny") / "rrdb"
    write_model_dir(model, out, Manifest(name="tiny-rrdb", arch="rrdbnet", arch_params=params, scale=4,
                                         value_range=[0, 1], source={"path": "random", "format": "test"}))
    return out


def _kernels(model_dir):
    """Conv kernels (4-D tensors) the TF.js layers export ships, decoded as TF.js decodes them."""
    weights = tfjs_weights.read_weights(model_dir / modeldir.TFJS_LAYERS_DIR / "model.json")
    return {n: v for n, v in weights.items() if v.ndim == 4}


def _shard_gzip(model_dir):
    folder = model_dir / modeldir.TFJS_LAYERS_DIR
    return sum(len(gzip.compress(p.read_bytes(), compresslevel=9, mtime=0)) for p in folder.glob("*.bin"))


@pytest.fixture(scope="module")
def pruned(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "tiny-p60"
    make_variant(tiny, out, Recipe(prune=0.6, steps=30))
    return out


def test_pruned_variant_ships_the_requested_sparsity_and_gzips_smaller(tiny, pruned):
    kernels = _kernels(pruned)
    assert len(kernels) == 21  # every conv of the 1-block RRDBNet, none left unpruned
    for name, kernel in kernels.items():
        # tfmot rounds the number of masked weights per tensor: within one weight of 60%
        assert abs(np.mean(kernel == 0) - 0.6) <= 1.0 / kernel.size + 1e-9, name
    assert min(np.mean(k == 0) for k in _kernels(tiny).values()) == 0.0  # the parent had no zeros
    results = modeldir.read_manifest(pruned).results
    assert results["prune"]["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert set(results["prune"]["layers"]) == {n.split("/")[0] for n in kernels}
    assert results["prune"]["fine_tune"]["steps"] == 30
    # gzip only pays off for zeros: raw shards are the same size, gzip'd ones clearly smaller
    raw = lambda d: sum(p.stat().st_size for p in (d / modeldir.TFJS_LAYERS_DIR).glob("*.bin"))
    assert raw(pruned) == raw(tiny)
    assert _shard_gzip(pruned) < 0.75 * _shard_gzip(tiny)


def test_distillation_reduces_the_l1_to_the_teacher(tiny):
    """A student started away from the teacher gets closer to it within a few dozen steps."""
    from srjs.modeldir import load_keras

    teacher, student = load_keras(tiny), load_keras(tiny)
    rng = np.random.default_rng(0)
    student.set_weights([w + rng.normal(scale=0.05, size=w.shape).astype(np.float32) for w in student.get_weights()])
    images = distill.calibration_images("builtin", 4, max_images=2)
    x = distill.PatchSampler(images, 24, 1.0, seed=5).batch(4)
    before = float(np.mean(np.abs(student(x) - teacher(x))))
    _, report = distill.distill(student, teacher, images, steps=40, learning_rate=1e-3)
    after = float(np.mean(np.abs(student(x) - teacher(x))))
    assert report.steps == 40 and after < 0.7 * before


def test_calibration_images_are_each_photo_at_three_sizes():
    """x4: the photo downscaled by 4 (what users feed), by 2, and as it is; held-out photos never."""
    from srjs.optimize.calib import split_images

    calib, held = split_images("builtin")
    images = distill.calibration_images("builtin", 4, max_images=2)
    assert len(images) == 2 * 3
    h, w = calib[0].hr.shape[:2]
    assert [im.shape[:2] for im in images[:3]] == [(h // 4, w // 4), (h // 2, w // 2), (h, w)]
    np.testing.assert_allclose(images[2], calib[0].hr / 255.0, atol=1e-6)
    assert all(im.dtype == np.float32 and 0 <= im.min() and im.max() <= 1 for im in images)
    assert len(distill.calibration_images("builtin", 2, max_images=1)) == 2  # x2: by 2 and as it is


def test_labelled_batches_label_one_in_four_and_repeat_the_rest():
    """The teacher labels a fresh batch every fourth draw; the other draws are earlier pairs,
    unchanged (input and label together), and the store keeps only what fits its byte cap."""
    images = [np.random.default_rng(1).random((40, 40, 3), dtype=np.float32)]
    calls = []

    def label(x):
        calls.append(x.copy())
        return x[:, ::2, ::2] * 2.0

    batches = distill.LabelledBatches(distill.PatchSampler(images, 8, 1.0, seed=2), label, batch=2,
                                      fresh_every=4, keep_bytes=3 * (2 * 8 * 8 * 3 + 2 * 4 * 4 * 3) * 4)
    pairs = [batches.draw() for _ in range(20)]
    assert len(calls) == 5  # draws 0, 4, 8, 12, 16
    labelled = {c.tobytes() for c in calls}
    for x, y in pairs:
        assert x.tobytes() in labelled
        np.testing.assert_array_equal(y, x[:, ::2, ::2] * 2.0)
    assert len(batches.kept) == 3  # the cap holds three pairs: the oldest two were let go
    assert [k[0].tobytes() for k in batches.kept] == [c.tobytes() for c in calls[-3:]]


def test_time_budget_bounds_the_fine_tune(tiny):
    from srjs.modeldir import load_keras

    teacher, student = load_keras(tiny), load_keras(tiny)
    images = distill.calibration_images("builtin", 4, max_images=2)
    _, report = distill.distill(student, teacher, images, time_budget_s=2.0)
    assert report.steps >= 1 and report.seconds < 2.0 + 10.0  # one step (with tracing) may overrun


def test_clustered_pruned_variant_keeps_zeros_and_k_values(pruned, tmp_path):
    out = tmp_path / "p60-c6"
    manifest = make_variant(pruned, out, Recipe(cluster=6, steps=5))
    assert manifest.results["cluster"]["preserve_sparsity"] is True
    for name, kernel in _kernels(out).items():
        assert np.unique(kernel).size <= 6 + 1, name  # K centroids, plus the preserved zero
        assert np.mean(kernel == 0) >= 0.6 - 1.0 / kernel.size - 1e-9, name


def test_ctrl_c_during_the_fine_tune_leaves_no_variant(tiny, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = distill.PatchSampler.batch

    def interrupted(self, n):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, n)

    monkeypatch.setattr(distill.PatchSampler, "batch", interrupted)
    out = tmp_path / "variant"
    with pytest.raises(KeyboardInterrupt):
        make_variant(tiny, out, Recipe(prune=0.5, steps=50, quantize="uint8"))
    assert calls["n"] == 3
    assert list(tmp_path.iterdir()) == []  # no variant, no temporary sibling


def test_bad_fine_tune_requests_exit_2_and_write_nothing(tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--prune", "1.5"], "(0, 1)"), (["--prune", "0"], "(0, 1)"), (["--prune", "1"], "(0, 1)"),
        (["--cluster", "1"], "at least 2"), (["--prune", "0.5", "--steps", "0"], "--steps"),
        (["--prune", "0.5", "--time-budget", "-3"], "--time-budget"),
        (["--prune", "0.5", "--calib", empty], "--calib"),
    ]
    for args, message in cases:
        done = run_cli("optimize", tiny, "-o", tmp_path / "out", *args)
        assert done.exit_code == 2 and message in done.output, (args, done.output)
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_pruned_uint8_variant_loads_in_tfjs_and_matches_its_keras_twin(tiny, tmp_path):
    from srjs.verify import verify_model_dir

    out = tmp_path / "p50-u8"
    done = run_cli("optimize", tiny, "-o", out, "--prune", "0.5", "--steps", "20", "--quantize", "uint8")
    assert done.exit_code == 0, done.output
    assert "prune: sparsity 0.500" in done.output
    data = json.loads((out / modeldir.TFJS_LAYERS_DIR / "model.json").read_text())
    kinds = {(w.get("quantization") or {}).get("dtype", w["dtype"]) for g in data["weightsManifest"] for w in g["weights"]}
    assert kinds == {"uint8"}
    for name, kernel in _kernels(out).items():  # zeros stay exact zeros through uint8
        assert abs(np.mean(kernel == 0) - 0.5) <= 1.0 / kernel.size + 1e-9, name
    report = verify_model_dir(out, runtimes=("node",), backends={"node": ("wasm",)})
    assert report.ok and len(report.rows) == 2  # layers and graph exports, both within tolerance


def test_keep_zeros_puts_zero_on_the_uint8_grid(rng):
    from srjs.optimize.prune import keep_zeros
    from srjs.tfjs_weights import Encoding, decode, quantize_tensor

    values = rng.normal(size=(200,)).astype(np.float32)
    values[::2] = 0
    off = Encoding("uint8", float((values.max() - values.min()) / 255), float(values.min()) + 0.003)
    assert np.all(decode(quantize_tensor(values, off), off)[::2] != 0)
    enc = keep_zeros(values, off)
    decoded = decode(quantize_tensor(values, enc), enc)
    assert np.all(decoded[::2] == 0) and abs(enc.min - off.min) <= enc.scale / 2
    assert np.abs(decoded[1::2] - values[1::2]).max() <= enc.scale


def test_evaluate_groups_a_variant_with_its_parent(tiny, pruned, tmp_path):
    from srjs.evaluate.report import main_table
    from srjs.evaluate.run import run_evaluate

    evaluation = run_evaluate([tiny, pruned], dataset="builtin", limit=1, crop=48, latency_size=32,
                              latency_tiles=(0,), warm=1, seam=False, progress=False)
    parent, variant = [r for r in evaluation.rows if r.kind == "model"]
    assert variant.reference == parent.name and parent.recipe is None
    assert variant.recipe == "prune=0.6 steps=30"
    assert variant.gzip_bytes < parent.gzip_bytes and variant.fidelity_psnr_y < 100
    headers, cells = main_table(evaluation)
    assert cells[-1][headers.index("recipe")] == "prune=0.6 steps=30"  # the variant is the last row (srjs.tables header)


def test_pareto_front_keeps_only_undominated_rows():
    from srjs.evaluate.report import pareto_front
    from srjs.evaluate.results import Row

    def row(name, gz, db):
        return Row(name=name, kind="model", scale=4, psnr_y=db, ssim_y=0, psnr_rgb=0, images=[], gzip_bytes=gz)

    rows = [row("f32", 800, 28.5), row("u8", 200, 28.5), row("p50", 140, 28.4), row("bad", 300, 28.0),
            row("c16", 100, 28.45)]
    assert [r.name for r in pareto_front(rows)] == ["c16", "u8"]


def test_variant_crops_land_where_it_differs_from_its_parent():
    from srjs.evaluate.report import _most_different_box

    parent = np.zeros((120, 160, 3), np.uint8)
    variant = parent.copy()
    variant[70:90, 100:130] = 40  # the only place the variant departs from the parent
    top, left, side = _most_different_box(variant, parent, 32)
    assert side == 32 and top <= 70 and top + side >= 90 and left <= 100 and left + side >= 130
    assert _most_different_box(parent, parent, 32) is None
