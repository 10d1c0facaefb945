"""Every model of the convert test set exports in both formats and passes `srjs verify`
in Node (cpu, wasm) and headless Chromium (cpu, webgl)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # every test here runs TF.js (Node and Chromium)

import torch  # noqa: E402  (the test extra; make test installs it)

from tests.torch_reference import RRDBNet, SRVGGNetCompact  # noqa: E402

TORCH_MODELS = {
    "rrdbnet-x4": lambda: RRDBNet(3, 3, scale=4, num_feat=16, num_block=2, num_grow_ch=8),
    "rrdbnet-x2": lambda: RRDBNet(3, 3, scale=2, num_feat=16, num_block=2, num_grow_ch=8),
    "rrdbnet-x1": lambda: RRDBNet(3, 3, scale=1, num_feat=16, num_block=2, num_grow_ch=8),
    "srvgg-x4": lambda: SRVGGNetCompact(3, 3, num_feat=16, num_conv=4, upscale=4),
}
NPM_MODELS = {
    "esrgan-slim-x2": "npm:@upscalerjs/esrgan-slim@1.0.0/models/x2/model.json",
    "esrgan-slim-x3": "npm:@upscalerjs/esrgan-slim@1.0.0/models/x3/model.json",
    "esrgan-slim-x4": "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4/model.json",
    "esrgan-medium-x8": "npm:@upscalerjs/esrgan-medium@1.0.0/models/x8/model.json",
    "esrgan-thick-x2": "npm:@upscalerjs/esrgan-thick@1.0.0/models/x2/model.json",
    "isr-gans-x4-uint8": "npm:@upscalerjs/models@0.9.0/models/idealo/gans/model.json",
    "isr-psnr-small-h5": ("npm:@upscalerjs/models@0.9.0/models/idealo/psnr-small-quant-uint8/"
                          "image-super-resolution-psnr-small.h5"),
    "div2k-005-2x-uint8": "npm:@upscalerjs/models@0.9.0/models/div2k/005-2x/model.json",
}
# The big RRDNs and ISR's RDNs cost seconds per predict on TF.js's pure-JS cpu backend
# (30-45 s a model at 20x28): verify them on a smaller input (still non-square).
SMALL_INPUT = {"esrgan-thick-x2", "isr-gans-x4-uint8", "esrgan-medium-x8", "isr-psnr-small-h5",
               "div2k-005-2x-uint8"}


@pytest.fixture(scope="session")
def torch_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("torch-ckpt")
    paths = {}
    for name, factory in TORCH_MODELS.items():
        torch.manual_seed(len(paths))
        net = factory()
        with torch.no_grad():
            for param in net.parameters():
                param.copy_(torch.randn_like(param) * 0.1)
        paths[name] = root / f"{name}.pth"
        torch.save(net.state_dict(), paths[name])
    return paths


@pytest.mark.parametrize("name", sorted(TORCH_MODELS) + sorted(NPM_MODELS))
def test_exports_pass_verify_in_node_and_browser(name, converted, torch_checkpoints, tmp_path):
    from srjs.verify import verify_model_dir

    source = NPM_MODELS.get(name) or str(torch_checkpoints[name])
    model_dir = converted(source)
    shapes = ((8, 12),) if name in SMALL_INPUT else ((20, 28),)
    report = verify_model_dir(model_dir, runtimes=("node", "browser"), warm_runs=1, shapes=shapes)
    combos = {(r.format, r.runtime, r.backend) for r in report.rows}
    assert combos == {(f, "node", b) for f in ("layers", "graph") for b in ("cpu", "wasm")} | {
        (f, "browser", b) for f in ("layers", "graph") for b in ("cpu", "webgl")}
    for row in report.rows:
        assert row.ok, (row.format, row.runtime, row.backend, row.max_abs_diff, row.tol, row.error)
        assert row.warm_ms > 0 and row.load_ms >= 0
    # The layers export needs no hand edits: `srjs patch --check` finds nothing to change.
    assert run_cli("patch", model_dir / "tfjs_layers" / "model.json", "--check").exit_code == 0


def test_verify_cli_writes_json_and_fails_on_a_broken_export(converted, tmp_path):
    import shutil

    model_dir = converted(NPM_MODELS["esrgan-slim-x2"])
    result = run_cli("verify", model_dir, "--runtime", "node,upscalerjs", "--json", tmp_path / "ok.json",
                     "--warm", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ok.json").read_text())
    assert report["schema"] == "srjs.verify/1" and report["ok"] is True
    combos = [(r["format"], r["runtime"], r["backend"]) for r in report["rows"]]
    assert combos == [("layers", "node", "cpu"), ("layers", "node", "wasm"), ("graph", "node", "cpu"),
                      ("graph", "node", "wasm"), ("layers", "upscalerjs", "cpu")]
    # Inside UpscalerJS itself the export must match Python within 2 of 255 levels.
    assert report["rows"][-1]["tol"] == pytest.approx(2.0) and report["rows"][-1]["max_abs_diff"] <= 2.0

    # Flip the graph model's weights: TF.js now computes something else, verify must say so.
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    shard = next((broken / "tfjs_graph").glob("*.bin"))
    data = np.frombuffer(shard.read_bytes(), np.float32).copy()
    data[: data.size // 2] *= -1.0
    shard.write_bytes(data.tobytes())
    result = run_cli("verify", broken, "--backend", "cpu", "--warm", "1")
    assert result.exit_code == 1
    assert "graph/node/cpu" in result.output and "layers/node/cpu" not in result.output.split("verify failed")[-1]


def test_upscalerjs_check_fails_when_the_layers_export_computes_something_else(converted, tmp_path):
    """The weights stay (they are the reference's too); the topology UpscalerJS runs changes."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(converted(NPM_MODELS["esrgan-slim-x2"]), broken)
    model_json = broken / "tfjs_layers" / "model.json"
    data = json.loads(model_json.read_text())
    layers = data["modelTopology"]["model_config"]["config"]["layers"]
    last_conv = [layer for layer in layers if layer["class_name"] == "Conv2D"][-1]
    last_conv["config"]["activation"] = "tanh"
    model_json.write_text(json.dumps(data))
    result = run_cli("verify", broken, "--runtime", "upscalerjs")
    assert result.exit_code == 1
    assert "verify failed for layers/upscalerjs/cpu" in result.output
