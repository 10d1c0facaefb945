"""srjs optimize --quantize: calibrated per-tensor encodings, auto budgets, variants that load in TF.js."""
from __future__ import annotations

import json

import numpy as np
import pytest

from srjs import modeldir, tfjs_weights
from srjs.errors import BadInput
from srjs.optimize import quantize
from srjs.optimize.run import Recipe, make_variant
from srjs.tfjs_weights import Encoding
from tests.conftest import SLIM_X4, run_cli


def test_tfjs_encoding_is_tensorflowjs_own(rng):
    from tensorflowjs.quantization import quantize_weights

    values = rng.normal(size=(3, 3, 8, 8)).astype(np.float32)
    for dtype, numpy_dtype in (("uint8", np.uint8), ("uint16", np.uint16)):
        q, meta = quantize_weights(values, numpy_dtype)
        enc = quantize.tfjs_encoding(values, dtype)
        assert (enc.scale, enc.min) == pytest.approx((meta["scale"], meta["min"]), rel=1e-12)
        np.testing.assert_array_equal(tfjs_weights.quantize_tensor(values, enc), q)


def test_candidates_cover_the_tensor(rng):
    values = rng.normal(size=(500,)).astype(np.float32) * 0.1 + 0.03
    candidates = quantize.candidate_encodings(values, "uint8")
    assert len(candidates) == 5
    for enc in candidates:
        low, high = enc.min, enc.min + 255 * enc.scale
        # tensorflowjs' zero-nudged grid may clip by up to half a step; the others never clip
        assert low <= values.min() + enc.scale / 2 and high >= values.max() - enc.scale / 2
        assert np.abs(quantize.dequantized(values, enc) - values).max() <= enc.scale + 1e-7


@pytest.mark.parametrize("spec, message", [
    ("int4", "unknown dtype 'int4'"), ("uint8:*nothing*", "matches no weight"), ("uint8:", "expected DTYPE"),
])
def test_bad_specs(spec, message):
    with pytest.raises(BadInput, match=message):
        quantize.parse_spec(spec, ["conv/kernel", "conv/bias"])


def test_pattern_spec_first_match_wins():
    names = ["conv_a/kernel", "conv_a/bias", "up/kernel"]
    assert quantize.parse_spec("uint8:*kernel,float16:conv*", names) == {
        "conv_a/kernel": "uint8", "conv_a/bias": "float16", "up/kernel": "uint8"}
    assert quantize.parse_spec("float16:up/*", names)["conv_a/kernel"] == "float32"


@pytest.mark.parametrize("table, message", [
    ({"quantise": "uint8"}, "unknown key 'quantise'"), ({"quantize": 8}, "'quantize' must be str"),
    ({"quantize": "auto"}, "needs a budget"), ({"quantize": "auto", "max_drop_db": -1}, ">= 0"),
    ({"prune": 1.5}, r"sparsity in \(0, 1\)"), ({"cluster": 1}, "at least 2"),
])
def test_recipe_from_dict_names_the_problem(table, message):
    with pytest.raises(BadInput, match=message):
        Recipe.from_dict(table, "configs/x.toml [[variants]] 1")


@pytest.fixture(scope="module")
def slim(converted):
    return converted(SLIM_X4)


@pytest.fixture(scope="module")
def uint8_variant(slim, tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "slim-u8"
    make_variant(slim, out, Recipe(quantize="uint8"))
    return out


def _fidelity_db(model, parent_out, crops, scale, vmax):
    from srjs.optimize import calib

    return calib.quality(np.asarray(model(crops.lr, training=False)), crops, scale, vmax, parent_out).fidelity_psnr_y


@pytest.mark.slow
def test_srjs_uint8_is_at_least_as_faithful_as_tensorflowjs_uint8(slim, uint8_variant, tmp_path):
    """On the real esrgan-slim x4 weights, measured on the shipped artifacts of both."""
    from srjs.archs import assign_weights, keras_targets
    from srjs.convert.export import ExportOptions, export_layers
    from srjs.evaluate.shipped import load_shipped
    from srjs.optimize import calib

    manifest = modeldir.read_manifest(slim)
    _, heldout = calib.calibration_sets("builtin", manifest.scale, manifest.value_max)
    parent = load_shipped(slim)
    parent_out = np.asarray(parent(heldout.lr, training=False))

    ref_json = export_layers(parent, tmp_path / "tfjs-uint8", manifest.scale, ExportOptions(quantization={"uint8": "*"}))
    assign_weights("tensorflowjs uint8", keras_targets(parent), tfjs_weights.read_weights(ref_json))
    theirs = _fidelity_db(parent, parent_out, heldout, manifest.scale, manifest.value_max)
    mine = _fidelity_db(load_shipped(uint8_variant), parent_out, heldout, manifest.scale, manifest.value_max)

    assert mine >= theirs
    assert mine > 45  # far from the float model would mean a decoding bug, not a worse range
    variant = modeldir.read_manifest(uint8_variant)
    assert variant.parent == str(slim) and variant.recipe == {"quantize": "uint8", "calib": "builtin"}
    assert variant.results["heldout"]["fidelity_psnr_y"] == pytest.approx(mine, abs=1e-3)


@pytest.mark.slow
def test_uint8_variant_ships_uint8_and_matches_its_keras_twin_in_tfjs(uint8_variant, slim):
    from srjs.verify import verify_model_dir

    for export in (modeldir.TFJS_LAYERS_DIR, modeldir.TFJS_GRAPH_DIR):
        data = json.loads((uint8_variant / export / "model.json").read_text())
        kinds = {(w.get("quantization") or {}).get("dtype", w["dtype"])
                 for g in data["weightsManifest"] for w in g["weights"]}
        assert kinds <= {"uint8", "int32"} and "uint8" in kinds, (export, kinds)
    parent_bytes = sum(f["bytes"] for k, f in modeldir.read_manifest(slim).files.items() if k.startswith("tfjs_layers/"))
    mine = sum(f["bytes"] for k, f in modeldir.read_manifest(uint8_variant).files.items() if k.startswith("tfjs_layers/"))
    assert mine < parent_bytes / 3.5
    report = verify_model_dir(uint8_variant, runtimes=("node",), backends={"node": ("wasm",)})
    assert report.ok and len(report.rows) == 2  # layers and graph exports, both within tolerance


@pytest.mark.slow
def test_auto_respects_its_budget_on_held_out_images(slim, tmp_path):
    out = tmp_path / "auto"
    manifest = make_variant(slim, out, Recipe(quantize="auto", max_drop_db=0.01))
    held = manifest.results["heldout"]
    assert held["drop_db"] <= 0.01
    dtypes = manifest.results["quantization"]["dtypes"]
    assert set(dtypes) <= {"uint8", "uint16"} and dtypes.get("uint8", 0) > 0
    assert manifest.results["weight_bytes"] < manifest.results["float32_weight_bytes"] / 2


def test_bad_requests_exit_2_and_write_nothing(tmp_path):
    (tmp_path / "not-a-model").mkdir()
    cases = [
        (["--quantize", "uint8"], "not an srjs model dir"),
        (["--quantize", "auto"], "needs a budget"),
        (["--quantize", "auto", "--max-drop-db", "-0.5"], ">= 0"),
        ([], "nothing to do"),
    ]
    for args, message in cases:
        done = run_cli("optimize", tmp_path / "not-a-model", "-o", tmp_path / "out", *args)
        assert done.exit_code == 2 and message in done.output, (args, done.output)
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_calibration_folder_errors(slim, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "missing"):
        done = run_cli("optimize", slim, "-o", tmp_path / "out", "--quantize", "uint8", "--calib", folder)
        assert done.exit_code == 2 and "--calib" in done.output and not (tmp_path / "out").exists()
    done = run_cli("optimize", slim, "-o", tmp_path / "out", "--quantize", "uint8:*nothing*")
    assert done.exit_code == 2 and "matches no weight" in done.output and not (tmp_path / "out").exists()


def test_encoding_manifest_entries_round_trip(tmp_path, rng):
    values = rng.normal(size=(4, 4)).astype(np.float32)
    enc = quantize.candidate_encodings(values, "uint8")[-1]
    manifest = tfjs_weights.write_weights(tmp_path, [("w", quantize.dequantized(values, enc), enc),
                                                     ("i", np.arange(3, dtype=np.int32), Encoding())])
    (tmp_path / "model.json").write_text(json.dumps({"weightsManifest": manifest}))
    back = tfjs_weights.read_weights(tmp_path / "model.json")
    np.testing.assert_array_equal(back["w"], quantize.dequantized(values, enc))  # lossless re-encoding
    assert back["i"].dtype == np.int32 and list(back["i"]) == [0, 1, 2]


def test_constant_resize_layers_stay_float32(tmp_path, rng):
    """animevideov3 x2/x3 end in an exact bicubic resize built from fixed layers: never quantized."""
    from srjs.convert.run import convert_checkpoint
    from tests.convert.test_ncnn import srvgg_pair

    param = srvgg_pair(tmp_path, rng, feat=4, scale=4, resize=0.5)
    parent = tmp_path / "x2"
    convert_checkpoint(str(param), parent)
    manifest = make_variant(parent, tmp_path / "x2-u8", Recipe(quantize="uint8"))
    data = json.loads((tmp_path / "x2-u8" / modeldir.TFJS_LAYERS_DIR / "model.json").read_text())
    kinds = {w["name"]: (w.get("quantization") or {}).get("dtype", w["dtype"])
             for g in data["weightsManifest"] for w in g["weights"]}
    fixed = {n: k for n, k in kinds.items() if n.startswith("resize__")}
    assert fixed and set(fixed.values()) == {"float32"}
    assert {k for n, k in kinds.items() if n not in fixed} == {"uint8"}
    assert manifest.results["heldout"]["fidelity_psnr_y"] > 40
