import json

import numpy as np
import pytest

from srjs.errors import BadInput, CheckFailed
from srjs.evaluate.tiling import (Span, ideal_overhead, plan_spans, plan_tiles, seam_free_padding, tiling_error,
                                  tiling_overhead, upscale_tiled, upscalerjs_options)

CASES = [  # height, width, patch, pad
    (37, 29, 8, 3),
    (64, 64, 16, 4),     # patch divides the image
    (65, 63, 16, 4),     # odd sizes, patch does not divide
    (10, 13, 32, 8),     # image smaller than one patch
    (20, 50, 8, 10),     # smaller than a window on one axis only
    (23, 23, 5, 0),      # no padding
    (100, 7, 1, 2),      # tiny patch
]


def fake_model(radius: int, scale: int):
    """A numpy 'SR model' whose receptive field reaches exactly `radius` pixels.

    3x3 box sums with zero padding (like a conv's 'same' padding), `radius` times, then nearest
    upsampling. Every output pixel is computed by the same operations in the same order
    wherever the window sits, so tiled and whole outputs are bitwise equal once pad >= radius.
    """

    def run(batch):
        x = batch[0].astype(np.float64)
        h, w = x.shape[:2]
        for _ in range(radius):
            p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
            x = sum(p[i:i + h, j:j + w] for i in range(3) for j in range(3))
        x = np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)
        return x[None].astype(np.float32)

    return run


def image(h, w, seed=0):
    # Values >= 2 so a missing neighbour changes the sum by more than one 8-bit level.
    return np.random.default_rng(seed).integers(2, 256, (h, w, 3)).astype(np.float32)


def test_spans_by_hand():
    # length 100, patch 32, pad 8: windows are 48 wide. The first keeps [0, 40) (its right
    # 8 px are context), the next sits at 32 and keeps its core [40, 72), the last is shifted
    # back to end at 100, so its window is [52, 100) and it keeps [72, 100).
    assert plan_spans(100, 32, 8) == [Span(0, 48, 0, 40), Span(32, 48, 40, 72), Span(52, 48, 72, 100)]
    assert plan_spans(64, 16, 0) == [Span(0, 16, 0, 16), Span(16, 16, 16, 32), Span(32, 16, 32, 48),
                                     Span(48, 16, 48, 64)]
    assert plan_spans(10, 32, 8) == [Span(0, 10, 0, 10)]
    assert plan_spans(40, 24, 8) == [Span(0, 40, 0, 40)]  # exactly one window


@pytest.mark.parametrize("h,w,patch,pad", CASES)
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_kept_regions_partition_the_output(h, w, patch, pad, scale):
    tiles = plan_tiles(h, w, patch, pad)
    written = np.zeros((h * scale, w * scale), dtype=np.int64)
    for t in tiles:
        dest, crop = t.dest(scale), t.crop(scale)
        written[dest] += 1
        win = t.window()
        tile_out = np.zeros(((win[0].stop - win[0].start) * scale, (win[1].stop - win[1].start) * scale))
        assert tile_out[crop].shape == written[dest].shape
        assert tile_out[crop].size > 0
    np.testing.assert_array_equal(written, 1)


@pytest.mark.parametrize("h,w,patch,pad", CASES)
def test_windows_are_equal_inside_and_give_pad_context(h, w, patch, pad):
    tiles = plan_tiles(h, w, patch, pad)
    shapes = {(t.y.size, t.x.size) for t in tiles}
    assert shapes == {(min(patch + 2 * pad, h), min(patch + 2 * pad, w))}
    for t in tiles:
        for s, length in ((t.y, h), (t.x, w)):
            assert 0 <= s.start and s.start + s.size <= length
            assert s.start <= s.keep_start < s.keep_stop <= s.start + s.size
            assert s.keep_start - s.start >= pad or s.keep_start == 0
            assert s.start + s.size - s.keep_stop >= pad or s.keep_stop == length


def test_tile_count_and_row_major_order():
    tiles = plan_tiles(100, 64, 32, 8)
    assert len(tiles) == 3 * 2  # 100 -> 3 spans as above; 64 -> [0,48) keep 40, [16,64) keep 24
    assert [(t.row, t.col) for t in tiles] == [(r, c) for r in range(3) for c in range(2)]


def test_plan_is_json_serialisable():
    t = plan_tiles(100, 64, 32, 8)[1]
    d = json.loads(json.dumps(t.to_dict()))
    assert d == {"row": 0, "col": 1, "y": {"start": 0, "size": 48, "keep_start": 0, "keep_stop": 40},
                 "x": {"start": 16, "size": 48, "keep_start": 40, "keep_stop": 64}}


def test_overheads_and_upscalerjs_options():
    assert ideal_overhead(32, 8) == (48 / 32) ** 2
    assert ideal_overhead(64, 0) == 1.0
    # 100x64 with 48x48 windows: 6 tiles of 2304 px over 6400 px.
    assert tiling_overhead(100, 64, 32, 8) == 6 * 48 * 48 / 6400
    assert upscalerjs_options(32, 8) == {"patchSize": 48, "padding": 8}


def test_bad_parameters():
    with pytest.raises(BadInput, match="patch >= 1"):
        plan_tiles(10, 10, 0, 2)
    with pytest.raises(BadInput, match="pad >= 0"):
        plan_tiles(10, 10, 4, -1)


@pytest.mark.parametrize("h,w,patch,pad", CASES)
def test_tiled_equals_whole_once_pad_covers_the_receptive_field(h, w, patch, pad):
    radius, scale = min(pad, 3), 2
    run = fake_model(radius, scale)
    img = image(h, w)
    whole = run(img[None])[0]
    tiled = upscale_tiled(run, img, scale, patch, pad)
    assert tiled.shape == (h * scale, w * scale, 3) and tiled.dtype == np.float32
    np.testing.assert_array_equal(tiled, whole)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_tiled_differs_when_pad_is_short_of_the_receptive_field(radius):
    run = fake_model(radius, 2)
    img = image(37, 29, seed=radius)
    assert tiling_error(run, img, 2, patch=8, pad=radius) == 0.0
    assert tiling_error(run, img, 2, patch=8, pad=radius - 1) >= 2.0  # at least one missing pixel value


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_seam_free_padding_finds_the_receptive_field(radius):
    run = fake_model(radius, 3)
    img = image(41, 34, seed=10 + radius)
    assert seam_free_padding(run, img, 3, patch=8) == radius
    assert seam_free_padding(run, img, 3, patch=8, value_max=1.0) == radius
    assert seam_free_padding(run, img, 3, patch=8, candidates=[5, 0, 1, 2, 3, 4]) == radius


def test_seam_free_padding_fails_when_no_pad_is_enough():
    run = fake_model(5, 2)
    with pytest.raises(CheckFailed, match="even pad 2"):
        seam_free_padding(run, image(40, 40), 2, patch=4)
    with pytest.raises(CheckFailed, match=r"no pad in \[0, 1\]"):
        seam_free_padding(run, image(40, 40), 2, patch=4, candidates=range(2))


def test_progress_callable_and_bar():
    run = fake_model(1, 2)
    calls = []
    upscale_tiled(run, image(30, 20), 2, 8, 1, progress=lambda done, total: calls.append((done, total)))
    n = len(plan_tiles(30, 20, 8, 1))
    assert calls == [(i, n) for i in range(1, n + 1)]

    class Bar:
        total = None
        n = 0

        def update(self, k):
            self.n += k

    bar = Bar()
    upscale_tiled(run, image(30, 20), 2, 8, 1, progress=bar)
    assert (bar.total, bar.n) == (n, n)


def test_wrong_model_output_shape_is_a_check_failure():
    def run(batch):
        return np.zeros((1, batch.shape[1] * 2, batch.shape[2] * 2, 3), np.float32)

    with pytest.raises(CheckFailed, match="expected"):
        upscale_tiled(run, image(20, 20), 4, 8, 2)


def test_writes_into_a_given_output_and_calls_run_with_float32_batches():
    seen = []

    def run(batch):
        seen.append((batch.shape, batch.dtype))
        return np.repeat(np.repeat(batch, 2, axis=1), 2, axis=2)

    img = image(21, 18).astype(np.uint8)
    out = np.full((42, 36, 3), -1.0, dtype=np.float32)
    result = upscale_tiled(run, img, 2, 8, 2, out=out)
    assert result is out
    np.testing.assert_array_equal(out, np.repeat(np.repeat(img, 2, axis=0), 2, axis=1))
    assert {s for s in seen} == {((1, 12, 12, 3), np.dtype(np.float32))}
