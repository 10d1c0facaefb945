"""`srjs upscale` on image files, and tiled == whole at the measured seam-free padding for
every family (RRDBNet, SRVGG, RDN)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srjs import modeldir
from srjs.evaluate.tiling import seam_free_padding, upscale_tiled
from srjs.runtime.python import keras_runner
from tests.conftest import SLIM_X2, run_cli

import torch  # noqa: E402  (the test extra; make test installs it)

from tests.torch_reference import RRDBNet, SRVGGNetCompact  # noqa: E402


@pytest.fixture(scope="module")
def family_dirs(converted, tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    dirs = {"rdn": converted(SLIM_X2, export_tfjs=False)}
    for name, net in {"rrdbnet": RRDBNet(3, 3, scale=4, num_feat=16, num_block=1, num_grow_ch=8),
                      "srvgg": SRVGGNetCompact(3, 3, num_feat=16, num_conv=4, upscale=4)}.items():
        torch.manual_seed(0)
        with torch.no_grad():
            for param in net.parameters():
                param.copy_(torch.randn_like(param) * 0.1)
        torch.save(net.state_dict(), root / f"{name}.pth")
        dirs[name] = converted(str(root / f"{name}.pth"), export_tfjs=False)
    return dirs


@pytest.mark.parametrize("family", ["rrdbnet", "srvgg", "rdn"])
def test_tiled_equals_whole_at_seam_free_padding(family, family_dirs):
    from skimage import data

    model_dir = family_dirs[family]
    manifest = modeldir.read_manifest(model_dir)
    run = keras_runner(modeldir.load_keras(model_dir))
    image = data.coffee()[100:160, 200:272].astype(np.float32) * (manifest.value_max / 255.0)
    pad = seam_free_padding(run, image, manifest.scale, 24, value_max=manifest.value_max)
    whole = run(image[None])[0]
    tiled = upscale_tiled(run, image, manifest.scale, 24, pad)
    assert np.abs(tiled - whole).max() <= manifest.value_max / 255.0
    if pad > 0:  # one less is not enough: the padding reported is the smallest that works
        worse = upscale_tiled(run, image, manifest.scale, 24, pad - 1)
        assert np.abs(worse - whole).max() > manifest.value_max / 255.0


def test_upscale_png_whole_and_tiled(family_dirs, tmp_path):
    from skimage import data

    Image.fromarray(data.chelsea()[:40, :52]).save(tmp_path / "in.png")
    model_dir = family_dirs["rdn"]
    result = run_cli("upscale", model_dir, tmp_path / "in.png", "-o", tmp_path / "whole.png")
    assert result.exit_code == 0, result.output
    result = run_cli("upscale", model_dir, tmp_path / "in.png", "-o", tmp_path / "tiled.png",
                     "--tile", "16", "--pad", "12")
    assert result.exit_code == 0, result.output
    whole = np.asarray(Image.open(tmp_path / "whole.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "tiled.png")).astype(int)
    assert whole.shape == (80, 104, 3)
    assert np.abs(whole - tiled).max() <= 1


def test_upscale_rejects_unknown_image_type(family_dirs, tmp_path):
    (tmp_path / "in.gif2").write_bytes(b"GIF89a")
    result = run_cli("upscale", family_dirs["rdn"], tmp_path / "in.gif2", "-o", tmp_path / "o.png")
    assert result.exit_code == 2 and "unsupported image type" in result.output


def test_upscale_in_node_matches_python(converted, tmp_path):
    from skimage import data

    model_dir = converted(SLIM_X2)
    Image.fromarray(data.chelsea()[:30, :44]).save(tmp_path / "in.png")
    for runtime in ("python", "node"):
        result = run_cli("upscale", model_dir, tmp_path / "in.png", "-o", tmp_path / f"{runtime}.npy",
                         "--tile", "16", "--pad", "8", "--runtime", runtime)
        assert result.exit_code == 0, result.output
    python, node = np.load(tmp_path / "python.npy"), np.load(tmp_path / "node.npy")
    assert python.shape == node.shape == (60, 88, 3)
    assert np.abs(python - node).max() <= 1e-4 * 255


def test_upscale_measures_seam_free_padding_when_none_is_recorded(converted, tmp_path):
    from skimage import data

    model_dir = converted(SLIM_X2, export_tfjs=False)
    Image.fromarray(data.chelsea()[:48, :48]).save(tmp_path / "in.png")
    default = run_cli("upscale", model_dir, tmp_path / "in.png", "-o", tmp_path / "d.npy", "--tile", "16")
    whole = run_cli("upscale", model_dir, tmp_path / "in.png", "-o", tmp_path / "w.npy")
    assert default.exit_code == 0 and whole.exit_code == 0
    assert np.abs(np.load(tmp_path / "d.npy") - np.load(tmp_path / "w.npy")).max() <= 1.0  # 1/255 of [0,255]
