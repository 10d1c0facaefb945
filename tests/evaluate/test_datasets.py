import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from srjs.errors import BadInput
from srjs.evaluate.datasets import BUILTIN, DEFAULT, builtin, load_folder, load_pairs, read_image

RGB = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
GREY = RGB[..., 1]


def save(path, array, **kw):
    PILImage.fromarray(array).save(path, **kw)
    return path


def test_builtin_images_are_rgb_uint8_with_documented_sizes():
    sizes = {
        "astronaut": (512, 512), "chelsea": (300, 451), "coffee": (400, 600), "rocket": (427, 640),
        "motorcycle": (500, 741), "immunohistochemistry": (512, 512), "hubble_deep_field": (872, 1000),
        "retina": (1411, 1411),
    }
    assert list(BUILTIN) == list(sizes)
    assert DEFAULT == [n for n in sizes if n != "retina"]
    images = builtin(list(sizes))
    assert [im.name for im in images] == list(sizes)
    for im in images:
        assert im.hr.dtype == np.uint8 and im.hr.shape == sizes[im.name] + (3,), im.name
        assert im.lr is None and im.note == ""
    assert len({im.hr[:64, :64].tobytes() for im in images}) == len(images)  # no duplicates (cat == chelsea)


def test_builtin_subset_and_unknown_name():
    assert [im.name for im in builtin()] == DEFAULT
    assert [im.name for im in builtin(["coffee", "astronaut"])] == ["coffee", "astronaut"]
    with pytest.raises(BadInput, match="no built-in image named 'camera'"):
        builtin(["camera"])


def test_rgb_lossless_formats_round_trip(tmp_path):
    for name in ("a.png", "b.bmp", "c.tiff", "d.TIF"):
        save(tmp_path / name, RGB)
    save(tmp_path / "e.webp", RGB, lossless=True)
    images = load_folder(tmp_path)
    assert [im.name for im in images] == ["a.png", "b.bmp", "c.tiff", "d.TIF", "e.webp"]
    for im in images:
        np.testing.assert_array_equal(im.hr, RGB, err_msg=im.name)
        assert im.note == ""


def test_jpeg_is_read_close_to_the_original(tmp_path):
    smooth = np.broadcast_to(np.linspace(40, 200, 16)[None, :, None], (16, 16, 3)).astype(np.uint8)
    save(tmp_path / "x.jpg", smooth, quality=98)
    hr, note = read_image(tmp_path / "x.jpg")
    assert hr.shape == (16, 16, 3) and hr.dtype == np.uint8 and note == ""
    assert np.abs(hr.astype(int) - smooth).max() <= 4


def test_greyscale_is_replicated(tmp_path):
    hr, note = read_image(save(tmp_path / "g.png", GREY))
    np.testing.assert_array_equal(hr, np.stack([GREY] * 3, axis=-1))
    assert note == "greyscale replicated to RGB"


def test_alpha_is_dropped_with_a_note(tmp_path):
    rgba = np.concatenate([RGB, np.full(RGB.shape[:2] + (1,), 9, np.uint8)], axis=-1)
    hr, note = read_image(save(tmp_path / "a.png", rgba))
    np.testing.assert_array_equal(hr, RGB)
    assert note == "alpha dropped"
    la = np.stack([GREY, GREY], axis=-1)
    hr, note = read_image(save(tmp_path / "la.png", la))
    np.testing.assert_array_equal(hr[..., 2], GREY)
    assert note == "alpha dropped; greyscale replicated to RGB"


def test_16_bit_is_scaled_to_8_bit(tmp_path):
    g16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000 + 255)
    hr, note = read_image(save(tmp_path / "g16.png", g16))  # Pillow mode I;16
    np.testing.assert_array_equal(hr[..., 0], g16 >> 8)
    assert "16-bit scaled to 8-bit" in note
    rgb16 = RGB.astype(np.uint16) * 256 + 100  # high byte is the 8-bit value
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
    hr, note = read_image(tmp_path / "rgb16.tif")
    np.testing.assert_array_equal(hr, RGB)
    assert note == "16-bit scaled to 8-bit"
    planar = np.moveaxis(rgb16, -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif")[0], RGB)


def test_palette_and_cmyk_become_rgb(tmp_path):
    p = PILImage.fromarray(RGB).quantize(8)
    p.save(tmp_path / "p.png")
    hr, _ = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(hr, np.asarray(p.convert("RGB")))
    PILImage.fromarray(RGB).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    hr, _ = read_image(tmp_path / "c.jpg")
    assert hr.shape == RGB.shape and np.abs(hr.astype(int) - RGB).mean() < 20


def test_exif_orientation_is_applied(tmp_path):
    im = PILImage.fromarray(RGB)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.png", exif=exif)
    hr, note = read_image(tmp_path / "r.png")
    np.testing.assert_array_equal(hr, np.rot90(RGB, k=-1))
    assert note == "EXIF orientation applied"


def test_unsupported_and_unreadable_files_name_the_file(tmp_path):
    save(tmp_path / "ok.png", RGB)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BadInput, match=r"notes.txt': unsupported image type '.txt'") as err:
        load_folder(tmp_path)
    assert "\n" not in err.value.message
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(BadInput, match=r"cannot read image '.*broken.png'") as err:
        load_folder(tmp_path)
    assert "\n" not in err.value.message


def test_float_tiff_is_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", RGB.astype(np.float32) / 255, photometric="rgb")
    with pytest.raises(BadInput, match=r"f.tif'.*float32"):
        read_image(tmp_path / "f.tif")


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"junk")  # hidden files and subfolders are ignored
    (tmp_path / "sub").mkdir()
    with pytest.raises(BadInput, match="no images in"):
        load_folder(tmp_path)
    with pytest.raises(BadInput, match="is not a folder"):
        load_folder(tmp_path / "nope")


def make_pair_dirs(tmp_path, names_lr, names_hr, scale=2, hr_extra=0):
    lr_dir, hr_dir = tmp_path / "lr", tmp_path / "hr"
    lr_dir.mkdir()
    hr_dir.mkdir()
    for i, (lr_name, hr_name) in enumerate(zip(names_lr, names_hr)):
        lr = np.full((5, 6, 3), 10 * i, np.uint8)
        hr = np.full((5 * scale + hr_extra, 6 * scale + hr_extra, 3), 10 * i + 1, np.uint8)
        save(lr_dir / lr_name, lr)
        save(hr_dir / hr_name, hr)
    return lr_dir, hr_dir


def test_pairs_match_by_stem_and_div2k_suffix(tmp_path):
    lr_dir, hr_dir = make_pair_dirs(tmp_path, ["b.png", "0801x2.png"], ["b.bmp", "0801.png"])
    pairs = load_pairs(lr_dir, hr_dir)
    assert [p.name for p in pairs] == ["0801.png", "b.bmp"]
    assert pairs[0].lr.shape == (5, 6, 3) and pairs[0].hr.shape == (10, 12, 3)
    assert (pairs[0].lr[0, 0, 0], pairs[0].hr[0, 0, 0]) == (10, 11)  # 0801 was written second
    assert (pairs[1].lr[0, 0, 0], pairs[1].hr[0, 0, 0]) == (0, 1)


def test_pairs_crop_hr_to_a_multiple_of_the_scale(tmp_path):
    lr_dir, hr_dir = make_pair_dirs(tmp_path, ["a.png"], ["a.png"], scale=3, hr_extra=2)
    (pair,) = load_pairs(lr_dir, hr_dir, scale=3)
    assert pair.hr.shape == (15, 18, 3)
    assert pair.note == "HR cropped to 15x18, a multiple of the scale"


def test_pairs_errors(tmp_path):
    lr_dir, hr_dir = make_pair_dirs(tmp_path, ["a.png", "b.png"], ["a.png", "c.png"])
    with pytest.raises(BadInput, match=r"no HR image in .* matches LR '.*b.png'"):
        load_pairs(lr_dir, hr_dir)
    (lr_dir / "b.png").rename(lr_dir / "c.png")
    assert len(load_pairs(lr_dir, hr_dir)) == 2
    save(hr_dir / "d.png", RGB)
    with pytest.raises(BadInput, match=r"no LR image in .* matches HR '.*d.png'"):
        load_pairs(lr_dir, hr_dir)
    (hr_dir / "d.png").unlink()
    with pytest.raises(BadInput, match=r"HR '.*a.png' is 10x12 but LR '.*a.png' is 5x6; expected HR 15x18 at scale 3"):
        load_pairs(lr_dir, hr_dir, scale=3)
    save(lr_dir / "c.jpg", RGB)
    with pytest.raises(BadInput, match="have the same name"):
        load_pairs(lr_dir, hr_dir)


def test_builtin_heldout_is_the_half_no_optimize_step_sees():
    from srjs.evaluate.run import load_dataset
    from srjs.optimize.calib import split_images

    calib, held = split_images("builtin")
    names = [im.name for im in load_dataset("builtin-heldout")]
    assert names == [im.name for im in held] == ["rocket", "motorcycle", "immunohistochemistry", "hubble_deep_field"]
    assert not set(names) & {im.name for im in calib}
    assert [im.name for im in load_dataset("builtin-heldout", limit=2)] == names[:2]
