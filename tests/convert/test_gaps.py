"""Convert and upscale gaps a new user hits: TF.js model folders as sources, decompression
bombs as bad input (exit 2), transparent PNGs staying transparent."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from srjs import modeldir
from tests.conftest import run_cli

SLIM_X4_FOLDER = "npm:@upscalerjs/esrgan-slim@1.0.0/models/x4"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A random-weight x2 SRVGG converted with its TF.js exports (a few KB)."""
    from tests.torch_reference import save_tiny_srvgg

    root = tmp_path_factory.mktemp("gaps")
    save_tiny_srvgg(root / "tiny.pth")
    result = run_cli("convert", root / "tiny.pth", "-o", root / "tiny")
    assert result.exit_code == 0, result.output
    return root / "tiny"


def test_convert_local_tfjs_folder(tiny_dir, tmp_path):
    result = run_cli("convert", tiny_dir / "tfjs_layers", "-o", tmp_path / "again")
    assert result.exit_code == 0, result.output
    again = modeldir.read_manifest(tmp_path / "again")
    assert again.source["format"] == "tfjs_layers"
    assert again.source["sha256"] == modeldir.sha256_file(tiny_dir / "tfjs_layers" / "model.json")
    original = modeldir.load_keras(tiny_dir).get_weights()
    for a, b in zip(original, modeldir.load_keras(tmp_path / "again").get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_convert_npm_model_folder(tmp_path):
    result = run_cli("convert", SLIM_X4_FOLDER, "-o", tmp_path / "slim", "--no-tfjs")
    assert result.exit_code == 0, result.output
    manifest = modeldir.read_manifest(tmp_path / "slim")
    assert (manifest.name, manifest.scale, manifest.value_range) == ("esrgan-slim-x4", 4, [0, 255])


def _png_header_only(path, width: int, height: int) -> None:
    """A 60-byte PNG that declares width x height (PIL reads the size before any pixel)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))


def test_upscale_decompression_bomb_is_bad_input(tiny_dir, tmp_path, monkeypatch):
    _png_header_only(tmp_path / "huge.png", 30000, 30000)
    result = run_cli("upscale", tiny_dir, tmp_path / "huge.png", "-o", tmp_path / "out.png")
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "30000x30000" in line and "178956970" in line
    assert "SRJS_MAX_IMAGE_PIXELS" in line and not (tmp_path / "out.png").exists()
    # the limit is the user's to set: a small one refuses a normal image too
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small.png")
    monkeypatch.setenv("SRJS_MAX_IMAGE_PIXELS", "63")
    result = run_cli("upscale", tiny_dir, tmp_path / "small.png", "-o", tmp_path / "out.png")
    assert result.exit_code == 2 and "over the limit of 63" in result.output


def test_upscale_keeps_alpha(tiny_dir, tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    rgba[:6, :, 3] = 0  # top half transparent
    rgba[6:, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    result = run_cli("upscale", tiny_dir, tmp_path / "in.png", "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "RGBA" and out.size == (20, 24)
        got = np.asarray(out)
    expected = np.asarray(Image.fromarray(rgba[..., 3], "L").resize((20, 24), Image.BICUBIC))
    np.testing.assert_array_equal(got[..., 3], expected)
    assert got[:10, :, 3].max() == 0 and got[14:, :, 3].min() == 255
    # RGB is what the model makes of the RGB channels alone
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.png")
    assert run_cli("upscale", tiny_dir, tmp_path / "rgb.png", "-o", tmp_path / "rgb-out.png").exit_code == 0
    np.testing.assert_array_equal(got[..., :3], np.asarray(Image.open(tmp_path / "rgb-out.png")))
