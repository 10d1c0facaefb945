"""`srjs build`: config errors (exit 2 naming key and file), gates (exit 1, failed variants not
packaged), caching (a second build is a no-op, byte-identical), resuming an interrupted build.

One tiny random-weight SRVGG x2 checkpoint, written by the test; evaluation on one 32 px crop.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

CONFIG = """
name = "tiny"
source = "tiny.pth"

[package]
version = "1.2.3"

[evaluate]
limit = 1
crop = 32
latency_size = 32
warm = 1

[gates]
max_drop_db = 1.0

[[variants]]
name = "float16"
quantize = "float16"

[[variants]]
name = "uint8"
quantize = "uint8"
[variants.gates]
max_gzip_bytes = 100        # cannot pass: the model.json alone is bigger
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    from tests.torch_reference import save_tiny_srvgg

    root = tmp_path_factory.mktemp("pipeline")
    save_tiny_srvgg(root / "tiny.pth")
    (root / "tiny.toml").write_text(CONFIG)
    return root


def _write(project: Path, text: str) -> Path:
    path = project / "case.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("edit, named", [
    (("[gates]", "[gates]\nmax_drop = 1.0"), "gates.max_drop"),
    (('name = "tiny"', 'name = "tiny"\ncolour = "red"'), "colour"),
    (("limit = 1", 'limit = "one"'), "evaluate.limit"),
    (("warm = 1", "warm = 1.5"), "evaluate.warm"),
    (('quantize = "float16"', 'quantize = "float16"\nprune_amount = 0.5'), "prune_amount"),
    (("max_gzip_bytes = 100", "max_gzip_bytes = true"), "variants[1].gates.max_gzip_bytes"),
    (('version = "1.2.3"', "version = 1"), "package.version"),
    (("[evaluate]", "[evaluate"), "not valid TOML"),
    # names become folders, step names and npm names: NUL, separators, dots, spaces, capitals
    (('name = "tiny"', 'name = "ti\\u0000ny"'), "'name'"),
    (('name = "tiny"', 'name = ".."'), "'name'"),
    (('name = "tiny"', 'name = "tiny x"'), "'name'"),
    (('name = "tiny"', 'name = "Tiny"'), "'name'"),  # the default npm name: lowercase only
    (('version = "1.2.3"', 'version = "1.2"'), "'package.version'"),
    (('name = "float16"', 'name = "f\\u0000"'), "variants[0].name"),
    (('name = "float16"', 'name = "a/b"'), "variants[0].name"),
    # finite numbers, ranges, lists that cannot be empty
    (("max_drop_db = 1.0", "max_drop_db = nan"), "gates.max_drop_db"),
    (("max_drop_db = 1.0", "max_drop_db = inf"), "gates.max_drop_db"),
    (("max_gzip_bytes = 100", "max_gzip_bytes = -1"), "variants[1].gates.max_gzip_bytes"),
    (('quantize = "uint8"', 'quantize = "auto"\nmax_drop_db = nan'), "variants[1]"),
    (("[package]", "[convert]\nshard_mb = -inf\n\n[package]"), "convert.shard_mb"),
    (("crop = 32", "crop = 0"), "evaluate.crop"),
    (("limit = 1", "limit = 0"), "evaluate.limit"),
    (("warm = 1", "warm = 1\nlatency_tiles = [-8]"), "evaluate.latency_tiles"),
    (("[package]", "[verify]\nruntimes = []\n\n[package]"), "verify.runtimes"),
    (('version = "1.2.3"', 'version = "1.2.3"\nexports = []'), "package.exports"),
    (('version = "1.2.3"', 'version = "1.2.3"\nexports = ["layers", "layers"]'), "package.exports"),
    (('version = "1.2.3"', 'version = "1.2.3"\nexports = ["gltf"]'), "package.exports"),
])
def test_config_errors_exit_2_naming_key_and_file(project, tmp_path, edit, named):
    config = _write(project, CONFIG.replace(*edit))
    result = run_cli("build", config, "-o", tmp_path)
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and named in line and str(config) in line
    assert not (tmp_path / "tiny").exists()  # nothing built from a bad config


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _shipped(out: Path) -> dict[str, str]:
    """Digests of every TF.js model.json and shard the build made and packaged."""
    found = {}
    for variant in sorted((out / "models").iterdir()):
        for export in ("tfjs_layers", "tfjs_graph"):
            found |= {f"{variant.name}/{export}/{k}": v for k, v in _digests(variant / export).items()}
    if (out / "package" / "models").exists():
        found |= {f"package/{k}": v for k, v in _digests(out / "package" / "models").items()}
    return found


@pytest.fixture(scope="module")
def built(project, tmp_path_factory):
    out_root = tmp_path_factory.mktemp("artifacts")
    result = run_cli("build", project / "tiny.toml", "-o", out_root, "--json", out_root / "summary.json")
    return out_root / "tiny", result, out_root / "summary.json"


@pytest.mark.slow
def test_failing_gate_exits_1_and_is_not_packaged(built):
    out, result, summary_path = built
    assert result.exit_code == 1, result.output
    assert "uint8: max_gzip_bytes:" in result.output and "vs limit 100" in result.output
    summary = json.loads(summary_path.read_text())
    by_name = {v["name"]: v for v in summary["variants"]}
    assert [v["passed"] for v in by_name.values()] == [True, True, False]
    assert by_name["uint8"]["failed"][0].startswith("max_gzip_bytes: ")
    assert by_name["original"]["drop_db"] == 0.0 and by_name["original"]["verify_ok"] is True
    assert 0 < by_name["uint8"]["gzip_bytes"] < by_name["original"]["gzip_bytes"]
    package = json.loads((out / "package" / "package.json").read_text())
    assert (package["name"], package["version"]) == ("tiny", "1.2.3")
    entries = sorted(p.name for p in (out / "package" / "models").iterdir())
    assert entries == ["tiny", "tiny-float16"]  # uint8 failed its gate: not in the package
    assert not any("uint8" in key for key in package["exports"])
    for kind in ("html", "md", "json"):
        assert Path(summary["report"][kind]).is_file()
    report = json.loads((out / "report" / "evaluate.json").read_text())
    assert {r["name"] for r in report["rows"] if r["kind"] == "model"} == {"tiny", "tiny-float16", "tiny-uint8"}


@pytest.mark.slow
def test_second_build_is_a_noop_and_byte_identical(built, project, tmp_path, monkeypatch):
    out, _, _ = built
    before = _digests(out / "models") | {f"package/{k}": v for k, v in _digests(out / "package").items()}
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_cli("build", project / "tiny.toml", "-o", out.parent)
    assert result.exit_code == 1  # the same gate fails again
    ran = [line for line in result.output.splitlines() if ": running" in line]
    assert ran == [] and result.output.count("skipped") == 8  # convert, 2 variants, 3 verify, evaluate, package
    after = _digests(out / "models") | {f"package/{k}": v for k, v in _digests(out / "package").items()}
    assert after == before
    assert "| uint8 |" in summary.read_text() and "max_gzip_bytes" in summary.read_text()


@pytest.mark.slow
def test_interrupted_build_resumes_with_the_same_bytes(built, project, tmp_path, monkeypatch):
    from srjs.optimize import run as optimize_run

    out = tmp_path / "tiny"
    real = optimize_run._encode_exports
    calls = []

    def interrupted(root, encodings):
        calls.append(root)
        if len(calls) == 2:  # the second variant, half-written
            raise KeyboardInterrupt
        return real(root, encodings)

    monkeypatch.setattr(optimize_run, "_encode_exports", interrupted)
    from srjs.pipeline import build

    with pytest.raises(KeyboardInterrupt):  # in-process: CliRunner would turn it into an exit code
        build(project / "tiny.toml", tmp_path)
    assert (out / "models" / "float16").is_dir() and not (out / "models" / "uint8").exists()
    assert not [p for p in (out / "models").iterdir() if p.name.startswith(".")]  # no temp left

    monkeypatch.setattr(optimize_run, "_encode_exports", real)
    result = run_cli("build", project / "tiny.toml", "-o", tmp_path)
    assert result.exit_code == 1, result.output  # finished: only the uint8 gate fails
    assert "convert: up to date" in result.output and "variant/float16: up to date" in result.output
    assert "variant/uint8: running" in result.output
    assert _shipped(out) == _shipped(built[0])


def test_missing_source_exits_2_and_writes_nothing(project, tmp_path):
    config = _write(project, CONFIG.replace('source = "tiny.pth"', 'source = "weights/none.pth"'))
    result = run_cli("build", config, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "weights/none.pth' does not exist" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("config", sorted(p.name for p in (Path(__file__).parents[1] / "configs").glob("*.toml")))
def test_every_shipped_config_is_valid(config):
    """The configs in configs/ (CI's build matrix) pass the checks a build starts with."""
    from srjs.pipeline import load_config

    loaded = load_config(Path(__file__).parents[1] / "configs" / config)
    assert loaded.name == config.removesuffix(".toml") and loaded.variants


# --- cache keys: every input that changes a step's output reruns it -------------------------

KEYS_CONFIG = """
name = "keys"
source = "weights.pth"

[evaluate]
dataset = "{dataset}"
limit = 1

[[variants]]
name = "float16"
quantize = "float16"
calib = "{calib}"
"""
ALL_STEPS = {"convert", "variant/float16", "verify/original", "verify/float16", "evaluate", "package"}


@pytest.fixture
def stub_steps(monkeypatch):
    """build() with each step's work replaced by a stub that writes its output and logs that it
    ran: under test are the cache keys, not the steps (they have their own tests). No TensorFlow."""
    import importlib
    import sys
    import types

    from srjs import atomic, pipeline
    from srjs.optimize.recipe import Recipe

    ran: list[str] = []

    def made(step: str, folder: Path) -> None:
        ran.append(step)
        folder.mkdir(parents=True, exist_ok=True)

    def evaluate(model_dirs, report_dir, cfg, progress):
        made("evaluate", report_dir)
        rows = [{"kind": "model", "name": d.name, "path": str(d), "psnr_y": 30.0} for d in model_dirs]
        (report_dir / "evaluate.json").write_text(json.dumps({"rows": rows}))

    fakes = {
        "srjs.convert.run": {"convert_checkpoint": lambda source, out, **_: made("convert", Path(out))},
        "srjs.optimize.run": {"Recipe": Recipe, "make_variant":
                              lambda parent, out, recipe, **_: made(f"variant/{Path(out).name}", Path(out))},
        "srjs.verify": {"verify_model_dir": lambda model_dir, **_: None, "write_json": lambda report, path: (
            ran.append(f"verify/{Path(path).stem}"), atomic.write_text(path, '{"ok": true}'))},
    }
    for name, attrs in fakes.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))
    monkeypatch.setattr(pipeline, "_evaluate", evaluate)
    monkeypatch.setattr(importlib.import_module("srjs.package"), "write_package", lambda dirs, out, **_: (
        made("package", Path(out)), (Path(out) / "package.json").write_text("{}")))
    return ran


@pytest.fixture
def keyed_project(tmp_path) -> Path:
    (tmp_path / "weights.pth").write_bytes(b"weights v1")
    for folder in ("photos", "calib"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            (tmp_path / folder / f"{i}.png").write_bytes(f"{folder} {i}".encode())
    (tmp_path / "keys.toml").write_text(KEYS_CONFIG.format(dataset=tmp_path / "photos", calib=tmp_path / "calib"))
    return tmp_path


def _edit_config(project: Path, old: str, new: str) -> None:
    path = project / "keys.toml"
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize("change, reran", [
    (lambda p: None, set()),
    (lambda p: (p / "photos" / "1.png").write_bytes(b"another photo"), {"evaluate", "package"}),
    (lambda p: (p / "photos" / "2.png").write_bytes(b"one more"), {"evaluate", "package"}),
    (lambda p: (p / "photos" / "1.png").rename(p / "photos" / "9.png"), {"evaluate", "package"}),
    (lambda p: (p / "calib" / "0.png").write_bytes(b"other calibration"),
     {"variant/float16", "verify/float16", "evaluate", "package"}),
    (lambda p: (p / "weights.pth").write_bytes(b"weights v2"), ALL_STEPS),
    (lambda p: _edit_config(p, 'name = "float16"', 'name = "half"'),
     {"variant/half", "verify/half", "evaluate", "package"}),
    (lambda p: _edit_config(p, "limit = 1", "limit = 2"), {"evaluate", "package"}),
    (lambda p: _edit_config(p, "limit = 1", 'limit = 1\n[verify]\nruntimes = ["node", "browser"]'),
     {"verify/original", "verify/float16"}),
    (lambda p: _edit_config(p, "limit = 1", 'limit = 1\n[package]\nversion = "2.0.0"'), {"package"}),
    (lambda p: _edit_config(p, 'quantize = "float16"', 'quantize = "uint8"'),
     {"variant/float16", "verify/float16", "evaluate", "package"}),
])
def test_a_step_reruns_exactly_when_one_of_its_inputs_changed(keyed_project, stub_steps, tmp_path, change, reran):
    from srjs.pipeline import build

    out = tmp_path / "artifacts"
    first = build(keyed_project / "keys.toml", out, progress=False)
    assert set(stub_steps) == ALL_STEPS and first.ok
    stub_steps.clear()
    change(keyed_project)
    second = build(keyed_project / "keys.toml", out, progress=False)
    assert set(stub_steps) == reran and len(stub_steps) == len(reran)
    assert second.ok and {s for s, how in second.steps.items() if how == "ran"} == reran


def test_a_new_srjs_version_reruns_every_step(keyed_project, stub_steps, tmp_path, monkeypatch):
    import srjs
    from srjs.pipeline import build

    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    stub_steps.clear()
    monkeypatch.setattr(srjs, "__version__", srjs.__version__ + ".post1")
    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    assert set(stub_steps) == ALL_STEPS


@pytest.mark.parametrize("files, source, changed", [
    ({"m.param": b"7767517", "m.bin": b"weights"}, "m.param", "m.bin"),  # ncnn: weights beside the .param
    ({"tfjs/model.json": b"{}", "tfjs/group1-shard1of1.bin": b"w"}, "tfjs/model.json", "tfjs/group1-shard1of1.bin"),
])
def test_convert_reruns_when_a_file_beside_the_source_changes(keyed_project, stub_steps, tmp_path, files, source,
                                                              changed):
    """Sources whose reader opens more than the named file are keyed by those files too."""
    from srjs.pipeline import build

    for name, data in files.items():
        (keyed_project / name).parent.mkdir(parents=True, exist_ok=True)
        (keyed_project / name).write_bytes(data)
    _edit_config(keyed_project, 'source = "weights.pth"', f'source = "{source}"')
    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    stub_steps.clear()
    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    assert stub_steps == []
    (keyed_project / changed).write_bytes(b"other weights")
    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    assert set(stub_steps) == ALL_STEPS


def test_new_tfjs_versions_rerun_verify_and_package(keyed_project, stub_steps, tmp_path, monkeypatch):
    """verify runs TF.js and the package vendors it: js/package-lock.json and the harness are inputs."""
    import shutil

    from srjs.pipeline import build
    from srjs.runtime import env

    js = tmp_path / "js"
    (js / "harness").mkdir(parents=True)
    shutil.copy(env.js_dir() / "package-lock.json", js / "package-lock.json")
    (js / "harness" / "run-node.mjs").write_text("// harness")
    monkeypatch.setenv("SRJS_JS_DIR", str(js))
    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    for change in (lambda: (js / "package-lock.json").write_text("{}"),
                   lambda: (js / "harness" / "run-node.mjs").write_text("// harness v2")):
        stub_steps.clear()
        change()
        build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
        assert set(stub_steps) == {"verify/original", "verify/float16", "package"}


def test_a_new_scikit_image_reruns_what_used_the_builtin_photos(keyed_project, stub_steps, tmp_path, monkeypatch):
    import importlib.metadata

    from srjs.pipeline import build

    _edit_config(keyed_project, f'dataset = "{keyed_project / "photos"}"', 'dataset = "builtin"')
    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    stub_steps.clear()
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "99.0" if name == "scikit-image" else real(name))
    build(keyed_project / "keys.toml", tmp_path / "artifacts", progress=False)
    assert set(stub_steps) == {"evaluate", "package"}  # calib is a folder here: the variant stays
