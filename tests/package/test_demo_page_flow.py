"""Issue 18's must-show: the package's demo page used as a person uses it, in real Chromium.

Served by `srjs serve`'s server: pick a file, press Upscale, the result equals `srjs upscale`
within 1/255, the download link hands over that PNG, the backend was chosen for this device
(wasm, since WebGL here is software-rendered) with the reason shown, and nothing is logged as
an error. Opened as a file, the page says how to serve it instead of showing empty controls.
"""
from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from srjs.package import serve, write_package
from srjs.runtime import env
from tests.conftest import SLIM_X4, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow(converted, tmp_path_factory):
    """(driver's JSON reply, the picked image, srjs upscale's 8-bit output, download path)."""
    from skimage import data

    tmp = tmp_path_factory.mktemp("demo-flow")
    model_dir = converted(SLIM_X4)
    pkg = write_package([model_dir], tmp / "pkg", name="@test/slim", version="1.0.0")
    image = tmp / "photo.png"
    Image.fromarray(data.astronaut()[120:152, 200:240]).save(image)  # 32x40: one window, no seams
    done = run_cli("upscale", model_dir, image, "-o", tmp / "srjs-x4.png")
    assert done.exit_code == 0, done.output
    env.require_js_deps("browser")
    url, server = serve(pkg, 0)
    try:
        command = [env.node(), str(env.harness("demo-flow.mjs")), "--chromium", env.chromium(), "--url", url,
                   "--image", str(image), "--download", str(tmp / "download.png"),
                   "--file-url", (pkg / "demo" / "index.html").resolve().as_uri()]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=env.js_dir())
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reply["ok"], (reply.get("error"), reply["log"])
    return reply, pkg, np.asarray(Image.open(tmp / "srjs-x4.png").convert("RGB")), tmp / "download.png"


def test_pick_upscale_download_matches_srjs_upscale(flow):
    reply, _, ours, download = flow
    assert reply["viewerHiddenAtStart"] is True  # no empty checkerboard before an image
    assert reply["status"].startswith("Done: 160×128")
    assert reply["downloaded"] and reply["downloadName"] == "photo-x4.png"
    got = np.asarray(Image.open(download).convert("RGB"))
    assert got.shape == ours.shape == (128, 160, 3)
    assert np.abs(got.astype(int) - ours.astype(int)).max() <= 1  # 1/255


def test_backend_chosen_for_this_device_and_labels_read_as_words(flow):
    reply = flow[0]
    assert reply["backends"][0] == "auto"
    timings = dict(reply["timings"])
    # Chromium here renders WebGL with SwiftShader: auto must take wasm and say why.
    assert timings["Backend"].startswith("wasm") and "webgl skipped: software renderer" in timings["Backend"]
    if "webgpu" in reply["backends"]:  # headless Chromium may offer SwiftShader's WebGPU adapter too
        assert "webgpu skipped: software renderer" in timings["Backend"]
    assert {"Model load", "Upscale", "Per tile", "Tiles"} <= set(timings)
    assert not any("_ms" in label for label in timings)
    assert all(value.endswith((" ms", " s")) for key, value in timings.items() if key not in ("Backend", "Tiles"))


def test_model_list_shows_size_and_no_errors_are_logged(flow):
    reply = flow[0]
    assert len(reply["entries"]) == 1 and "kB gzip" in reply["entries"][0] and "x4" in reply["entries"][0]
    errors = [line for line in reply["log"] if line.startswith(("error:", "pageerror:", "requestfailed:"))]
    assert errors == []


def test_opened_as_a_file_the_page_says_how_to_serve_it(flow):
    reply, pkg = flow[0], flow[1]
    assert reply["file"]["noticeVisible"] and not reply["file"]["controlsVisible"]
    assert f"srjs serve {pkg.resolve()}" in reply["file"]["notice"]


def test_auto_backend_times_each_candidate_and_keeps_the_fastest(flow):
    """With software WebGL allowed (tests only), 'auto' times one warm tile on webgl and wasm
    and keeps the faster, naming both times."""
    from srjs.runtime.browser import BrowserSession, page_job

    pkg = flow[1]
    with BrowserSession() as session, page_job(session, "srjs-auto-") as (session, tmp, mount):
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp / "image.png")
        job = {"image_url": mount(tmp) + "image.png", "backend": "auto", "allow_software_webgl": True}
        reply = session.call(mount(pkg) + "demo/index.html", "srjsDemoUpscale", job, 300)
    assert reply["ok"], (reply.get("error"), reply.get("log"))
    timed = re.search(r"fastest on this device \(one 32 px tile: (\w+) ([\d.]+) (m?s), (\w+) ([\d.]+) (m?s)\)",
                      reply["result"]["why"])
    assert timed, reply["result"]["why"]
    first, second = (float(timed[i]) * (1 if timed[i + 1] == "ms" else 1000) for i in (2, 5))
    assert {timed[1], timed[4]} == {"webgl", "wasm"} and first <= second
    assert reply["result"]["backend"] == timed[1]  # the fastest one ran the upscale
