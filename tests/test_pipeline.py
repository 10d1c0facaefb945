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
