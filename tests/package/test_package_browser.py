"""The must-show: a built package, served on 127.0.0.1, upscales in headless Chromium with
UpscalerJS 1.0.0 through the package's own definition modules (ESM import and UMD <script>),
and with the package's demo page; both match `srjs upscale` within 2/255."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from srjs import modeldir
from srjs.package import write_package
from srjs.package.definitions import Definition, umd_global
from tests.conftest import SLIM_X4, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(converted, tmp_path_factory):
    """(package dir, model dir, 32x40 photo crop, srjs upscale's output clipped to [0, 255])."""
    from skimage import data

    model_dir = converted(SLIM_X4)
    tmp = tmp_path_factory.mktemp("pkg")
    pkg = write_package([model_dir], tmp / "pkg", name="@test/slim", version="1.0.0", exports=("layers", "graph"))
    image = data.astronaut()[120:152, 200:240]
    np.save(tmp / "in.npy", image.astype(np.float32))  # slim takes [0, 255]
    result = run_cli("upscale", model_dir, tmp / "in.npy", "-o", tmp / "out.npy")
    assert result.exit_code == 0, result.output
    return pkg, model_dir, image, np.clip(np.load(tmp / "out.npy"), 0, 255)


@pytest.fixture(scope="module")
def session():
    from srjs.runtime.browser import BrowserSession

    with BrowserSession() as s:
        yield s


def test_upscalerjs_through_the_package_definitions(built, session):
    from srjs.runtime.browser import page_job

    pkg, model_dir, image, ours = built
    manifest = modeldir.read_manifest(model_dir)
    entry = json.loads((pkg / "package.json").read_text())["exports"]["./4x"]
    definition = Definition(entry="esrgan-slim-x4", kind="layers", scale=4, value_range=(0, 255), meta={},
                            package="@test/slim", version="1.0.0")
    with page_job(session, "srjs-pkg-") as (session, tmp, mount):
        Image.fromarray(image).save(tmp / "image.png")
        files = mount(tmp, writable=True)
        base = mount(pkg)
        for how in ({"definition_url": base + entry["import"][2:]},
                    {"definition_script": base + entry["umd"][2:], "definition_global": umd_global(definition)}):
            # patchSize 24, padding 8: UpscalerJS tiles the 32x40 image into 2x3 windows.
            job = {**how, "image_url": files + "image.png", "patch_size": 24, "padding": 8, "backend": "cpu",
                   "out_url": files + "out.npy", "scale": manifest.scale}
            reply = session.call("upscaler.html", "srjsUpscale", job, 300)
            assert reply["ok"], (how, reply.get("error"), reply.get("log"))
            got = np.load(tmp / "out.npy")
            assert got.shape == ours.shape == (128, 160, 3)
            assert np.abs(got - ours).max() <= 2.0, how  # 2/255 of the range, in 8-bit levels


@pytest.mark.parametrize("backend, entry", [("cpu", "esrgan-slim-x4"), ("wasm", "esrgan-slim-x4"),
                                            ("webgl", "esrgan-slim-x4"), ("wasm", "esrgan-slim-x4-graph")])
def test_demo_page_upscales_like_srjs_upscale(built, session, backend, entry):
    from srjs.runtime.browser import page_job

    pkg, _, image, ours = built
    with page_job(session, "srjs-demo-") as (session, tmp, mount):
        Image.fromarray(image).save(tmp / "image.png")
        job = {"image_url": mount(tmp) + "image.png", "backend": backend, "entry": entry, "tile": 12, "pad": 8}
        reply = session.call(mount(pkg) + "demo/index.html", "srjsDemoUpscale", job, 300)
    assert reply["ok"], (reply.get("error"), reply.get("log"))
    result = reply["result"]
    assert (result["backend"], result["entry"]) == (backend, entry)
    assert result["modelType"] == ("graph" if entry.endswith("graph") else "layers")
    assert result["tiles"] == 4  # 32x40, tile 12 + 2 * pad 8: 2x2 windows of 28x28
    png = base64.b64decode(result["png"].split(",", 1)[1])
    got = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
    assert got.shape == ours.shape
    assert np.abs(got - ours).max() <= 2.0  # uint8 canvas output vs float: rounding included


def test_npm_source_license_and_attribution(built):
    from srjs.convert import npm

    pkg = built[0]
    upstream = npm.package_dir("@upscalerjs/esrgan-slim", "1.0.0")
    assert (pkg / "LICENSE").read_bytes() == (upstream / "LICENSE").read_bytes()
    assert json.loads((pkg / "package.json").read_text())["license"] == "MIT"
    readme = (pkg / "README.md").read_text()
    assert "`npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json` by Kevin Scott, license MIT" in readme
