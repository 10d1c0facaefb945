"""Bad checkpoints: one line on stderr, exit 2, no traceback, no OUT left behind, nothing run."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import torch  # noqa: E402  (the test extra; make test installs it)

from tests.torch_reference import RRDBNet  # noqa: E402


def srjs(*args, cwd=None) -> subprocess.CompletedProcess:
    """The real console entry point, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "srjs.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def assert_bad_input(result: subprocess.CompletedProcess, out: Path, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    # convert's progress note that it is fetching from a registry may come before the error
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("[convert] fetching ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")], "temp dir left"


@pytest.fixture(scope="module")
def good_pth(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "rrdb.pth"
    torch.save(RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).state_dict(), path)
    return path


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_truncated_pth(good_pth, tmp_path):
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(good_pth.read_bytes()[: good_pth.stat().st_size // 2])
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out", "truncated.pth")


def test_malicious_legacy_pickle(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pth"
    torch.save({"x": RunsShell(marker)}, bad, _use_new_zipfile_serialization=False)
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out", "system")
    assert not marker.exists()


def test_malicious_zip_pickle(good_pth, tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pth"
    with zipfile.ZipFile(good_pth) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps({"conv_first.weight": RunsShell(marker)}, protocol=2)
            dst.writestr(item, data)
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out", "system")
    assert not marker.exists()


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.pth"
    bad.write_bytes(b"")
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out", "empty")


def test_shape_mismatched_weights(tmp_path):
    state = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).state_dict()
    state["body.0.rdb2.conv3.weight"] = torch.zeros(4, 15, 3, 3)  # should be (4, 16, 3, 3)
    bad = tmp_path / "mismatch.pth"
    torch.save(state, bad)
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out", "body.0.rdb2.conv3")


def test_unknown_keys(tmp_path):
    state = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).state_dict()
    state["attention.gate.weight"] = torch.zeros(8, 8, 1, 1)
    bad = tmp_path / "extra.pth"
    torch.save(state, bad)
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out", "attention.gate")


def test_not_a_model(tmp_path):
    bad = tmp_path / "random.pth"
    torch.save({"w": torch.zeros(3, 3)}, bad)
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out")


def test_missing_path(tmp_path):
    assert_bad_input(srjs("convert", tmp_path / "nope.pth", "-o", tmp_path / "out"), tmp_path / "out", "does not exist")


def test_unsupported_extension(tmp_path):
    bad = tmp_path / "weights.onnx"
    bad.write_bytes(b"\x08\x01")
    assert_bad_input(srjs("convert", bad, "-o", tmp_path / "out"), tmp_path / "out", "not a supported checkpoint")


def test_npm_package_that_does_not_exist(tmp_path):
    source = "npm:@upscalerjs/no-such-model-srjs-test@9.9.9/models/x4/model.json"
    assert_bad_input(srjs("convert", source, "-o", tmp_path / "out"), tmp_path / "out", "no-such-model-srjs-test")


def test_wrong_explicit_arch_and_scale(good_pth, tmp_path):
    result = srjs("convert", good_pth, "-o", tmp_path / "out", "--arch", "srvgg")
    assert_bad_input(result, tmp_path / "out", "srvgg")
    result = srjs("convert", good_pth, "-o", tmp_path / "out", "--scale", "2", "--no-tfjs")
    assert_bad_input(result, tmp_path / "out", "--scale 2 does not fit", "x4 'rrdbnet'")
