import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from srjs.convert.safetensors_reader import read_safetensors
from srjs.errors import BadInput


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "conv.bias": torch.randn(4, generator=g, dtype=torch.float64),
        "half": torch.randn(2, 5, generator=g).half(),
        "bf16": torch.randn(3, 2, generator=g).bfloat16(),
        "steps": torch.arange(-2, 4),
    }


def test_round_trip(tmp_path, tensors):
    path = tmp_path / "w.safetensors"
    save_file(tensors, path)
    loaded = read_safetensors(path)
    assert sorted(loaded) == sorted(tensors)
    for key, t in tensors.items():
        want = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).numpy()
        assert loaded[key].dtype == want.dtype, key
        assert loaded[key].shape == want.shape, key
        np.testing.assert_array_equal(loaded[key], want, err_msg=key)
    assert loaded["half"].dtype == np.float32 and loaded["bf16"].dtype == np.float32
    loaded["conv.weight"][0, 0, 0, 0] = 1.0  # owned, writable arrays


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: b"", "empty"),
        (lambda data: data[: len(data) // 2], "cannot load"),
        (lambda data: data[:6], "cannot load"),
        (lambda data: np.random.default_rng(0).bytes(500), "cannot load"),
    ],
    ids=["empty", "half", "header-cut", "random"],
)
def test_bad_files(tmp_path, tensors, damage, message):
    good = tmp_path / "good.safetensors"
    save_file(tensors, good)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(BadInput, match=message) as info:
        read_safetensors(bad)
    assert "bad.safetensors" in info.value.format_message()


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="No such file"):
        read_safetensors(tmp_path / "nope.safetensors")
