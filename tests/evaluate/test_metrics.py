import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from srjs.errors import BadInput
from srjs.evaluate.metrics import PROTOCOL, psnr_rgb, psnr_y, rgb_to_y, ssim_y, to_uint8


def grey(value, size=20):
    return np.full((size, size, 3), value, dtype=np.uint8)


def test_rgb_to_y_matches_matlab_rgb2ycbcr():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64 and y.shape == (1, 5)
    # 16 + 65.481 + 128.553 + 24.966 = 235 for white; each primary adds its own coefficient.
    np.testing.assert_allclose(y[0], [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(np.array([[[10.0, 20.0, 30.0]]])),
                               [[16 + (65.481 * 10 + 128.553 * 20 + 24.966 * 30) / 255]], atol=1e-12)


def test_to_uint8_rounds_halves_up_and_clips():
    x = np.array([-3.0, 0.4, 0.5, 1.5, 2.5, 254.5, 300.0])
    np.testing.assert_array_equal(to_uint8(x), [0, 0, 1, 2, 3, 255, 255])
    u = np.array([7, 8], dtype=np.uint8)
    assert to_uint8(u) is u
    with pytest.raises(BadInput, match="NaN"):
        to_uint8(np.array([1.0, np.nan]))


def test_psnr_y_by_hand():
    # Every RGB channel off by 1 moves Y by (65.481 + 128.553 + 24.966) / 255 = 219 / 255.
    want = 10 * math.log10(255 ** 2 / (219 / 255) ** 2)
    assert psnr_y(grey(101), grey(100), crop=2) == pytest.approx(want, abs=1e-9)
    assert want == pytest.approx(49.4527, abs=1e-4)


def test_psnr_y_half_the_pixels_off_by_two():
    hr = grey(100)
    sr = hr.copy()
    sr[:10] += 2
    mse = 0.5 * (2 * 219 / 255) ** 2
    assert psnr_y(sr, hr, crop=0) == pytest.approx(10 * math.log10(255 ** 2 / mse), abs=1e-9)


def test_psnr_rgb_by_hand():
    assert psnr_rgb(grey(101), grey(100), crop=0) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-9)
    hr = grey(50)
    sr = hr.copy()
    sr[..., 0] += 3  # one channel of three off by 3: MSE = 9 / 3
    assert psnr_rgb(sr, hr, crop=0) == pytest.approx(10 * math.log10(255 ** 2 / 3), abs=1e-9)


def test_identical_images_give_inf():
    assert psnr_y(grey(7), grey(7), crop=1) == math.inf
    assert psnr_rgb(grey(7), grey(7), crop=1) == math.inf


def test_crop_removes_the_border():
    hr = grey(100)
    sr = hr.copy()
    sr[:3] = 0  # damage only the top 3 rows
    assert psnr_y(sr, hr, crop=3) == math.inf
    assert psnr_y(sr, hr, crop=2) < 30


def test_float_sr_is_rounded_to_8_bits_first():
    hr = grey(100)
    assert psnr_y(hr + 0.49, hr, crop=0) == math.inf
    assert psnr_y(hr.astype(np.float64) + 0.5, hr, crop=0) == pytest.approx(psnr_y(grey(101), hr, crop=0))
    assert psnr_rgb(np.full((20, 20, 3), 400.0), grey(255), crop=0) == math.inf  # clipped


def test_ssim_identical_is_one():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim_y(img, img, crop=4) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # No variance: SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1), C1 = (0.01 * 255)^2.
    y1, y2 = 16 + 100 * 219 / 255, 16 + 140 * 219 / 255
    c1 = (0.01 * 255) ** 2
    want = (2 * y1 * y2 + c1) / (y1 ** 2 + y2 ** 2 + c1)
    assert ssim_y(grey(140, 24), grey(100, 24), crop=2) == pytest.approx(want, abs=1e-9)


def _ssim_reference(x, y):
    # Wang et al. with an 11x11 Gaussian (sigma 1.5) and population (co)variances, averaged
    # where the window fits, written out so the test pins the protocol, not just the library.
    def f(a):
        return gaussian_filter(a, 1.5, truncate=3.5)  # radius int(3.5*1.5+0.5) = 5 -> 11 taps

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s[5:-5, 5:-5].mean()


def test_ssim_matches_the_written_out_protocol():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 40, hr.shape), 0, 255)  # float SR: rounded inside ssim_y
    crop = 3
    want = _ssim_reference(rgb_to_y(to_uint8(sr))[crop:-crop, crop:-crop], rgb_to_y(hr)[crop:-crop, crop:-crop])
    got = ssim_y(sr, hr, crop=crop)
    assert got == pytest.approx(want, abs=1e-9)
    assert 0.5 < got < 0.95
    # The reference can tell the protocol's choices apart: sample covariance moves the value.
    from skimage.metrics import structural_similarity

    ys, yh = rgb_to_y(to_uint8(sr))[crop:-crop, crop:-crop], rgb_to_y(hr)[crop:-crop, crop:-crop]
    sample = structural_similarity(ys, yh, gaussian_weights=True, sigma=1.5, data_range=255)
    assert abs(sample - got) > 1e-6  # 1000x the tolerance above


def test_shape_and_crop_errors():
    with pytest.raises(BadInput, match="differ in shape"):
        psnr_y(grey(1, 20), grey(1, 22), crop=0)
    with pytest.raises(BadInput, match="leaves nothing"):
        psnr_y(grey(1, 8), grey(1, 8), crop=4)
    with pytest.raises(BadInput, match="11x11"):
        ssim_y(grey(1, 14), grey(1, 14), crop=2)
    with pytest.raises(BadInput, match="HxWx3"):
        rgb_to_y(np.zeros((4, 4)))


def test_protocol_names_the_choices():
    for phrase in ("Y channel", "rgb2ycbcr", "11x11", "sigma 1.5", "cropping `scale` pixels", "8 bits"):
        assert phrase in PROTOCOL
