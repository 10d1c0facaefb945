"""Images and .npy files given to `srjs upscale`: hostile ones exit 2 with one line and write
nothing; 16-bit samples are scaled (not clipped) and EXIF orientation is applied."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, PngImagePlugin

from srjs import imageio
from srjs.errors import BadInput
from tests.conftest import run_cli

@pytest.fixture
def x4_dir(tiny_x4_dir):
    return tiny_x4_dir


def _refused(model_dir: Path, image: Path, needle: str) -> str:
    out = image.parent / "out.png"
    result = run_cli("upscale", model_dir, image, "-o", out)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert needle in lines[0], lines[0]
    assert not out.exists() and not list(image.parent.glob(".out.png*")), "output (or its temp) written"
    return lines[0]


# --- .npy -------------------------------------------------------------------------------

def _bytes(data: bytes):
    return lambda path: path.write_bytes(data) and path or path


def _npy(path: Path, array) -> Path:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=True)
    return path


@pytest.mark.parametrize("make, needle", [
    (_bytes(b""), "is not a plain .npy array"),  # was exit 130 "interrupted"
    (_bytes(b"\x93NUMPY"), "is not a plain .npy array"),
    (lambda p: _npy(p, np.array([[["a", "b", "c"]]])), "holds <U1 values"),
    (lambda p: _npy(p, np.array([[[b"a", b"b", b"c"]]])), "holds |S1 values"),
    (lambda p: _npy(p, np.zeros((1, 1, 3), object)), "holds object values"),
    (lambda p: _npy(p, np.zeros((1, 1, 3), complex)), "holds complex128 values"),
    (lambda p: _npy(p, np.zeros((1, 1, 3), [("a", "f4")])), "values; srjs reads"),
    (lambda p: _npy(p, np.zeros((0, 4, 3), np.float32)), "has shape (0, 4, 3)"),
    (lambda p: _npy(p, np.zeros((4, 3), np.float32)), "has shape (4, 3)"),
    (lambda p: _npy(p, np.zeros((1, 4, 4, 3), np.float32)), "has shape (1, 4, 4, 3)"),
    (lambda p: _npy(p, np.full((2, 2, 3), np.nan, np.float32)), "holds NaN or infinite values"),
    (lambda p: _npy(p, np.full((2, 2, 3), 1e300)), "holds NaN or infinite values"),
])
def test_bad_npy_exits_2(x4_dir, tmp_path, make, needle):
    _refused(x4_dir, make(tmp_path / "in.npy"), needle)


def test_npy_header_is_checked_before_the_data_is_read(x4_dir, tmp_path):
    path = _npy(tmp_path / "in.npy", np.zeros((4, 4, 3), np.float32))
    path.write_bytes(path.read_bytes()[:-8])
    _refused(x4_dir, path, "its header says")  # truncated
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 3), }".ljust(117) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    _refused(x4_dir, path, "over the limit of")  # 10^10 pixels declared in 128 bytes


def test_good_npy_is_taken_as_is(tmp_path):
    array = np.random.default_rng(0).random((3, 5, 3)).astype(np.float64) * 300  # out of range: kept
    got = imageio.read_input(_npy(tmp_path / "in.npy", array), 1.0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, array, rtol=1e-6)
    ints = np.arange(18, dtype=np.int16).reshape(2, 3, 3)
    np.testing.assert_array_equal(imageio.read_input(_npy(tmp_path / "i.npy", ints), 1.0), ints)


# --- image decoder errors ---------------------------------------------------------------

def _png_with_text_bomb(path: Path) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), zip=True)  # 1 MB inflated
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path, pnginfo=info)
    return path


def _truncated_png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    return path


def _float_tiff(path: Path) -> Path:
    Image.fromarray(np.zeros((4, 4), np.float32)).save(path)
    return path


@pytest.mark.parametrize("name, make, needle", [
    ("bomb.png", _png_with_text_bomb, "Decompressed data too large"),
    ("cut.png", _truncated_png, "cannot read image"),
    ("junk.png", _bytes(b"not an image at all"), "cannot identify image file"),
    ("empty.jpg", _bytes(b""), "cannot identify image file"),
    ("float.tif", _float_tiff, "has F samples (32-bit or floating point)"),
])
def test_image_decoder_errors_exit_2(x4_dir, tmp_path, name, make, needle):
    _refused(x4_dir, make(tmp_path / name), needle)


def test_pixel_bomb_refused_from_the_header(x4_dir, tmp_path, monkeypatch):
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "1000")
    _refused(x4_dir, tmp_path / "big.png", "is 50x40 = 2000 pixels, over the limit of 1000")


# --- 16-bit samples ---------------------------------------------------------------------

def png16(path: Path, samples: np.ndarray, filters=(0, 1, 2, 3, 4)) -> Path:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB), rows cycling through
    every PNG filter type so the decoder's unfiltering is exercised."""
    h, w, c = samples.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = np.frombuffer(samples.astype(">u2").tobytes(), np.uint8).reshape(h, -1).astype(np.int64)
    bpp, prev, body = 2 * c, np.zeros(raw.shape[1], np.int64), bytearray()
    for y in range(h):
        kind, row = filters[y % len(filters)], raw[y]
        left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        p = left + prev - upleft
        paeth = np.where((abs(p - left) <= abs(p - prev)) & (abs(p - left) <= abs(p - upleft)), left,
                         np.where(abs(p - prev) <= abs(p - upleft), prev, upleft))
        predicted = [0, left, prev, (left + prev) // 2, paeth][kind]
        body.append(kind)
        body += ((row - predicted) % 256).astype(np.uint8).tobytes()
        prev = row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(body)))
                     + chunk(b"IEND", b""))
    return path


RAMP = np.linspace(0, 65535, 16 * 16).round().astype(np.uint16).reshape(16, 16)


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    Image.fromarray(RAMP).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as image:
        assert image.mode == "I;16"
    got = imageio.read_input(tmp_path / "g16.png", 1.0)
    np.testing.assert_allclose(got, np.repeat(RAMP[..., None] / 65535.0, 3, axis=-1), atol=1e-7)
    assert (got >= 254 / 255).mean() < 0.01  # the old reader: 99.6% white


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_rgb_png_keeps_every_bit(tmp_path, channels):
    samples = np.random.default_rng(channels).integers(0, 65536, (9, 13, channels)).astype(np.uint16)
    rgb, alpha = imageio.read_image(png16(tmp_path / "rgb16.png", samples), 65535.0)
    np.testing.assert_allclose(rgb, samples[..., :3], atol=0.01)  # exact, not just the high byte
    if channels == 4:
        np.testing.assert_array_equal(alpha, imageio.to_uint8(samples[..., 3] / 257.0))
    else:
        assert alpha is None


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_16_bit_rgb_tiff_keeps_every_bit(tmp_path, byteorder, compression):
    import tifffile

    samples = np.random.default_rng(1).integers(0, 65536, (7, 11, 3)).astype(np.uint16)
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, samples, byteorder=byteorder, compression=compression, photometric="rgb")
    np.testing.assert_allclose(imageio.read_input(path, 65535.0), samples, atol=0.01)


def test_16_bit_upscale_matches_its_8_bit_twin(x4_dir, tmp_path):
    """Exit 0 with the right picture: a 16-bit ramp and its 8-bit rounding upscale alike."""
    Image.fromarray(RAMP).save(tmp_path / "g16.png")
    Image.fromarray(np.round(RAMP / 257.0).astype(np.uint8)).save(tmp_path / "g8.png")
    for name in ("g16", "g8"):
        result = run_cli("upscale", x4_dir, tmp_path / f"{name}.png", "-o", tmp_path / f"{name}-x4.png")
        assert result.exit_code == 0, result.output
    out16 = np.asarray(Image.open(tmp_path / "g16-x4.png")).astype(int)
    out8 = np.asarray(Image.open(tmp_path / "g8-x4.png")).astype(int)
    assert out16.shape == (64, 64, 3)
    assert np.abs(out16 - out8).max() <= 2


# --- EXIF orientation -------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_like_a_viewer(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 255, (4, 8, 3), dtype=np.uint8)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "photo.png", exif=exif)
    with Image.open(tmp_path / "photo.png") as saved:
        shown = np.asarray(ImageOps.exif_transpose(saved).convert("RGB"))
    assert shown.shape == ((4, 8, 3) if orientation <= 4 else (8, 4, 3))
    np.testing.assert_array_equal(imageio.read_rgb8(tmp_path / "photo.png"), shown)


def test_rotated_photo_upscales_to_its_displayed_shape(x4_dir, tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (4, 8, 3), dtype=np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # stored 8 wide x 4 high, displayed 4 wide x 8 high
    image.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    result = run_cli("upscale", x4_dir, tmp_path / "photo.jpg", "-o", tmp_path / "big.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "big.png").size == (16, 32)  # (width, height): was (32, 16)


def test_alpha_follows_the_orientation(tmp_path):
    rgba = np.random.default_rng(3).integers(0, 255, (4, 8, 4), dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    exif = image.getexif()
    exif[0x0112] = 8
    image.save(tmp_path / "photo.png", exif=exif)
    rgb, alpha = imageio.read_image(tmp_path / "photo.png", 255.0)
    np.testing.assert_array_equal(alpha, np.rot90(rgba[..., 3], 1))
    np.testing.assert_array_equal(rgb, np.rot90(rgba[..., :3], 1))


def test_decoder_errors_are_bad_input_when_called_directly(tmp_path):
    with pytest.raises(BadInput, match="cannot read image"):
        imageio.read_input(_truncated_png(tmp_path / "cut.png"), 1.0)


# --- memory budget ----------------------------------------------------------------------

def test_whole_image_over_the_memory_budget_is_refused_before_it_runs(x4_dir, tmp_path, monkeypatch):
    import importlib

    upscale = importlib.import_module("srjs.upscale")  # the module; `srjs.upscale` is the API function
    calls = []
    real_runner = upscale.keras_runner
    monkeypatch.setattr(upscale, "keras_runner", lambda model: (lambda batch: calls.append(batch.shape)
                                                                or real_runner(model)(batch)))
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    monkeypatch.setenv("SRJS_MEMORY_BUDGET_MB", "8")
    line = _refused(x4_dir, tmp_path / "in.png", "upscaling 128x128 px whole needs about")
    # --tile 32 would fit with a known padding, but measuring it upscales a 96 px crop whole
    assert line.endswith("more than the 8.0 MiB budget (SRJS_MEMORY_BUDGET_MB); use --tile 16"), line
    assert calls == []  # refused before the network ran
    result = run_cli("upscale", x4_dir, tmp_path / "in.png", "-o", tmp_path / "out.png", "--tile", "16")
    assert result.exit_code == 0, result.output  # the advice works under the same budget
    assert Image.open(tmp_path / "out.png").size == (512, 512)
    assert calls and max(max(shape[1:3]) for shape in calls) <= 48


def test_memory_estimate_tracks_the_largest_tensor(x4_dir):
    from srjs import modeldir
    from srjs.memory_budget import LIVE_TENSORS, check_fits, largest_tensor_bytes

    model = modeldir.load_keras(x4_dir)
    # tiny SRVGG x4: its widest tensor is the 48-channel conv before the pixel shuffle (= 3 x 4 x 4)
    assert largest_tensor_bytes(model, 10, 20) == 4 * 10 * 20 * 48
    assert check_fits(model, 10, 20, 4) == 4 * 3 * 200 * 17 + LIVE_TENSORS * 4 * 200 * 48
    assert check_fits(model, 100, 100, 4, tile=10, pad=5) == 4 * 3 * 10_000 * 17 + LIVE_TENSORS * 4 * 400 * 48
    assert check_fits(model, 100, 100, 4, tile=10) == 4 * 3 * 10_000 * 17 + LIVE_TENSORS * 4 * 900 * 48


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_bad_memory_budget_setting_exits_2(x4_dir, tmp_path, monkeypatch, value):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    monkeypatch.setenv("SRJS_MEMORY_BUDGET_MB", value)
    _refused(x4_dir, tmp_path / "in.png", "SRJS_MEMORY_BUDGET_MB=")


def test_output_format_too_small_for_the_result_is_refused_before_upscaling(x4_dir, tmp_path):
    Image.fromarray(np.zeros((2, 4100, 3), np.uint8)).save(tmp_path / "wide.png")  # x4: 16400 px wide
    out = tmp_path / "wide.webp"
    result = run_cli("upscale", x4_dir, tmp_path / "wide.png", "-o", out)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: '{out}': the output would be 16400x8 px, but .webp holds at most 16383 px a side; write .png or .tiff"]
    assert not out.exists()
