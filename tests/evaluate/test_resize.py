import numpy as np
import pytest

from srjs.errors import BadInput
from srjs.evaluate.resize import (bicubic_downsample, bicubic_upsample, contributions, cubic, imresize,
                                  imresize_uint8, modcrop)

# A deterministic, non-smooth 10x12 test pattern.
PATTERN = ((np.arange(10)[:, None] * 37 + np.arange(12)[None, :] ** 2 * 11) % 256).astype(np.float64)


def test_cubic_kernel_values():
    # Keys a=-0.5: 1.5|x|^3 - 2.5|x|^2 + 1 on [0,1]; -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on (1,2].
    x = np.array([0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5])
    want = [1, 0.8671875, 0.5625, 0.2265625, 0, -0.0703125, -0.0625, -0.0234375, 0, 0]
    np.testing.assert_array_equal(cubic(x), want)
    np.testing.assert_array_equal(cubic(-x), want)


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4])
def test_constant_image_stays_constant(scale):
    img = np.full((12, 13, 3), 77.0)
    out = imresize(img, scale=scale)
    np.testing.assert_allclose(out, 77.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape,scale,want", [
    ((5, 7), 2, (10, 14)),
    ((5, 7), 0.5, (3, 4)),      # ceil(2.5), ceil(3.5) as MATLAB
    ((7, 11, 3), 1 / 3, (3, 4, 3)),
    ((7, 11, 3), 3, (21, 33, 3)),
    ((9, 9), 0.25, (3, 3)),
    ((13, 5), 1.5, (20, 8)),
])
def test_output_size_is_ceil_like_matlab(shape, scale, want):
    assert imresize(np.zeros(shape), scale=scale).shape == want


def test_output_shape_argument():
    assert imresize(PATTERN, output_shape=(4, 9)).shape == (4, 9)
    with pytest.raises(BadInput, match="exactly one"):
        imresize(PATTERN, scale=2, output_shape=(4, 4))
    with pytest.raises(BadInput, match="exactly one"):
        imresize(PATTERN)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_linear_ramp_stays_linear_away_from_borders_when_upsampling(scale):
    # Keys' cubic reproduces linear functions exactly; only the mirrored border breaks it.
    n = 16
    ramp = np.tile(3.0 * np.arange(n) + 5.0, (4, 1))
    out = imresize(ramp, scale=scale)[0]
    # Output pixel k (0-based) samples input position (k + 0.5)/scale - 0.5 (0-based).
    pos = (np.arange(n * scale) + 0.5) / scale - 0.5
    interior = (pos >= 2) & (pos <= n - 3)
    np.testing.assert_allclose(out[interior], 3.0 * pos[interior] + 5.0, rtol=0, atol=1e-9)
    assert not np.allclose(out[~interior], 3.0 * pos[~interior] + 5.0)  # the border is mirrored


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_linear_ramp_stays_linear_away_from_borders_when_downsampling(scale):
    n = 48
    ramp = np.tile(2.0 * np.arange(n) - 7.0, (scale, 1))
    out = imresize(ramp, scale=1 / scale)[0]
    pos = (np.arange(n // scale) + 0.5) * scale - 0.5
    interior = (pos >= 2 * scale) & (pos <= n - 1 - 2 * scale)  # the kernel spans 2*scale each side
    np.testing.assert_allclose(out[interior], 2.0 * pos[interior] - 7.0, rtol=0, atol=1e-9)


def test_x2_downsample_by_hand():
    # Shrinking x2 widens the kernel to 8 taps: h(d) = 0.5 * cubic(d / 2). Output pixel k
    # (1-based) sits at input position u = 2k - 0.5, so its taps are inputs 2k-4 .. 2k+3 at
    # distances 3.5, 2.5, 1.5, 0.5, -0.5, -1.5, -2.5, -3.5, i.e. cubic at 1.75, 1.25, 0.75,
    # 0.25 (both sides) = -0.0234375, -0.0703125, 0.2265625, 0.8671875. Halved these sum to 1
    # already, giving the weights (-3, -9, 29, 111, 111, 29, -9, -3) / 256.
    w = np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256
    row = np.array([10, 20, 40, 80, 160, 0, 50, 30], dtype=np.float64)
    # Outside the row MATLAB mirrors with the edge repeated: x[0]=x[1], x[-1]=x[2], x[9]=x[8] (1-based).
    mirrored = np.concatenate([row[2::-1], row, row[:-4:-1]])  # 1-based positions -2 .. 11
    by_hand = [np.dot(w, mirrored[2 * k - 2: 2 * k + 6]) for k in range(1, 5)]  # positions 2k-4 .. 2k+3
    # Written out for k=1: inputs at 1-based -2..5 are 40, 20, 10, 10, 20, 40, 80, 160.
    assert by_hand[0] == (-3 * 40 - 9 * 20 + 29 * 10 + 111 * 10 + 111 * 20 + 29 * 40 - 9 * 80 - 3 * 160) / 256
    img = np.stack([row, row])  # two equal rows: the vertical pass is then the identity
    out = imresize(img, scale=0.5)
    assert out.shape == (1, 4)
    np.testing.assert_array_equal(out[0], by_hand)
    assert by_hand[0] == 12.8125  # = 3280 / 256


def test_x2_weights_and_mirrored_indices():
    w, idx = contributions(in_length=8, out_length=4, scale=0.5)
    np.testing.assert_array_equal(w[1], np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256)
    np.testing.assert_array_equal(idx[0], [2, 1, 0, 0, 1, 2, 3, 4])  # 0-based, mirrored at the left
    np.testing.assert_array_equal(idx[3], [3, 4, 5, 6, 7, 7, 6, 5])
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-15)


# Pinned from xinntao/BasicSR basicsr/utils/matlab_functions.py imresize (commit 323cc14,
# float32 torch) run on PATTERN; fatheral/matlab_imresize (float64) gives the same values to 2e-5.
BASICSR_DOWN2 = np.array([
    [19.7891, 98.8242, 129.0781, 99.5586, 152.4609, 81.0156],
    [96.7578, 165.1484, 145.4453, 146.1875, 123.5977, 168.7617],
    [187.0664, 157.3242, 123.7461, 144.668, 87.2031, 154.4922],
    [111.3906, 72.0156, 138.7461, 139.1289, 140.5, 50.8203],
    [52.0391, 139.582, 164.2344, 121.707, 139.3125, 127.3984]])
BASICSR_DOWN3 = np.array([
    [56.4743, 137.1413, 122.7772, 120.5208],
    [164.7801, 139.473, 129.5569, 138.5769],
    [91.1637, 128.7933, 140.3374, 94.3804],
    [70.9945, 166.3324, 124.4993, 133.4412]])
BASICSR_UP3_ROW5 = np.array([48.1111, 49.3333, 51.3704, 54.6296, 60.3334, 68.8889, 79.8889, 93.3333, 108.8711,
                             126.8533, 148.3333, 178.0315, 211.2277, 234.8148, 244.4238])


def test_matches_basicsr_imresize():
    np.testing.assert_allclose(imresize(PATTERN, scale=1 / 2), BASICSR_DOWN2, rtol=0, atol=1e-4)
    np.testing.assert_allclose(imresize(PATTERN, scale=1 / 3), BASICSR_DOWN3, rtol=0, atol=1e-3)
    up = imresize(PATTERN[:4, :5], scale=3)
    assert up.shape == (12, 15)
    np.testing.assert_allclose(up[5], BASICSR_UP3_ROW5, rtol=0, atol=1e-3)


def test_channels_are_resized_independently():
    img = np.stack([PATTERN, 255 - PATTERN, np.full_like(PATTERN, 9)], axis=-1)
    out = imresize(img, scale=1 / 2)
    np.testing.assert_allclose(out[..., 0], BASICSR_DOWN2, atol=1e-4)
    np.testing.assert_allclose(out[..., 1], 255 - BASICSR_DOWN2, atol=1e-4)
    np.testing.assert_allclose(out[..., 2], 9, atol=1e-12)


def test_uint8_input_gives_the_same_float_result():
    img = PATTERN.astype(np.uint8)
    np.testing.assert_array_equal(imresize(img, scale=0.5), imresize(PATTERN, scale=0.5))


def test_uint8_path_rounds_after_each_axis():
    img = PATTERN.astype(np.uint8)
    once = imresize_uint8(img, scale=1 / 3)
    assert once.dtype == np.uint8
    # By hand: the first (vertical) pass is rounded to uint8 before the horizontal pass.
    w, idx = contributions(10, 4, 1 / 3)
    first = np.floor(np.clip(np.einsum("ot,otw->ow", w, PATTERN[idx]), 0, 255) + 0.5)
    w2, idx2 = contributions(12, 4, 1 / 3)
    second = np.floor(np.clip(np.einsum("ht,hot->ho", w2, first[:, idx2]), 0, 255) + 0.5)
    np.testing.assert_array_equal(once, second)


def test_modcrop_and_bicubic_downsample():
    hr = np.arange(11 * 14 * 3, dtype=np.float64).reshape(11, 14, 3)
    assert modcrop(hr, 4).shape == (8, 12, 3)
    np.testing.assert_array_equal(modcrop(hr, 4), hr[:8, :12])
    lr = bicubic_downsample(hr, 3)
    assert lr.shape == (3, 4, 3) and lr.dtype == np.float64
    np.testing.assert_array_equal(lr, imresize(hr[:9, :12], scale=1 / 3))
    hr8 = (PATTERN[:9, :12]).astype(np.uint8)
    np.testing.assert_array_equal(bicubic_downsample(hr8, 3, uint8=True), imresize_uint8(hr8, scale=1 / 3))
    with pytest.raises(BadInput, match="smaller than the scale"):
        modcrop(hr[:2], 3)


def test_bicubic_downsample_is_unclipped():
    # A bright square on black: bicubic rings below 0 next to the edge.
    hr = np.zeros((24, 24))
    hr[8:16, 8:16] = 255
    lr = bicubic_downsample(hr, 4)
    assert lr.min() < 0 and lr.max() <= 255


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_upsample_shape_and_constant(scale):
    lr = np.full((5, 7, 3), 200.0)
    up = bicubic_upsample(lr, scale)
    assert up.shape == (5 * scale, 7 * scale, 3)
    np.testing.assert_allclose(up, 200.0, atol=1e-12)
