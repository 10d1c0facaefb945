import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from srjs.convert.torch_pickle import extract_state_dict, read_torch_checkpoint
from srjs.errors import BadInput

FORMATS = {
    "zip": {},
    "legacy": {"_use_new_zipfile_serialization": False},
}


def _np(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy()


def _tensors() -> OrderedDict:
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(6, 5, generator=g)
    return OrderedDict(
        conv=torch.randn(4, 3, 3, 3, generator=g),
        bias=torch.randn(4, generator=g, dtype=torch.float64),
        transposed=torch.randn(3, 5, generator=g).t(),
        half=torch.randn(2, 7, generator=g).half(),
        bf16=torch.randn(9, generator=g).bfloat16(),
        ints=torch.randint(-1000, 1000, (3, 2), generator=g),
        int32=torch.randint(-5, 5, (5,), generator=g, dtype=torch.int32),
        mask=torch.tensor([True, False, True]),
        scalar=torch.tensor(3.5),
        empty=torch.zeros(0, 4),
        rows=shared[1:4],
        cols=shared[:, 2],
        param=torch.nn.Parameter(torch.randn(2, 2, generator=g)),
    )


def _assert_same(loaded: dict, expected: dict) -> None:
    assert list(loaded) == list(expected)
    for key, tensor in expected.items():
        want = _np(tensor)
        got = loaded[key]
        assert isinstance(got, np.ndarray), key
        assert got.shape == want.shape, key
        assert got.dtype == want.dtype, key
        np.testing.assert_array_equal(got, want, err_msg=key)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tensors_round_trip_exactly(tmp_path, fmt):
    tensors = _tensors()
    path = tmp_path / "w.pth"
    torch.save(tensors, path, **FORMATS[fmt])
    loaded = read_torch_checkpoint(path)
    assert isinstance(loaded, OrderedDict)
    _assert_same(loaded, tensors)
    assert loaded["half"].dtype == np.float32 and loaded["bf16"].dtype == np.float32
    assert loaded["bias"].dtype == np.float64 and loaded["ints"].dtype == np.int64
    assert loaded["transposed"].flags.c_contiguous


@pytest.mark.parametrize("fmt", FORMATS)
def test_storage_offsets_and_sharing(tmp_path, fmt):
    # Two views of one storage at non-zero offsets, one strided: offset and stride must apply.
    base = torch.arange(24, dtype=torch.float32)
    views = {"a": base[5:11].view(2, 3), "b": base.view(4, 6)[1:, ::2], "c": base}
    assert views["a"].untyped_storage().data_ptr() == views["b"].untyped_storage().data_ptr()
    path = tmp_path / "v.pth"
    torch.save(views, path, **FORMATS[fmt])
    loaded = read_torch_checkpoint(path)
    np.testing.assert_array_equal(loaded["a"], [[5, 6, 7], [8, 9, 10]])
    np.testing.assert_array_equal(loaded["b"], np.arange(24).reshape(4, 6)[1:, ::2])
    np.testing.assert_array_equal(loaded["c"], np.arange(24))
    loaded["a"][0, 0] = -1  # copies, not views of one buffer
    assert loaded["c"][5] == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_module_state_dict_and_nested_containers(tmp_path, fmt):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ckpt = {
        "params_ema": net.state_dict(), "iter": 7, "meta": ["x", (1, 2.5)], "flag": None,
        "dtype": torch.float16,
    }
    path = tmp_path / "m.pth"
    torch.save(ckpt, path, **FORMATS[fmt])
    loaded = read_torch_checkpoint(path)
    assert loaded["iter"] == 7 and loaded["meta"] == ["x", (1, 2.5)] and loaded["flag"] is None
    assert loaded["dtype"] == "torch.float16"
    _assert_same(loaded["params_ema"], net.state_dict())
    assert loaded["params_ema"]["1.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: OrderedDict(sd),
        lambda sd: {"params_ema": sd, "params": {"other.weight": torch.ones(1)}},
        lambda sd: {"params": sd, "iter": 3},
        lambda sd: {"state_dict": sd, "epoch": 1},
        lambda sd: {"model": sd},
        lambda sd: {"module." + k: v for k, v in sd.items()},
        lambda sd: {"params_ema": {"module." + k: v for k, v in sd.items()}},
    ],
    ids=["plain", "ordered", "params_ema", "params", "state_dict", "model", "module", "ema_module"],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_extract_state_dict(tmp_path, fmt, wrap):
    g = torch.Generator().manual_seed(1)
    sd = {
        "conv_first.weight": torch.randn(2, 3, 3, 3, generator=g),
        "conv_first.bias": torch.randn(2, generator=g),
    }
    path = tmp_path / "c.pth"
    torch.save(wrap(sd), path, **FORMATS[fmt])
    got = extract_state_dict(read_torch_checkpoint(path))
    assert sorted(got) == sorted(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(got[k], v.numpy())


def test_extract_state_dict_drops_non_arrays_and_rejects_empty():
    arr = np.ones(2, np.float32)
    assert list(extract_state_dict({"w": arr, "step": 3, "name": "x"})) == ["w"]
    with pytest.raises(BadInput, match="no tensors"):
        extract_state_dict({"iter": 1, "params": {}})
    with pytest.raises(BadInput, match="no tensors"):
        extract_state_dict([arr])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _assert_refused(path, marker):
    with pytest.raises(BadInput) as info:
        read_torch_checkpoint(path)
    msg = info.value.format_message()
    assert f"'{os.name}.system'" in msg and "checkpoints may only contain tensors" in msg
    assert "\n" not in msg
    assert not marker.exists()


def test_refuses_code_in_legacy_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "x": _Evil(marker)}, path, _use_new_zipfile_serialization=False)
    _assert_refused(path, marker)


def test_refuses_code_in_zip_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(2)}, good)
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps({"w": _Evil(marker)}, protocol=2)
            dst.writestr(item, data)
    _assert_refused(path, marker)


@pytest.mark.parametrize(
    "obj, refused",
    [
        (eval, "builtins.eval"),
        (torch.nn.Conv2d(1, 1, 1), "torch.nn.modules.conv.Conv2d"),
        (io.BytesIO, "_io.BytesIO"),
    ],
    ids=["eval", "module", "class"],
)
def test_refuses_other_globals(tmp_path, obj, refused):
    path = tmp_path / "x.pth"
    torch.save({"x": obj}, path)
    with pytest.raises(BadInput, match=f"asks to import '{refused}'"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_bare_storage_is_not_a_tensor(tmp_path, fmt):
    path = tmp_path / "s.pth"
    torch.save({"s": torch.ones(3).untyped_storage()}, path, **FORMATS[fmt])
    with pytest.raises(BadInput, match="bare storages"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_checkpoint(tmp_path, fmt):
    full = tmp_path / "full.pth"
    torch.save(_tensors(), full, **FORMATS[fmt])
    data = full.read_bytes()
    half = tmp_path / "half.pth"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="cannot load '.*half.pth': .*truncated"):
        read_torch_checkpoint(half)


def test_truncated_legacy_storages(tmp_path):
    # Cut inside the raw storage bytes that follow the pickles.
    full = tmp_path / "full.pth"
    torch.save({"w": torch.randn(1000)}, full, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(BadInput, match="truncated"):
        read_torch_checkpoint(cut)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (np.random.default_rng(0).bytes(4096), "not a PyTorch checkpoint"),
        (b"\x80\x02" + np.random.default_rng(1).bytes(100), "cannot load"),
        (b"PK\x03\x04" + bytes(200), "cannot load"),
    ],
    ids=["empty", "random", "pickle-garbage", "zip-garbage"],
)
def test_garbage_is_bad_input(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message) as info:
        read_torch_checkpoint(path)
    assert "\n" not in info.value.format_message()


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="cannot read"):
        read_torch_checkpoint(tmp_path / "nope.pth")


def test_zip_without_pickle(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a/readme.txt", "hi")
    with pytest.raises(BadInput, match="without data.pkl"):
        read_torch_checkpoint(path)


def test_zip_storage_too_small_for_tensor(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.arange(10.0)}, good)
    path = tmp_path / "short.pth"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if "/data/" in item.filename:
                data = data[:16]
            dst.writestr(item, data)
    with pytest.raises(BadInput, match="reaches past its storage"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tensors_with_python_attributes(tmp_path, fmt):
    # torch pickles these through _rebuild_from_type_v2 / _rebuild_parameter_with_state.
    t = torch.arange(3.0)
    t.note = "x"
    p = torch.nn.Parameter(torch.full((2,), 4.0))
    p.tag = 1
    path = tmp_path / "a.pth"
    torch.save({"t": t, "p": p}, path, **FORMATS[fmt])
    loaded = read_torch_checkpoint(path)
    np.testing.assert_array_equal(loaded["t"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(loaded["p"], [4.0, 4.0])


def test_big_endian_zip(tmp_path):
    # Checkpoints written on big-endian machines say so in <prefix>/byteorder.
    g = torch.Generator().manual_seed(2)
    tensors = {
        "f": torch.randn(3, 2, generator=g),
        "h": torch.randn(4, generator=g).half(),
        "b": torch.randn(5, generator=g).bfloat16(),
        "i": torch.arange(-3, 3),
    }
    little = tmp_path / "little.pth"
    torch.save(tensors, little)
    # torch numbers storages data/0, data/1, ... in the order the pickle first meets them.
    itemsize = {str(n): t.element_size() for n, t in enumerate(tensors.values())}
    big = tmp_path / "big.pth"
    with zipfile.ZipFile(little) as src, zipfile.ZipFile(big, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            folder, _, key = item.filename.rpartition("/")
            if key == "byteorder":
                data = b"big"
            elif folder.endswith("/data"):
                n = itemsize[key]
                data = np.frombuffer(data, f"<u{n}").astype(f">u{n}").tobytes()
            dst.writestr(item, data)
    _assert_same(read_torch_checkpoint(big), tensors)


class _FakeTensor:
    """Pickles as old torch (<= 1.x legacy format) did a tensor on a view of a storage."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        return (torch._utils._rebuild_tensor, self.args)


class _StorageRef:
    def __init__(self, pid):
        self.pid = pid


def test_legacy_storage_views(tmp_path):
    # Storage views (view_metadata) no longer come out of torch.save but exist in old files;
    # torch.load is the reference for what they mean.
    values = np.arange(10, dtype="<f4")
    root = _StorageRef(("storage", torch.FloatStorage, "root", "cpu", 10, None))
    view = _StorageRef(("storage", torch.FloatStorage, "root", "cpu", 10, ("view", 2, 6)))
    obj = {
        "whole": _FakeTensor(root, 1, (2, 2), (1, 2)),
        "part": _FakeTensor(view, 1, (2, 2), (2, 1)),
    }

    class LegacyPickler(pickle.Pickler):
        def persistent_id(self, o):
            return o.pid if isinstance(o, _StorageRef) else None

    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    LegacyPickler(buf, protocol=2).dump(obj)
    pickle.dump(["root"], buf, protocol=2)
    buf.write(np.int64(10).astype("<i8").tobytes() + values.tobytes())
    path = tmp_path / "old.pth"
    path.write_bytes(buf.getvalue())

    expected = torch.load(path, weights_only=False)
    loaded = read_torch_checkpoint(path)
    np.testing.assert_array_equal(loaded["whole"], expected["whole"].numpy())
    np.testing.assert_array_equal(loaded["part"], expected["part"].numpy())
    np.testing.assert_array_equal(loaded["part"], [[3, 4], [5, 6]])
