"""`srjs convert` + `srjs upscale` against PyTorch references (random weights, real formats)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import torch  # noqa: E402  (the test extra; make test installs it)

from tests.conftest import run_cli  # noqa: E402
from tests.torch_reference import RRDBNet, SRVGGNetCompact  # noqa: E402

SMALL_RRDB = dict(num_feat=16, num_block=2, num_grow_ch=8)


# The two ESRGAN-repo layouts, as templates over BasicSR's RRDBNet names.
OLD_ARCH = {"block": "model.1.sub.{n}.RDB{k}.conv{j}.0", "conv_first": "model.0",
            "conv_body": "model.1.sub.{nb}", "conv_up1": "model.3", "conv_up2": "model.6",
            "conv_hr": "model.8", "conv_last": "model.10"}
NEW_ARCH = {"block": "RRDB_trunk.{n}.RDB{k}.conv{j}", "conv_first": "conv_first",
            "conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
            "conv_hr": "HRconv", "conv_last": "conv_last"}


def to_layout(state: dict, layout: dict, num_block: int) -> dict:
    """BasicSR RRDBNet keys -> an ESRGAN repo layout (old: 'model.1.sub.N.RDBk.convj.0')."""
    out = {}
    for key, value in state.items():
        module, param = key.rsplit(".", 1)
        match = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", module)
        if match:
            n, k, j = match.groups()
            out[f"{layout['block'].format(n=n, k=k, j=j)}.{param}"] = value
        else:
            out[f"{layout[module].format(nb=num_block)}.{param}"] = value
    return out


def save(state: dict, path, fmt: str) -> None:
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(state, path)


def random_net(net):
    torch.manual_seed(0)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn_like(param) * 0.1)
    return net.eval()


CASES = {
    # id: (network factory, key layout, file format, wrapper)
    "rrdb-x4-basicsr-zip-params_ema": (lambda: RRDBNet(3, 3, scale=4, **SMALL_RRDB), "basicsr", "zip", "params_ema"),
    "rrdb-x4-oldarch-legacy": (lambda: RRDBNet(3, 3, scale=4, **SMALL_RRDB), "old", "legacy", None),
    "rrdb-x4-newarch-safetensors": (lambda: RRDBNet(3, 3, scale=4, **SMALL_RRDB), "new", "safetensors", None),
    "rrdb-x2-basicsr-legacy-params": (lambda: RRDBNet(3, 3, scale=2, **SMALL_RRDB), "basicsr", "legacy", "params"),
    "rrdb-x1-basicsr-safetensors": (lambda: RRDBNet(3, 3, scale=1, **SMALL_RRDB), "basicsr", "safetensors", None),
    "rrdb-x2-oldarch-zip": (lambda: RRDBNet(3, 3, scale=2, **SMALL_RRDB), "old", "zip", None),
    "srvgg-x4-zip-params": (lambda: SRVGGNetCompact(3, 3, num_feat=16, num_conv=4, upscale=4), "basicsr", "zip", "params"),
    "srvgg-x4-safetensors": (lambda: SRVGGNetCompact(3, 3, num_feat=16, num_conv=4, upscale=4), "basicsr", "safetensors", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_convert_then_upscale_matches_torch(case, tmp_path):
    factory, layout, fmt, wrapper = CASES[case]
    net = random_net(factory())
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    num_block = SMALL_RRDB["num_block"]
    if layout != "basicsr":
        state = to_layout(state, OLD_ARCH if layout == "old" else NEW_ARCH, num_block)
    if wrapper and fmt != "safetensors":
        state = {wrapper: state, "iter": 1000}
    checkpoint = tmp_path / f"net.{'safetensors' if fmt == 'safetensors' else 'pth'}"
    save(state, checkpoint, fmt)

    out = tmp_path / "model"
    result = run_cli("convert", checkpoint, "-o", out, "--no-tfjs")
    assert result.exit_code == 0, result.output

    # Non-square, divisible by 4 so the x1 net's pixel-unshuffle by 4 applies.
    image = np.random.default_rng(7).random((12, 20, 3), dtype=np.float32)
    np.save(tmp_path / "in.npy", image)
    result = run_cli("upscale", out, tmp_path / "in.npy", "-o", tmp_path / "out.npy")
    assert result.exit_code == 0, result.output
    ours = np.load(tmp_path / "out.npy")

    with torch.no_grad():
        reference = net(torch.from_numpy(image).permute(2, 0, 1)[None]).numpy()[0].transpose(1, 2, 0)
    assert ours.shape == reference.shape
    scale_of_output = float(np.abs(reference).max())
    assert np.abs(ours - reference).max() <= 1e-4 * scale_of_output
