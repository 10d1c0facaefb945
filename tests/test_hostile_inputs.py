"""Hostile inputs, round 2 (issue 15): each ends in exit 2 with one line and nothing written.

Model dirs (symlinked shards, wrong-typed manifests, parent loops), `package --report`,
build configs (unsafe names, non-finite numbers, empty lists), non-finite CLI budgets,
mathtext model names in reports, and JSON written strictly everywhere.
"""
from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest

from srjs import strict_json

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
    from srjs.optimize.recipe import Recipe

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


# --- reports: names are plain text; a failed report leaves nothing ------------------------------

MATHTEXT = "x$\\nocmd{$"


def _evaluation(name: str = MATHTEXT):
    """A hand-made Evaluation of one model named `name` (no model runs): rows, a timing, crops."""
    import numpy as np

    from srjs.evaluate.results import Evaluation, ImageInfo, ImageScore, Row, Timing

    scores = [ImageScore("img$1$", 30.0, 0.9, 29.0)]
    rows = [Row("bicubic x2", "bicubic", 2, 25.0, 0.8, 24.0, scores),
            Row(name, "model", 2, 30.0, 0.9, 29.0, scores, path="/m", gzip_bytes=1000, bytes=2000)]
    timing = Timing(name, "/m", "python", "tf", "keras", 32, 16, 8, 4, 5.0, 4.0, 1, 250.0, None, None, None)
    image = np.zeros((32, 32, 3), np.uint8)
    return Evaluation("photos$_{x}$", [ImageInfo("img$1$", [32, 32])], rows, [], [timing],
                      {"latency_size": 32}, machine={},
                      samples={2: {"image": "img$1$", "hr": image, "bicubic": image, "models": {name: image}}})


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_mathtext_in_names_is_drawn_as_plain_text(tmp_path, suffix):
    from srjs.evaluate.report import write_report

    path = write_report(_evaluation(), tmp_path / f"report{suffix}")
    figures = sorted(p.name for p in (tmp_path / "report_files").iterdir())
    assert figures == ["crops_x2.png", "latency.png", "size_psnr.png"]
    assert MATHTEXT in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["report_files", f"report{suffix}"])


def test_a_report_that_fails_half_way_leaves_nothing(tmp_path, monkeypatch):
    from srjs.evaluate import report

    def broken(evaluation, path):
        raise OSError(28, "No space left on device")  # after size_psnr.png was written

    monkeypatch.setattr(report, "latency_plot", broken)
    with pytest.raises(OSError):
        report.write_report(_evaluation("plain"), tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_report_keeps_the_earlier_one_whole(tmp_path, monkeypatch):
    from srjs.evaluate import report

    report.write_report(_evaluation("plain"), tmp_path / "report.md")
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    monkeypatch.setattr(report, "crops_png", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        report.write_report(_evaluation("plain"), tmp_path / "report.md")
    assert {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "report_files"]


# --- srjs serve: malformed requests and other hosts ------------------------------------------------

def _raw(port: int, request: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`srjs serve`'s server on a package folder with an upload-capable mount beside it."""
    from srjs.package import serve

    tmp_path = tmp_path_factory.mktemp("serve")
    pkg = tmp_path / "pkg"
    (pkg / "demo").mkdir(parents=True)
    (pkg / "package.json").write_text("{}")
    (pkg / "demo" / "index.html").write_text("<p>demo</p>")
    (tmp_path / "up").mkdir()
    url, server = serve(pkg)
    upload = server.mount(tmp_path / "up", writable=True)
    yield int(server.url.rsplit(":", 1)[1]), url[len(server.url):], upload[len(server.url):], tmp_path / "up"
    server.close()


def test_serve_answers_a_nul_in_the_path_with_404_and_no_traceback(served, capfd):
    port, page, upload, folder = served
    for path in (page + "%00", page.rsplit("/", 1)[0] + "/index.html%00.png", upload + "x%00.bin"):
        for method in ("GET", "PUT"):
            request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            assert _raw(port, request.encode()).split(b" ")[1] in (b"403", b"404")
    assert capfd.readouterr().err == "" and not [p for p in folder.iterdir() if p.name.startswith("x")]


def test_serve_answers_bad_content_length_with_400_and_no_traceback(served, capfd):
    port, page, upload, folder = served
    head = f"PUT {upload}out.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: abc\r\n\r\nxyz"
    assert _raw(port, head.encode()).startswith(b"HTTP/1.1 400")
    get = f"GET {page} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: -1\r\nConnection: close\r\n\r\n"
    assert _raw(port, get.encode()).startswith(b"HTTP/1.1 400")
    ok = f"GET {page} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    assert _raw(port, ok.encode()).endswith(b"<p>demo</p>")  # still serving
    assert not [p for p in folder.iterdir() if "out.bin" in p.name] and capfd.readouterr().err == ""


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:{port}", b"200"), ("localhost:{port}", b"200"), ("LocalHost:{port}", b"200"),
    ("attacker.example:{port}", b"403"), ("attacker.example", b"403"), ("127.0.0.1", b"403"),
    ("127.0.0.1:{port}.attacker.example", b"403"), (None, b"400"),
])
def test_serve_refuses_other_hosts(served, request, host, status):
    """DNS rebinding: a page on attacker.example whose name now resolves to 127.0.0.1 sends its own
    name as Host; only this server's own address is answered."""
    port, page, upload, folder = served
    header = "" if host is None else f"Host: {host.format(port=port)}\r\n"
    reply = _raw(port, f"GET {page} HTTP/1.1\r\n{header}Connection: close\r\n\r\n".encode())
    assert reply.split(b" ")[1] == status
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.callspec.id) + ".bin"
    put = f"PUT {upload}{name} HTTP/1.1\r\n{header}Content-Length: 2\r\nConnection: close\r\n\r\nhi"
    assert _raw(port, put.encode()).split(b" ")[1] == (b"201" if status == b"200" else status)
    assert (folder / name).exists() == (status == b"200")


# --- empty lists that would check nothing -------------------------------------------------------

@pytest.mark.parametrize("args, option", [
    (["verify", "MODEL", "--runtime", ","], "--runtime"),
    (["verify", "MODEL", "--backend", " "], "--backend"),
    (["bench", "MODEL", "--size", ","], "--size"),
    (["bench", "MODEL", "--tile", ""], "--tile"),
])
def test_empty_cli_lists_exit_2(tmp_path, capsys, monkeypatch, args, option):
    args = [str(tmp_path / a) if a == "MODEL" else a for a in args]
    _one_line_exit_2(srjs_main(capsys, monkeypatch, *args), option, "give at least one")


def test_verify_with_no_runtime_is_refused_by_the_library(tmp_path):
    from srjs.errors import BadInput
    from srjs.verify import verify_model_dir

    with pytest.raises(BadInput, match="at least one runtime"):
        verify_model_dir(tmp_path, runtimes=())


def test_a_manifest_srjs_could_not_read_back_is_never_written(tmp_path):
    """`srjs convert --name` reaches the manifest: a name with a NUL or a newline is refused."""
    from srjs import modeldir
    from srjs.errors import BadInput

    for name in ("a\x00b", "two\nlines", ""):
        manifest = modeldir.Manifest(name=name, arch="srvgg", arch_params={"scale": 2}, scale=2,
                                     value_range=[0, 1], source={})
        with pytest.raises(BadInput, match="'name' must be"):
            modeldir.write_manifest(tmp_path, manifest)
        assert list(tmp_path.iterdir()) == []


def test_verify_warm_runs_cannot_be_negative(tmp_path, capsys, monkeypatch):
    _one_line_exit_2(srjs_main(capsys, monkeypatch, "verify", tmp_path, "--warm", "-1"), "--warm")


def test_evaluate_writes_no_json_when_its_report_fails(tmp_path, monkeypatch):
    from srjs.evaluate import report, run

    monkeypatch.setattr(run, "evaluate", lambda *a, **k: _evaluation("plain"))
    monkeypatch.setattr(report, "size_psnr_plot", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        run.run_evaluate([tmp_path / "model"], json_path=tmp_path / "e.json", report_path=tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []
