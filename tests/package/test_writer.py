"""srjs package: files, package.json exports, definitions, determinism, npm pack, no leaks."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

import pytest

from srjs import modeldir
from srjs.errors import BadInput
from srjs.package import serve, write_package
from srjs.runtime import env
from tests.conftest import run_cli

SECRET = "/home/builder/secret-checkouts"  # a build-machine path that must never reach a package


def fake_model_dir(root: Path, name: str, scale: int = 2, results: dict | None = None) -> Path:
    """A model dir as convert writes it, minus Keras/SavedModel: the writer only copies the TF.js
    exports, so random shard bytes stand in for weights."""
    out = root / name
    for kind, fmt in (("tfjs_layers", "layers-model"), ("tfjs_graph", "graph-model")):
        (out / kind).mkdir(parents=True)
        shards = [f"group1-shard{i}of2.bin" for i in (1, 2)]
        for i, shard in enumerate(shards):
            (out / kind / shard).write_bytes(hashlib.sha256(f"{name}{kind}{i}".encode()).digest() * 64)
        (out / kind / "model.json").write_text(json.dumps({
            "format": fmt, "modelTopology": {"class_name": "Functional"},
            "weightsManifest": [{"paths": shards, "weights": [  # 2 x 2048 shard bytes
                {"name": "w", "shape": [1024], "dtype": "float32"}]}]}))
    manifest = modeldir.Manifest(name=name, arch="srvgg", arch_params={"num_feat": 8, "scale": scale},
                                 scale=scale, value_range=[0, 1], results=results or {},
                                 source={"path": f"{SECRET}/{name}.pth", "format": "pth", "sha256": "ab" * 32})
    modeldir.write_manifest(out, manifest)
    return out


@pytest.fixture
def models(tmp_path):
    return [fake_model_dir(tmp_path / "in", "tiny-x2", 2, {"seam_free_padding": 5, "seam_patch": 32}),
            fake_model_dir(tmp_path / "in", "tiny-x4", 4)]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_package_files_exports_and_definitions(models, tmp_path):
    pkg = write_package(models, tmp_path / "pkg", name="@me/tiny", version="1.2.3", exports=("layers", "graph"))
    files = tree(pkg)
    for entry in ("tiny-x2", "tiny-x2-graph", "tiny-x4", "tiny-x4-graph"):
        kind = "graph" if entry.endswith("graph") else "layers"
        src = models[0 if "x2" in entry else 1] / f"tfjs_{kind}"
        for name in ("model.json", "group1-shard1of2.bin", "group1-shard2of2.bin"):
            assert files[f"models/{entry}/{name}"] == (src / name).read_bytes()
        for rel in (f"dist/esm/{entry}.mjs", f"dist/cjs/{entry}.cjs", f"dist/umd/{entry}.umd.js",
                    f"dist/types/{entry}.d.ts"):
            assert rel in files
    meta = json.loads(files["package.json"])
    assert (meta["name"], meta["version"]) == ("@me/tiny", "1.2.3")
    ex = meta["exports"]
    assert ex["./2x"]["import"] == "./dist/esm/tiny-x2.mjs" and ex["./4x"]["require"] == "./dist/cjs/tiny-x4.cjs"
    assert ex["."] == ex["./2x"] and ex["./tiny-x4-graph"]["umd"] == "./dist/umd/tiny-x4-graph.umd.js"
    assert all(list(v)[0] == "types" for k, v in ex.items() if isinstance(v, dict))  # TS needs types first
    for cond in (c for v in ex.values() if isinstance(v, dict) for c in v.values()):
        assert cond[2:] in files, cond
    # The index lists every other file with its sha256.
    index = json.loads(files["srjs-package.json"])
    assert set(index["files"]) == set(files) - {"srjs-package.json"}
    assert all(index["files"][k]["sha256"] == hashlib.sha256(v).hexdigest()
               for k, v in files.items() if k != "srjs-package.json")
    # meta: evaluate's seam-free padding and tile -> UpscalerJS patchSize; absent stays null.
    by_entry = {e["entry"]: e["meta"] for e in index["entries"]}
    x2 = by_entry["tiny-x2"]
    assert (x2["padding"], x2["tile"], x2["patchSize"]) == (5, 32, 42)
    assert by_entry["tiny-x4"]["padding"] is None and by_entry["tiny-x4"]["patchSize"] is None
    readme = files["README.md"].decode()
    assert "| `@me/tiny/tiny-x2` | tiny-x2 (srvgg) | layers | x2 |" in readme
    assert "{ patchSize: 42, padding: 5 }" in readme and "tf.loadLayersModel(model.path)" in readme
    assert "tf.loadGraphModel(graph.path)" in readme
    # Unknown-license local sources: named by file name only, and said to be unknown.
    assert meta["license"] == "SEE LICENSE IN LICENSE"
    assert "tiny-x2.pth" in files["LICENSE"].decode() and "not known" in files["LICENSE"].decode()


def test_definition_modules_in_node(models, tmp_path):
    """ESM and CJS definitions load in Node, agree, and point at the shipped model.json."""
    pkg = write_package(models, tmp_path / "pkg", name="tiny", version="0.1.0")
    script = tmp_path / "check.mjs"
    script.write_text(f"""
import {{ createRequire }} from 'node:module';
import {{ fileURLToPath }} from 'node:url';
import fs from 'node:fs';
const esm = (await import({json.dumps((pkg / 'dist/esm/tiny-x2.mjs').as_uri())})).default;
const cjs = createRequire(import.meta.url)({json.dumps(str(pkg / 'dist/cjs/tiny-x2.cjs'))});
const tf = createRequire({json.dumps(str(env.js_dir() / 'package.json'))})('@tensorflow/tfjs');
esm.setup(tf);
const known = tf.serialization.SerializationMap.getMap().classNameMap;
const registered = ['PixelShuffle2x', 'MultiplyBeta'].map((n) => !!known[n]);
console.log(JSON.stringify({{ esm: {{ ...esm, setup: typeof esm.setup }}, cjs: {{ ...cjs, setup: typeof cjs.setup }},
  exists: fs.existsSync(fileURLToPath(esm.path)), registered }}));
""")
    js = env.require_js_deps("node")
    done = subprocess.run([env.node(), str(script)], cwd=js, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["esm"] == got["cjs"]
    assert got["exists"] and got["registered"] == [True, True]
    esm = got["esm"]
    assert (esm["scale"], esm["modelType"], esm["inputRange"], esm["setup"]) == (2, "layers", [0, 1], "function")
    assert esm["_internals"] == {"path": "models/tiny-x2/model.json", "name": "tiny", "version": "0.1.0"}
    assert esm["meta"]["patchSize"] == 42 and esm["meta"]["padding"] == 5


def test_deterministic_and_no_build_machine_paths(models, tmp_path):
    a = tree(write_package(models, tmp_path / "a" / "pkg", name="tiny", version="1.0.0", exports=("layers", "graph")))
    b = tree(write_package(models, tmp_path / "elsewhere" / "pkg", name="tiny", version="1.0.0",
                           exports=("layers", "graph")))
    assert a == b
    for rel, data in a.items():
        for leak in (SECRET, str(tmp_path), str(Path.home()), str(env.js_dir())):
            assert leak.encode() not in data, (rel, leak)


def test_npm_pack_succeeds(models, tmp_path):
    if not shutil.which("npm"):
        pytest.fail("npm is not on PATH (make setup installs it)")
    pkg = write_package(models, tmp_path / "pkg", name="@me/tiny", version="1.0.0")
    done = subprocess.run(["npm", "pack", "--pack-destination", str(tmp_path), "--json"], cwd=pkg,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with tarfile.open(tmp_path / "me-tiny-1.0.0.tgz") as tar:
        names = {n.removeprefix("package/") for n in tar.getnames()}
    assert names == set(tree(pkg))  # every file ships, nothing else


def test_overwrite_rules_and_bad_input(models, tmp_path):
    out = tmp_path / "pkg"
    write_package(models[:1], out, name="tiny", version="1.0.0")
    write_package(models[1:], out, name="tiny", version="1.0.1")  # an earlier package is replaced
    assert "tiny-x2" not in {p.name for p in (out / "models").iterdir()}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(BadInput, match="not an srjs package"):
        write_package(models, tmp_path / "other", name="tiny", version="1.0.0")
    with pytest.raises(BadInput, match="both make package entry"):
        write_package([models[0], models[0]], tmp_path / "dup", name="tiny", version="1.0.0")
    assert not (tmp_path / "dup").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("args, message", [
    (["--name", "Not Valid"], "not a valid npm package name"),
    (["--name", "ok", "--version", "1.0"], "not a semantic version"),
])
def test_cli_bad_name_or_version_exits_2(models, tmp_path, args, message):
    result = run_cli("package", models[0], "-o", tmp_path / "pkg", *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "pkg").exists()


def test_cli_not_a_model_dir_exits_2(tmp_path):
    result = run_cli("package", tmp_path, "-o", tmp_path / "pkg")
    assert result.exit_code == 2 and "not an srjs model dir" in result.output


def test_cli_package_and_serve_with_isolation_headers(models, tmp_path):
    result = run_cli("package", *models, "-o", tmp_path / "pkg", "--name", "@me/tiny", "--version", "2.0.0",
                     "--export", "graph")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "pkg" / "package.json").read_text())["exports"]["./2x"]["import"] == \
        "./dist/esm/tiny-x2.mjs"
    url, server = serve(tmp_path / "pkg")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/demo/index.html")
        with urllib.request.urlopen(url) as response:
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert b"demo.js" in response.read()
    finally:
        server.close()
    with pytest.raises(BadInput, match="not a package folder"):
        serve(tmp_path)
    busy_url, busy = serve(tmp_path / "pkg")
    try:
        port = int(busy_url.split(":")[2].split("/")[0])
        with pytest.raises(BadInput, match=f"cannot listen on 127.0.0.1:{port}"):
            serve(tmp_path / "pkg", port)
    finally:
        busy.close()


def test_cli_default_name_is_the_first_model_made_npm_safe(tmp_path):
    model = fake_model_dir(tmp_path, "Tiny_Model X2")
    result = run_cli("package", model, "-o", tmp_path / "pkg")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "pkg" / "package.json").read_text())
    assert (meta["name"], meta["version"]) == ("tiny_model-x2", "0.1.0")
    assert "./tiny_model-x2" in meta["exports"]


def test_readme_quality_from_an_evaluate_report(models, tmp_path):
    report = {"dataset": "builtin", "rows": [
        {"kind": "bicubic", "name": "bicubic x2", "psnr_y": 20.0},
        {"kind": "model", "name": "renamed", "path": str(models[0]), "psnr_y": 31.234, "ssim_y": 0.91234,
         "fidelity_psnr_y": 45.5, "warm_ms": 12.4},
        {"kind": "model", "name": "tiny-x4", "path": "/elsewhere/tiny-x4", "psnr_y": 27.5, "ssim_y": 0.8,
         "fidelity_psnr_y": None, "warm_ms": None}]}
    pkg = write_package(models, tmp_path / "pkg", name="tiny", version="1.0.0", report=report)
    readme = (pkg / "README.md").read_text()
    assert "| x2 | " in readme and "| 31.23 | 0.9123 | 45.50 | 12 | 5 | 42 |" in readme  # matched by path
    assert "| 27.50 | 0.8000 | — | — | — | — |" in readme  # matched by name; unmeasured stays —
    assert "of builtin" in readme


def test_serve_stops_on_ctrl_c(models, tmp_path):
    import os
    import signal
    import sys
    import time

    write_package(models[:1], tmp_path / "pkg", name="tiny", version="1.0.0")
    proc = subprocess.Popen([sys.executable, "-m", "srjs.cli", "serve", str(tmp_path / "pkg")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once listening
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url) as response:
            assert response.status == 200
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out
