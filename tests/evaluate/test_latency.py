"""srjs bench: positive cold/warm timings, tile counts and the tiled-overhead formula."""
import json
import time

import pytest

from srjs.evaluate import tiling
from srjs.evaluate.latency import Bench, bench_python, bench_tfjs, run_bench, time_call
from tests.conftest import SLIM_X2, run_cli


@pytest.fixture(scope="module")
def slim(converted):
    return converted(SLIM_X2)


def test_ideal_overhead_on_a_known_case():
    # 64 px patches with 8 px of context per side compute 80x80 to keep 64x64: 1.5625x the work.
    assert tiling.ideal_overhead(64, 8) == 1.5625
    assert tiling.ideal_overhead(32, 0) == 1.0


def test_time_call_measures_cold_and_the_warm_median():
    sleeps = iter([0.03, 0.001, 0.02, 0.001])
    cold, warm = time_call(lambda: time.sleep(next(sleeps)), warm=3)
    assert cold >= 30 and 1 <= warm < 15  # median of 1, 20, 1 ms
    assert time_call(lambda: None, warm=0)[1] is None


def test_python_timings_whole_and_tiled(slim):
    timings = bench_python(slim, sizes=[32], tiles=[16, 0], pad=4, warm=2)
    whole, tiled = timings
    assert (whole.tile, whole.tiles, whole.pad, whole.runtime) == (0, 1, 0, "python")
    assert whole.cold_ms > 0 and whole.warm_ms > 0 and whole.overhead is None
    # 32 px with 16 px patches and 4 px pad: 24 px windows at 0 and 8 on each axis -> 2 x 2 tiles.
    assert (tiled.tile, tiled.pad, tiled.tiles) == (16, 4, 4)
    assert tiled.cold_ms > 0 and tiled.warm_ms > 0
    assert tiled.ideal_overhead == 2.25  # ((16 + 2*4) / 16)^2
    assert tiled.pixel_overhead == 4 * 24 * 24 / (32 * 32)
    assert tiled.overhead == pytest.approx(tiled.warm_ms / whole.warm_ms)
    assert tiled.tiles_per_s == pytest.approx(4 / (tiled.warm_ms / 1e3))


def test_tfjs_node_timings_are_positive(slim):
    timings = bench_tfjs([slim], sizes=[16], tiles=[0, 8], pad=2, warm=1, runtime="node", backends=["wasm"])
    assert [(t.tile, t.error) for t in timings] == [(0, None), (8, None)]
    whole, tiled = timings
    assert whole.cold_ms > 0 and whole.warm_ms > 0 and whole.method == "measured"
    assert tiled.method == "per-tile" and tiled.tiles == len(tiling.plan_tiles(16, 16, 8, 2)) == 4


def test_bench_json_and_cli(slim, tmp_path):
    out = tmp_path / "bench.json"
    done = run_cli("bench", slim, "--size", "24", "--tile", "0,12", "--warm", "1", "--pad", "2", "--json", out)
    assert done.exit_code == 0, done.output
    assert "esrgan-slim-x2" in done.output and "whole" in done.output
    raw = json.loads(out.read_text())
    assert raw["schema"] == "srjs.bench/1" and raw["machine"]["cpus"] >= 1
    back = Bench.from_dict(raw)
    assert [(t.size, t.tile, t.pad) for t in back.timings] == [(24, 0, 0), (24, 12, 2)]
    assert all(t.warm_ms > 0 for t in back.timings)
    bad = run_cli("bench", slim, "--size", "big")
    assert bad.exit_code == 2 and "--size" in bad.output
    with pytest.raises(Exception, match="unknown runtime"):
        run_bench([slim], runtimes=["gpu"], progress=False)
