"""`srjs package --export onnx`: the package's ONNX entry upscales in headless Chromium through
its own runner (dist/ort/srjs-ort.mjs, via the demo page), tiled, on onnxruntime-web's WebGPU
(SwiftShader) and wasm, within 1/255 of `srjs upscale` with the same tiles."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from srjs.convert import onnx_dir
from srjs.errors import BadInput
from srjs.package import write_package
from tests.conftest import run_cli
from tests.convert.test_onnx_export import CASES, _model_dir, _random_model

TILE, PAD = 12, 8


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(package dir, model dir, 32x40 photo crop, srjs upscale's tiled output in 8-bit levels)."""
    from skimage import data

    tmp = tmp_path_factory.mktemp("pkg-onnx")
    arch, params = CASES["srvgg-x4-prelu"]
    model = _random_model(arch, params, seed=21)
    model_dir = _model_dir(tmp, model, arch, params)
    onnx_dir.add_onnx(model_dir, check_images_=onnx_dir.check_images(1.0, side=16, names=["astronaut"]))
    pkg = write_package([model_dir], tmp / "pkg", name="@test/tiny", version="1.0.0", exports=("layers", "onnx"))
    image = data.astronaut()[120:152, 200:240]
    np.save(tmp / "in.npy", image.astype(np.float32) / 255.0)
    done = run_cli("upscale", model_dir, tmp / "in.npy", "-o", tmp / "out.npy", "--tile", TILE, "--pad", PAD)
    assert done.exit_code == 0, done.output
    return pkg, model_dir, image, np.clip(np.load(tmp / "out.npy"), 0, 1) * 255


def test_package_carries_the_onnx_entry_and_its_runner(built):
    pkg, model_dir, _, _ = built
    entry = "tiny-srvgg-onnx"
    meta = json.loads((pkg / "package.json").read_text())
    assert meta["exports"][f"./{entry}"] == {"import": f"./dist/esm/{entry}.mjs"}
    assert meta["exports"]["./ort"] == {"import": "./dist/ort/srjs-ort.mjs"}
    assert meta["srjs"]["entries"][entry] == {"kind": "onnx", "scale": 4}
    assert meta["peerDependenciesMeta"] == {"onnxruntime-web": {"optional": True}}
    for name in ("model.onnx", "model.fp16.onnx"):
        assert (pkg / "models" / entry / name).read_bytes() == (model_dir / "onnx" / name).read_bytes()
    assert (pkg / "demo" / "vendor" / "ort-wasm-simd-threaded.asyncify.wasm").stat().st_size > 1e6
    definition = (pkg / "dist" / "esm" / f"{entry}.mjs").read_text()
    assert '"modelType": "onnx"' in definition and '"float16Activations": "float16"' in definition
    index = json.loads((pkg / "srjs-package.json").read_text())
    assert f"models/{entry}/model.onnx" in index["files"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_onnx_entry_upscales_tiled_like_srjs_upscale(built, backend):
    from srjs.runtime.browser import page_job

    pkg, _, image, ours = built
    with page_job(None, "srjs-demo-onnx-") as (session, tmp, mount):
        Image.fromarray(image).save(tmp / "image.png")
        job = {"image_url": mount(tmp) + "image.png", "backend": backend, "entry": "tiny-srvgg-onnx",
               "tile": TILE, "pad": PAD}
        reply = session.call(mount(pkg) + "demo/index.html", "srjsDemoUpscale", job, 300)
    assert reply["ok"], (reply.get("error"), reply.get("log"))
    result = reply["result"]
    assert result["runtime"] == f"onnxruntime-web {backend}" and result["modelType"] == "onnx"
    assert result["tiles"] == 4  # 32x40 in 28x28 windows: 2x2
    got = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["png"].split(",", 1)[1]))).convert("RGB"),
                     dtype=np.float32)
    assert got.shape == ours.shape == (128, 160, 3)
    assert np.abs(got - ours).max() <= 1.0  # 1/255: the canvas's 8-bit rounding of a float result


@pytest.mark.parametrize("forge, message", [
    (lambda info: None, "has no ONNX export; run `srjs onnx"),
    (lambda info: info | {"files": {**info["files"], "float32": "/etc/passwd"}}, "results.onnx is malformed"),
])
def test_a_model_dir_without_a_sound_onnx_export_is_refused(built, tmp_path, forge, message):
    import shutil

    from srjs import modeldir

    _, model_dir, _, _ = built
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    manifest = modeldir.read_manifest(bare)
    manifest.results["onnx"] = forge(manifest.results["onnx"])
    if manifest.results["onnx"] is None:
        del manifest.results["onnx"]
    modeldir.write_manifest(bare, manifest)
    with pytest.raises(BadInput, match=message):
        write_package([bare], tmp_path / "pkg", name="@test/bare", version="1.0.0", exports=("onnx",))
    assert not (tmp_path / "pkg").exists()


def test_cli_package_export_list(built, tmp_path):
    _, model_dir, _, _ = built
    done = run_cli("package", model_dir, "-o", tmp_path / "pkg", "--name", "@test/cli", "--export", "graph,onnx,onnx")
    assert done.exit_code == 2 and "has no model.json" in done.output  # graph asked, none exported
    done = run_cli("package", model_dir, "-o", tmp_path / "pkg", "--name", "@test/cli", "--export", "both,gltf")
    assert done.exit_code == 2 and "--export takes layers, graph, both, onnx" in done.output
    done = run_cli("package", model_dir, "-o", tmp_path / "pkg", "--name", "@test/cli", "--export", "onnx")
    assert done.exit_code == 0, done.output
    entries = json.loads((tmp_path / "pkg" / "package.json").read_text())["srjs"]["entries"]
    assert entries == {"tiny-srvgg": {"kind": "layers", "scale": 4}, "tiny-srvgg-onnx": {"kind": "onnx", "scale": 4}}


def test_build_config_ships_onnx_on_request(tmp_path):
    from srjs.pipeline import load_config

    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny"\nsource = "tiny.pth"\n\n[package]\nexports = ["layers", "onnx"]\n')
    assert load_config(path).package.exports == ["layers", "onnx"]


def test_package_readme_says_how_to_run_the_onnx_entry(built):
    readme = (built[0] / "README.md").read_text()
    assert "| `@test/tiny/tiny-srvgg-onnx` | x4 | 0-1 | float16 |" in readme
    assert "import definition from '@test/tiny/tiny-srvgg-onnx';" in readme
