"""Hostile inputs, round 2 (issue 15): each ends in exit 2 with one line and nothing written.

Model dirs (symlinked shards, wrong-typed manifests, parent loops), `package --report`,
build configs (unsafe names, non-finite numbers, empty lists), non-finite CLI budgets,
mathtext model names in reports, and JSON written strictly everywhere.
"""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from srjs import strict_json
from tests.conftest import run_cli

SRC = Path(__file__).resolve().parents[1] / "src" / "srjs"


class _Exit:
    def __init__(self, exit_code: int, output: str):
        self.exit_code, self.output = exit_code, output


def srjs_main(capsys, monkeypatch, *args) -> _Exit:
    """Run the console script's `main` in-process: the user's exit code and stderr, usage errors too."""
    from srjs.cli import main

    monkeypatch.setattr("sys.argv", ["srjs", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return _Exit(done.value.code, captured.err)


def _one_line_exit_2(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line, result.output
    for needle in needles:
        assert needle in line, line
    return line


# --- JSON is written strictly -------------------------------------------------------------

def test_strict_json_refuses_non_finite_numbers():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            strict_json.dumps({"max_drop_db": bad})
    assert json.loads(strict_json.dumps({"a": [1.5, None]}, indent=2)) == {"a": [1.5, None]}


def test_every_json_dump_in_srjs_goes_through_strict_json():
    """Python's json writes bare NaN/Infinity, which JSON.parse rejects; only strict_json may call it.
    Exempt: hand-offs between Pythons that no other reader sees (lambda_code's pipe to its child,
    gate's config text for Keras's model_from_json)."""
    exempt = {"strict_json.py", "convert/lambda_code.py", "convert/gate.py"}
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).as_posix() in exempt:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("dump", "dumps") and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "json"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("args, option", [
    (["optimize", "MODEL", "-o", "OUT", "--quantize", "auto", "--max-drop-db", "nan"], "--max-drop-db"),
    (["optimize", "MODEL", "-o", "OUT", "--quantize", "auto", "--min-fidelity-db", "inf"], "--min-fidelity-db"),
    (["optimize", "MODEL", "-o", "OUT", "--prune", "0.5", "--time-budget", "inf"], "--time-budget"),
    (["optimize", "MODEL", "-o", "OUT", "--sweep", "--max-drop-db", "nan"], "--max-drop-db"),
    (["convert", "MODEL", "-o", "OUT", "--shard-mb", "nan"], "--shard-mb"),
    (["verify", "MODEL", "--tol", "nan"], "--tol"),
])
def test_non_finite_cli_numbers_exit_2(tmp_path, capsys, monkeypatch, args, option):
    args = [str(tmp_path / a) if a in ("MODEL", "OUT") else a for a in args]
    _one_line_exit_2(srjs_main(capsys, monkeypatch, *args), option, "finite")
    assert not (tmp_path / "OUT").exists()


def test_non_finite_recipe_numbers_are_refused_by_the_library():
    """The same check holds for callers that skip the CLI (build configs, sweeps, the API)."""
    from srjs.errors import BadInput
    from srjs.optimize.run import Recipe

    for table in ({"quantize": "auto", "max_drop_db": math.nan}, {"quantize": "auto", "min_fidelity_db": -math.inf},
                  {"prune": 0.5, "time_budget_s": math.inf}):
        with pytest.raises(BadInput, match="finite"):
            Recipe.from_dict(table, "test")


# --- model dirs: files outside the folder, manifests of the wrong shape, parent loops ---------

def _fake_model(root: Path, folder: str = "tiny-x2", changes: dict | None = None) -> Path:
    """A model dir (tests/package's fake: TF.js exports only) with `changes` merged into its manifest."""
    from tests.package.test_writer import fake_model_dir

    model = fake_model_dir(root, folder)
    if changes:
        path = model / "manifest.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | changes))
    return model


@pytest.mark.parametrize("target", ["tfjs_layers/group1-shard2of2.bin", "tfjs_layers/model.json", "tfjs_layers"])
def test_package_refuses_symlinks_out_of_the_model_dir(tmp_path, capsys, monkeypatch, target):
    model = _fake_model(tmp_path / "in")
    secret = tmp_path / "secret"
    original = model / target
    if original.is_dir():
        original.rename(secret)
    else:
        secret.write_bytes(original.read_bytes())  # same size: only the link gives it away
        original.unlink()
    original.symlink_to(secret)
    result = srjs_main(capsys, monkeypatch, "package", model, "-o", tmp_path / "pkg")
    _one_line_exit_2(result, "symbolic link")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "secret"]  # no package, no temp folder


def test_package_checks_shard_sizes_against_the_weights_manifest(tmp_path, capsys, monkeypatch):
    model = _fake_model(tmp_path / "in")
    with open(model / "tfjs_layers" / "group1-shard2of2.bin", "ab") as shard:
        shard.write(b"appended")
    result = srjs_main(capsys, monkeypatch, "package", model, "-o", tmp_path / "pkg")
    _one_line_exit_2(result, "hold 4104 bytes but the manifest's weights need 4096")
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("change, named", [
    ({"name": 123}, "'name' must be"),
    ({"name": "a\u0000b"}, "'name' must be"),
    ({"results": [1]}, "'results' must be an object"),
    ({"arch_params": [1, 2]}, "'arch_params' must be an object"),
    ({"scale": 0}, "'scale' must be an integer in 1..16"),
    ({"scale": 2.0}, "'scale' must be an integer"),
    ({"scale": True}, "'scale' must be an integer"),
    ({"value_range": [0, 2]}, "'value_range' must be [0, 1] or [0, 255]"),
    ({"value_range": "0-1"}, "'value_range'"),
    ({"source": {"path": 1}}, "'source.path' must be"),
    ({"files": {"../../etc/passwd": {"bytes": 1, "gzip_bytes": 1, "sha256": "ab" * 32}}}, "relative path"),
    ({"files": {"a": {"bytes": -1, "gzip_bytes": 1, "sha256": "ab" * 32}}}, "'files.a.bytes'"),
    ({"files": []}, "'files' must be"),
    ({"results": {"seam_free_padding": "5"}}, "'results.seam_free_padding'"),
    ({"recipe": {"max_drop_db": {"a": 1}}}, "'recipe.max_drop_db'"),
    ({"schema": "srjs.manifest/99"}, "'schema' must be 'srjs.manifest/1'"),
    ({"executable": "rm -rf"}, "'executable' is not a known key"),
])
def test_manifest_of_the_wrong_shape_exits_2_naming_the_field(tmp_path, capsys, monkeypatch, change, named):
    model = _fake_model(tmp_path / "in", changes=change)
    result = srjs_main(capsys, monkeypatch, "package", model, "-o", tmp_path / "pkg")
    _one_line_exit_2(result, str(model / "manifest.json"), named)
    assert not (tmp_path / "pkg").exists()


def test_manifest_that_is_not_json_or_too_deep_exits_2(tmp_path, capsys, monkeypatch):
    from srjs import modeldir
    from srjs.errors import BadInput

    model = _fake_model(tmp_path / "in")
    for text in ("[" * 100_000, '{"name": NaN}', "\xff\xfe garbage", "[1]"):
        (model / "manifest.json").write_text(text, errors="surrogateescape")
        with pytest.raises(BadInput) as err:
            modeldir.read_manifest(model)
        assert "\n" not in str(err.value.message) and "manifest.json" in err.value.message


def test_a_loop_of_parents_exits_2(tmp_path, capsys, monkeypatch):
    """A variant without a source of its own is credited to its parent's: a loop must end."""
    a = _fake_model(tmp_path / "in", "a", {"source": {}, "parent": str(tmp_path / "in" / "b")})
    _fake_model(tmp_path / "in", "b", {"source": {}, "parent": str(a)})
    result = srjs_main(capsys, monkeypatch, "package", a, "-o", tmp_path / "pkg")
    _one_line_exit_2(result, "'parent' entries form a loop")
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("report, named", [
    ([1], "the document must be an object"),
    ({"rows": 5}, "'rows' must be an array"),
    ({"rows": [{"kind": 1}]}, "'rows[0].kind'"),
    ({"rows": [{"kind": "model", "psnr_y": "31"}]}, "'rows[0].psnr_y' must be a number"),
    ({"rows": [{"kind": "model", "name": ["x"]}]}, "'rows[0].name'"),
    ({"rows": [], "dataset": {"a": 1}}, "'dataset'"),
    ({"rows": [], "schema": "srjs.bench/1"}, "'schema'"),
])
def test_package_report_of_the_wrong_shape_exits_2(tmp_path, capsys, monkeypatch, report, named):
    model = _fake_model(tmp_path / "in")
    report_path = tmp_path / "evaluate.json"
    report_path.write_text(json.dumps(report))
    result = srjs_main(capsys, monkeypatch, "package", model, "-o", tmp_path / "pkg", "--report", report_path)
    _one_line_exit_2(result, named)
    assert not (tmp_path / "pkg").exists()
