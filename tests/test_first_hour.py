"""Issue 18, the first hour: bad arguments fail at once, the tour `make demo` prints runs as
printed, every command's `--json` speaks one vocabulary, and the README's Python API example
runs.

The tour runs on a tiny random-weight SRVGG x2 laid out like the demo's build folder
(models/original, models/uint8, report/evaluate.json, sample.png), command by command through
the CLI exactly as `srjs.demo.next_steps` prints them ($A expanded as a shell would).
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from srjs import modeldir, tables
from srjs.demo import next_steps, write_sample
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]

# argv, a word the one-line error must contain. MODEL does not exist: the check must come
# before the model dir is read, or the error would be "not an srjs model dir".
BAD_ARGUMENTS = [
    (["optimize", "MODEL", "-o", "OUT", "--quantize", "int4"], "unknown dtype 'int4'"),
    (["optimize", "MODEL", "-o", "OUT", "--quantize", "uint8", "--prune", "3"], "--prune"),
    (["optimize", "MODEL", "-o", "EXISTING", "--quantize", "uint8"], "--force"),
    (["verify", "MODEL", "--runtime", "gpu"], "unknown runtime 'gpu'"),
    (["verify", "MODEL", "--backend", "metal"], "'metal'"),
    (["bench", "MODEL", "--runtime", "gpu"], "unknown runtime 'gpu'"),
    (["bench", "MODEL", "--tile", "-5"], "tiles >= 0"),
    (["upscale", "MODEL", "in.png", "-o", "out.xyz"], "cannot write '.xyz'"),
    (["upscale", "MODEL", "in.png", "-o", "out.png", "--tile", "-5"], "--tile"),
]

_PROBE = """
import io, json, sys, time
from srjs.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    sys.argv, sys.stderr = ["srjs", *argv], io.StringIO()
    start = time.perf_counter()
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code
    results.append({"code": code, "seconds": time.perf_counter() - start, "stderr": sys.stderr.getvalue()})
sys.stdout.write(json.dumps({"results": results, "tensorflow": "tensorflow" in sys.modules}))
"""


def test_bad_arguments_exit_2_in_under_a_second_before_tensorflow_loads(tmp_path):
    (tmp_path / "EXISTING").mkdir()
    (tmp_path / "EXISTING" / "manifest.json").write_text("{}")
    argvs = [argv for argv, _ in BAD_ARGUMENTS]
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    probe = json.loads(proc.stdout)
    assert probe["tensorflow"] is False  # nothing heavy was loaded for any of them
    for (argv, word), got in zip(BAD_ARGUMENTS, probe["results"]):
        assert got["code"] == 2, (argv, got)
        lines = got["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], (argv, lines)
        assert got["seconds"] < 1.0, (argv, got["seconds"])


def test_readme_tour_is_the_one_the_demo_prints():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## After `make demo`", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == [". .venv/bin/activate", *next_steps(Path("artifacts/esrgan-slim-x4"))]


# --- the tour on a tiny model, every command with --json --------------------------------

def _numeric_keys(record: dict) -> set[str]:
    return {k for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """{command: its --json document} after running the printed tour on a tiny build folder."""
    from tests.torch_reference import save_tiny_srvgg

    root = tmp_path_factory.mktemp("tour")
    build = root / "artifacts" / "tiny"
    save_tiny_srvgg(root / "tiny.pth")
    docs: dict[str, dict] = {}

    def run(command: str, *args) -> None:
        done = run_cli(*args, "--json", root / f"{command}.json")
        assert done.exit_code == 0, (args, done.output)
        docs[command] = json.loads((root / f"{command}.json").read_text())

    run("convert", "convert", root / "tiny.pth", "-o", build / "models" / "original")
    modeldir.record_results(build / "models" / "original", seam_free_padding=3, seam_patch=16)  # as --record does
    # models/uint8 only has to be a model dir here (the tour's own optimize is measured below)
    run("convert-2", "convert", root / "tiny.pth", "-o", build / "models" / "uint8", "--name", "tiny-2")
    run("evaluate-build", "evaluate", build / "models" / "original", build / "models" / "uint8", "--limit", "1",
        "--crop", "32")
    (build / "report").mkdir()
    (build / "report" / "evaluate.json").write_text((root / "evaluate-build.json").read_text())
    write_sample(build)

    lines = next_steps(build)
    assert lines[0] == f"A={build.as_posix()}" and lines[-1].startswith("srjs serve ")
    for line in lines[1:-1]:  # serve runs until Ctrl-C; its folder is checked below
        argv = shlex.split(line.replace("$A", build.as_posix()))
        assert argv[0] == "srjs"
        if "--json" in argv:  # the printed --json file is the one to read
            path = Path(argv[argv.index("--json") + 1])
            done = run_cli(*argv[1:])
            assert done.exit_code == 0, (line, done.output)
            docs[argv[1]] = json.loads(path.read_text())
        else:
            run(argv[1], *argv[1:])
    served = Path(shlex.split(lines[-1].replace("$A", build.as_posix()))[-1])
    assert (served / "package.json").is_file() and (served / "demo" / "index.html").is_file()
    return docs


@pytest.mark.slow
def test_printed_tour_runs_and_every_json_uses_the_tables_vocabulary(tour):
    records = {
        "convert": [tour["convert"]], "optimize": [tour["optimize"]],
        "upscale": [tour["upscale"]], "package": [tour["package"]], "verify": tour["verify"]["rows"],
        "evaluate": tour["evaluate"]["rows"], "bench": tour["bench"]["timings"],
    }
    for command, rows in records.items():
        assert rows, command
        for row in rows:
            unknown = _numeric_keys(row) - set(tables.FIELDS)
            assert not unknown, (command, unknown)

    # the same quantity under the same name, with the same value, whichever command measured it
    evaluated = {Path(r["path"]).name: r for r in tour["evaluate"]["rows"] if r["kind"] == "model"}
    assert tour["convert"]["gzip_bytes"] == evaluated["original"]["gzip_bytes"] > 0
    assert tour["optimize"]["gzip_bytes"] == evaluated["uint16"]["gzip_bytes"] > 0
    assert tour["optimize"]["drop_db"] == pytest.approx(
        tour["optimize"]["parent_psnr_y"] - tour["optimize"]["psnr_y"], abs=2e-3)
    assert (tour["upscale"]["width"], tour["upscale"]["height"], tour["upscale"]["tile"]) == (128, 128, 32)
    assert isinstance(tour["upscale"]["pad"], int) and tour["upscale"]["pad"] >= 0
    assert {t["tile"] for t in tour["bench"]["timings"]} == {0, 32}
    assert tour["verify"]["ok"] is True
    # the tour's variant inherited its parent's measured padding (the package and demo page read it)
    results = modeldir.read_manifest(Path(tour["optimize"]["model_dir"])).results
    assert (results["seam_free_padding"], results["seam_patch"], results["seam_free_padding_from"]) == (3, 16, "parent")
    assert len(tour["package"]["entries"]) == 2 and tour["package"]["bytes"] > 0


def test_build_summary_fields_are_in_the_vocabulary():
    from srjs.pipeline import BuildResult, VariantResult

    result = BuildResult("x", Path("out"), [VariantResult("original", "m", {}, psnr_y=30.0, drop_db=0.0,
                                                          gzip_bytes=10, warm_ms=1.0, verify_ok=True)],
                         {}, None, {}, bicubic_psnr_y=29.5)
    data = result.to_dict()
    for row in data["variants"] + [data["bicubic"]]:
        assert not _numeric_keys(row) - set(tables.FIELDS)
    text = result.text()
    assert re.search(r"^bicubic\s+29\.50\s+0\.500\b", text, re.M)  # the bar the model has to clear
    assert "drop dB: " in text and "fidelity dB: " in text and "inf" in text  # the one-line key


@pytest.mark.slow
def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    example = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    write_sample(tmp_path / "artifacts" / "esrgan-slim-x4")
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102  (our own README)
    small, scores, done = namespace["small"], namespace["scores"], namespace["done"]
    assert small.gzip_bytes < 300_000 and small.drop_db < 0.1
    assert [r.kind for r in scores.rows] == ["bicubic", "model", "model"]
    assert (done.width, done.height, done.tile) == (256, 256, 32)
    assert (tmp_path / "artifacts" / "api" / "sample-x4.png").is_file()


# --- errors that say what to do ---------------------------------------------------------

def test_patch_on_a_graph_model_says_graph_models_need_no_patch(tmp_path):
    model_json = tmp_path / "model.json"
    model_json.write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": []},
                                      "weightsManifest": []}))
    done = run_cli("patch", model_json, "--check")
    assert done.exit_code == 2 and "graph models need no patch" in done.output


@pytest.mark.parametrize("view, said", [
    ('{"error": {"code": "E404", "summary": "Not Found"}}', "npm has no package '@me/nope'"),
    ('["0.9.0", "1.0.0", "1.1.0"]', "npm has no version 2.0.0 of '@me/nope' (newest: 1.1.0, 1.0.0, 0.9.0)"),
])
def test_npm_pack_failure_names_the_missing_package_or_version(tmp_path, monkeypatch, view, said):
    from srjs.convert import npm
    from srjs.errors import BadInput

    def run(argv, **kwargs):  # `npm pack --silent` says nothing; `npm view` answers
        if argv[1] == "pack":
            return subprocess.CompletedProcess(argv, 1, "", "")
        return subprocess.CompletedProcess(argv, 1 if "E404" in view else 0, view, "")

    monkeypatch.setattr(npm.subprocess, "run", run)
    with pytest.raises(BadInput) as raised:
        npm._pack("@me/nope", "2.0.0", tmp_path)
    assert said in str(raised.value.message)


@pytest.mark.slow
def test_demo_config_evaluates_where_the_model_beats_bicubic(converted):
    """The demo's [evaluate] settings (configs/esrgan-slim-x4.toml) on the model it converts:
    the original must score above bicubic there, or the demo's report tells the wrong story."""
    from srjs.evaluate.run import evaluate
    from srjs.pipeline import load_config
    from tests.conftest import SLIM_X4

    config = load_config(ROOT / "configs" / "esrgan-slim-x4.toml")
    assert config.source.startswith("npm:@upscalerjs/esrgan-slim@1.0.0/models/x4")
    cfg = config.evaluate
    result = evaluate([converted(SLIM_X4)], dataset=cfg.dataset, limit=cfg.limit, crop=cfg.crop,
                      latency_size=16, latency_tiles=(0,), warm=0, seam=False, progress=False)
    bicubic, model = result.rows
    assert (bicubic.kind, model.kind, len(result.images)) == ("bicubic", "model", 7)
    assert model.psnr_y > bicubic.psnr_y + 0.1, (model.psnr_y, bicubic.psnr_y)  # measured: 28.54 vs 28.39


def test_a_build_folder_given_for_a_model_dir_names_the_model_dirs_inside(tmp_path):
    for variant in ("original", "uint8"):
        (tmp_path / "build" / "models" / variant).mkdir(parents=True)
        (tmp_path / "build" / "models" / variant / "manifest.json").write_text("{}")
    done = run_cli("evaluate", tmp_path / "build")
    assert done.exit_code == 2
    assert (f"the model dirs inside it: {tmp_path / 'build' / 'models' / 'original'}, "
            f"{tmp_path / 'build' / 'models' / 'uint8'}") in done.output
