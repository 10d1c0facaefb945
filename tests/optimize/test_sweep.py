"""srjs optimize --sweep / --recipe / --recipes: several variants, one evaluation, one table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srjs import modeldir, tfjs_weights
from srjs.errors import BadInput
from srjs.optimize import sweep
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random-weight RRDBNet x4 model dir (8 features, 1 block): cheap to quantize and to run."""
    from srjs.archs import get_arch
    from srjs.convert.write import write_model_dir
    from srjs.modeldir import Manifest
    from srjs.tf import keras

    keras.utils.set_random_seed(11)
    params = {"scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4}
    model = get_arch("rrdbnet").build(**params)
    # Biases as a trained net has them: with Keras' all-zero biases the graph export fuses a
    # residual Add into _FusedConv2D as a rank-4 "bias", which TF.js rejects (a convert issue).
    rng = np.random.default_rng(11)
    model.set_weights([w if w.ndim != 1 else rng.normal(scale=0.01, size=w.shape).astype(np.float32)
                       for w in model.get_weights()])
    out = tmp_path_factory.mktemp("tiny") / "rrdb"
    write_model_dir(model, out, Manifest(name="tiny-rrdb", arch="rrdbnet", arch_params=params, scale=4,
                                         value_range=[0, 1], source={"path": "random", "format": "test"}))
    return out


@pytest.fixture(scope="module")
def swept(tiny, tmp_path_factory):
    """`srjs optimize --recipe ... --recipe ...` through the CLI, on one 32 px crop."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    done = run_cli("optimize", tiny, "-o", out, "--recipe", "quantize=float16", "--recipe", "quantize=uint8",
                   "--limit", "1", "--crop", "32")
    assert done.exit_code == 0, done.output
    return out, done.output


def _shipped_dtypes(model_dir: Path) -> set[str]:
    data = json.loads((model_dir / modeldir.TFJS_LAYERS_DIR / "model.json").read_text())
    return {(w.get("quantization") or {}).get("dtype", w["dtype"]) for g in data["weightsManifest"] for w in g["weights"]}


def test_sweep_makes_one_loadable_variant_per_recipe(tiny, swept):
    from srjs.evaluate.shipped import load_shipped

    out, _ = swept
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) == [
        "float16", "report_files", "uint8"]
    x = np.random.default_rng(0).uniform(size=(1, 12, 12, 3)).astype(np.float32)
    parent_y = np.asarray(load_shipped(tiny)(x, training=False))
    for name, dtype in (("float16", "float16"), ("uint8", "uint8")):
        variant = out / name
        manifest = modeldir.read_manifest(variant)
        assert manifest.parent == str(tiny) and manifest.recipe == {"quantize": dtype, "calib": "builtin"}
        tfjs_weights.validate_manifest(variant / modeldir.TFJS_LAYERS_DIR / "model.json")  # shards vs topology
        assert tfjs_weights.read_weights(variant / modeldir.TFJS_GRAPH_DIR / "model.json")  # graph shards decode
        assert dtype in _shipped_dtypes(variant) and "float32" not in _shipped_dtypes(variant)
        # the Keras twin holds exactly the weights TF.js decodes from the shards
        shipped = tfjs_weights.read_weights(variant / modeldir.TFJS_LAYERS_DIR / "model.json")
        keras_weights = {w.name.split(":")[0]: w.numpy() for w in modeldir.load_keras(variant).weights}
        for wname, values in shipped.items():
            np.testing.assert_array_equal(keras_weights[wname], values)
        y = np.asarray(load_shipped(variant)(x, training=False))
        assert y.shape == (1, 48, 48, 3) and 0 < np.abs(y - parent_y).max() < 0.05, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary siblings left


@pytest.mark.slow
def test_sweep_variants_match_their_keras_twin_in_tfjs(swept):
    from srjs.verify import verify_model_dir

    out, _ = swept
    for name in ("float16", "uint8"):
        report = verify_model_dir(out / name, runtimes=("node",), backends={"node": ("wasm",)}, warm_runs=1)
        assert report.ok and len(report.rows) == 2, name  # layers and graph exports within tolerance


def test_sweep_table_and_eval_json_name_each_variant(tiny, swept):
    out, printed = swept
    evaluation = json.loads((out / sweep.EVAL_FILE).read_text())
    rows = {Path(r["path"]).resolve(): r for r in evaluation["rows"] if r["kind"] == "model"}
    assert set(rows) == {tiny.resolve(), (out / "float16").resolve(), (out / "uint8").resolve()}
    parent_row = rows[tiny.resolve()]
    for name in ("float16", "uint8"):
        assert rows[(out / name).resolve()]["reference"] == parent_row["name"]  # fidelity vs the parent
    assert (out / sweep.REPORT_FILE).read_text().count("<img") >= 2

    summary = json.loads((out / sweep.SWEEP_FILE).read_text())
    assert summary["schema"] == sweep.SCHEMA and summary["complete"] is True
    table = {r["name"]: r for r in summary["rows"]}
    assert list(table) == [tiny.name, "float16", "uint8"]
    for name in ("float16", "uint8"):
        row, measured = table[name], rows[(out / name).resolve()]
        files = modeldir.read_manifest(out / name).files
        assert row["gzip_bytes"] == measured["gzip_bytes"] == sum(
            f["gzip_bytes"] for k, f in files.items() if k.startswith("tfjs_layers/"))
        assert row["drop_db"] == pytest.approx(parent_row["psnr_y"] - measured["psnr_y"], abs=1e-4)
    assert table["uint8"]["gzip_bytes"] < table["float16"]["gzip_bytes"] < table[tiny.name]["gzip_bytes"]
    assert table["uint8"]["pareto"]  # the smallest model is always on the size-quality front

    lines = printed.splitlines()
    for name in (tiny.name, "float16", "uint8"):
        line = next(line for line in lines if line.startswith(name + " "))
        assert str(table[name]["gzip_bytes"]) in line.split()
    assert "[sweep] 2/2 uint8" in printed


def test_a_sweep_into_a_finished_sweep_needs_force(tiny, swept):
    out, _ = swept
    before = sorted(p.name for p in out.iterdir())
    done = run_cli("optimize", tiny, "-o", out, "--recipe", "quantize=float16")
    assert done.exit_code == 2 and "--force replaces it" in done.output, done.output
    assert sorted(p.name for p in out.iterdir()) == before


def test_interrupted_sweep_keeps_finished_variants_whole(tiny, tmp_path, monkeypatch):
    from srjs.convert import export

    real = export.export_saved_model

    def interrupted(model, path, *args, **kwargs):
        folder = Path(path).parent
        if folder.name.startswith(".float16."):  # the second variant's temporary folder, keras/ written
            assert (folder / modeldir.KERAS_FILE).is_file()
            raise KeyboardInterrupt
        return real(model, path, *args, **kwargs)

    monkeypatch.setattr(export, "export_saved_model", interrupted)
    out = tmp_path / "out"
    out.mkdir()  # an earlier, finished sweep: its evaluation must not outlive the new sweep's start
    (out / sweep.SWEEP_FILE).write_text('{"schema": "srjs.sweep/1", "complete": true}')
    (out / sweep.EVAL_FILE).write_text("{}")
    planned = sweep.plan([(None, {"quantize": "uint8"}), (None, {"quantize": "float16"})])
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(tiny, out, planned, limit=1, crop=32, seam=False, latency_tiles=(0,), warm=1)
    assert sorted(p.name for p in out.iterdir()) == [sweep.SWEEP_FILE, "uint8"]  # nothing half-written
    assert modeldir.read_manifest(out / "uint8").recipe["quantize"] == "uint8"
    assert json.loads((out / sweep.SWEEP_FILE).read_text())["complete"] is False
    sweep.check_out(out)  # an unfinished sweep folder may be written into again


def test_default_sweep_is_cheap_and_takes_the_budget():
    names = [p.name for p in sweep.plan([(None, t) for t in sweep.default_tables(None, None)])]
    assert names == ["float16", "uint16", "uint8", f"auto-d{sweep.DEFAULT_MAX_DROP_DB:g}"]
    planned = sweep.plan([(None, t) for t in sweep.default_tables(0.02, 40.0)], max_drop_db=0.02,
                         min_fidelity_db=40.0, calib="photos")
    auto = planned[-1]
    assert auto.name == "auto-d0.02-f40" and (auto.recipe.max_drop_db, auto.recipe.min_fidelity_db) == (0.02, 40.0)
    assert all(p.recipe.prune is None and p.recipe.cluster is None for p in planned)
    assert {p.recipe.calib for p in planned} == {"photos"}


def test_recipe_strings_and_files():
    assert sweep.parse_recipe("quantize=uint8:*conv*,float16:* prune=0.5 steps=300") == {
        "quantize": "uint8:*conv*,float16:*", "prune": 0.5, "steps": 300}
    planned = sweep.plan([(None, sweep.parse_recipe("prune=0.5 quantize=uint8")),
                          (None, sweep.parse_recipe("quantize=uint8:*conv*")),
                          (None, sweep.parse_recipe("quantize=uint8:*kernel*")),
                          (None, sweep.parse_recipe("prune_channels=0.3 quantize=uint8"))], steps=40)
    assert [p.name for p in planned] == ["p50-uint8", "mixed", "mixed-2", "ch30-uint8"]
    assert planned[3].recipe.steps == 40
    assert planned[0].recipe.steps == 40 and planned[1].recipe.steps is None  # bounds only for fine-tunes
    # a build config is a recipes file: its [[variants]] with their names, gates ignored
    tables = sweep.read_recipes(ROOT / "configs" / "esrgan-slim-x4.toml")
    assert [(p.name, p.recipe.quantize) for p in sweep.plan(tables)] == [("float16", "float16"), ("uint8", "uint8")]


@pytest.mark.parametrize("tables, message", [
    ([(None, {"quantise": "uint8"})], "unknown key 'quantise'"),
    ([(None, {"quantize": "auto"})], "needs a budget"),
    ([(None, {"quantize": "uint8"}), (None, {"quantize": "uint8"})], "given twice"),
    ([("a/b", {"quantize": "uint8"})], "plain folder name"),
    ([("eval.json", {"quantize": "uint8"})], "plain folder name"),
    ([("x", {"quantize": "uint8"}), ("x", {"quantize": "float16"})], "'x' is given twice"),
    ([], "no recipes"),
])
def test_bad_plans(tables, message):
    with pytest.raises(BadInput, match=message):
        sweep.plan(tables)


def test_bad_sweeps_exit_2_and_write_nothing(tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "no-variants.toml").write_text('name = "x"\n')
    (tmp_path / "bad.toml").write_text("[[variants]\nquantize=")
    out = tmp_path / "out"
    cases = [
        (["--sweep", "--quantize", "uint8"], "not --quantize"),
        (["--recipe", "quantise=uint8"], "unknown key 'quantise'"),
        (["--recipe", "quantize"], "KEY=VALUE"),
        (["--recipe", "quantize=auto"], "needs a budget"),
        (["--recipe", "quantize=int4"], "unknown dtype 'int4'"),
        (["--recipe", "quantize=uint8:*nothing*"], "matches no weight"),
        (["--recipe", "prune=1.5"], "(0, 1)"),
        (["--recipe", "quantize=uint8", "--recipe", "quantize=uint8"], "given twice"),
        (["--recipes", tmp_path / "missing.toml"], "not readable"),
        (["--recipes", tmp_path / "no-variants.toml"], "no [[variants]]"),
        (["--recipes", tmp_path / "bad.toml"], "not valid TOML"),
        (["--sweep", "--calib", empty], "--calib"),
        (["--sweep", "--max-drop-db", "-1"], ">= 0"),
        (["--quantize", "uint8", "--limit", "1"], "need --sweep"),
    ]
    for args, message in cases:
        done = run_cli("optimize", tiny, "-o", out, *args)
        assert done.exit_code == 2 and message in done.output, (args, done.output)
        assert not out.exists(), args
    done = run_cli("optimize", empty, "-o", out, "--sweep")
    assert done.exit_code == 2 and "not an srjs model dir" in done.output and not out.exists()

    # an existing folder that is not a sweep is never written into
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    for target in (taken, taken / "notes.txt"):
        done = run_cli("optimize", tiny, "-o", target, "--recipe", "quantize=uint8")
        assert done.exit_code == 2 and "already exists; --force replaces it" in done.output, done.output
        done = run_cli("optimize", tiny, "-o", target, "--recipe", "quantize=uint8", "--force")
        assert done.exit_code == 2 and ("refusing" in done.output or "not a folder" in done.output), done.output
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    # nor may a variant land on its parent
    parent_out = tiny.parent
    with pytest.raises(BadInput, match="overwrite its parent"):
        sweep.preflight(tiny, parent_out, [sweep.Planned(tiny.name, sweep.plan([(None, {"quantize": "uint8"})])[0].recipe)])
