"""Property tests for every reader of user bytes outside Keras/TF.js configs: PyTorch pickles,
safetensors headers, ncnn .param/.bin pairs, images and .npy files. Whatever the bytes, the
reader returns or raises BadInput (exit 2, one line); never another exception.

Inputs are valid seed files with a few byte-level mutations (flips, cuts, inserts), files
built from fuzzed structure (pickle streams with valid zip CRCs, safetensors headers, .param
tokens, .npy headers), and plain random bytes. One CLI-level run per reader checks the exit
code and that nothing is written on refusal.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srjs.errors import BadInput
from tests.conftest import run_cli

import torch  # noqa: E402  (the test extra; seeds are real torch.save files)

_SETTINGS = dict(deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                        HealthCheck.data_too_large])


def fuzz(examples: int):
    return settings(max_examples=examples, **_SETTINGS)


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed with up to four byte-level edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    rnd = draw(st.randoms(use_true_random=False))  # positions spread over the file (draws of
    for _ in range(draw(st.integers(1, 4))):     # integers lean to 0: every edit would hit the magic)
        if not data:
            break
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        i = rnd.randrange(len(data))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[i:i + draw(st.integers(1, 16))]
    return bytes(data)


def mostly(common, rare, share: float = 0.85):
    """`common` with probability `share`, else `rare` (one_of picks uniformly, and dedupes)."""
    return st.randoms(use_true_random=False).flatmap(lambda rnd: common if rnd.random() < share else rare)


def any_bytes(seeds: list[bytes]):
    """Mostly mutated seeds (they get past the first checks), sometimes noise."""
    return mostly(mutated(seeds), st.binary(max_size=200))


def expect_ok_or_bad_input(read, *args):
    """read(*args), or BadInput with a one-line message; anything else fails the test."""
    try:
        return read(*args)
    except BadInput as err:
        assert err.message and "\n" not in err.message, err.message
        return None


def assert_cli_exit(result, out: Path) -> None:
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not out.exists()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- PyTorch pickles --------------------------------------------------------------------

def _torch_seed(legacy: bool) -> bytes:
    torch.manual_seed(0)
    state = {"params_ema": {"conv.weight": torch.randn(2, 3, 1, 1), "conv.bias": torch.randn(2).half()},
             "step": 3, "names": ("a", [1.5, None])}
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


PTH_SEEDS = [_torch_seed(False), _torch_seed(True)]


def _zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


_ZIP_SEED_MEMBERS = _zip_members(PTH_SEEDS[0])


@st.composite
def pth_with_fuzzed_pickle(draw) -> bytes:
    """A well-formed zip checkpoint whose data.pkl (or a storage) is mutated: CRCs stay valid,
    so the bytes reach the restricted unpickler and the storage reader."""
    members = list(_ZIP_SEED_MEMBERS)
    index = draw(st.sampled_from([i for i, (name, _) in enumerate(members)
                                  if name.endswith(("data.pkl", "/0", "/1", "byteorder"))]))
    name, data = members[index]
    members[index] = (name, draw(mutated([data])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for member, payload in members:
            zf.writestr(member, payload)
    return buffer.getvalue()


def _read_pth(path: Path):
    from srjs.convert.torch_pickle import extract_state_dict, read_torch_checkpoint

    return extract_state_dict(read_torch_checkpoint(path))


@fuzz(120)
@given(data=st.one_of(any_bytes(PTH_SEEDS), pth_with_fuzzed_pickle()))
def test_any_pth_reads_or_is_bad_input(scratch, data):
    path = scratch / "fuzz.pth"
    path.write_bytes(data)
    weights = expect_ok_or_bad_input(_read_pth, path)
    assert weights is None or all(isinstance(v, np.ndarray) for v in weights.values())


# --- safetensors headers ----------------------------------------------------------------

_ints = st.one_of(st.integers(-2, 40), st.integers(-2**64, 2**64), st.just(2**63 - 1))
_tensor = st.fixed_dictionaries({
    "dtype": st.one_of(st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "X"]),
                       st.integers(), st.none()),
    "shape": st.one_of(st.lists(_ints, max_size=4), st.text(max_size=3), st.none()),
    "data_offsets": st.one_of(st.lists(_ints, min_size=2, max_size=2), st.lists(_ints, max_size=3), st.text(max_size=3)),
})
_header = st.dictionaries(st.one_of(st.text(max_size=6), st.just("__metadata__")),
                          st.one_of(_tensor, st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
                                    st.integers(), st.text(max_size=4)), max_size=4)


_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


@st.composite
def consistent_header(draw) -> tuple[dict, int]:
    """A header whose tensors tile the data exactly (what a writer makes), and the data size."""
    header, offset = {}, 0
    for i in range(draw(st.integers(1, 3))):
        dtype = draw(st.sampled_from(sorted(_DTYPE_BYTES)))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        size = int(np.prod(shape)) * _DTYPE_BYTES[dtype]
        header[f"t{i}.weight"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if draw(st.booleans()):
        header["__metadata__"] = {"format": "pt"}
    return header, offset


@st.composite
def safetensors_file(draw) -> bytes:
    """Mostly consistent headers with at most one field corrupted; sometimes any JSON-ish header."""
    if draw(st.randoms(use_true_random=False)).random() < 0.8:
        header, size = draw(consistent_header())
        if draw(st.booleans()):
            tensor = header[draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))]
            field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
            tensor[field] = draw(_tensor)[field]
        data = bytes(size + draw(st.sampled_from([0, 0, 0, -1, 1, 8])) if size else draw(st.integers(0, 2)))
    else:
        header, data = draw(_header), draw(st.binary(max_size=96))
    text = json.dumps(header).encode()
    declared = draw(mostly(st.just(len(text)), st.one_of(st.integers(0, 2**64 - 1), st.integers(0, len(text) + 8))))
    return struct.pack("<Q", declared) + text + data


def _safetensors_seed() -> bytes:
    from safetensors.numpy import save

    return save({"conv.weight": np.ones((2, 3, 1, 1), np.float32), "conv.bias": np.zeros(2, np.float16)})


@fuzz(120)
@given(data=st.one_of(safetensors_file(), any_bytes([_safetensors_seed()])))
def test_any_safetensors_reads_or_is_bad_input(scratch, data):
    from srjs.convert.safetensors_reader import read_safetensors

    path = scratch / "fuzz.safetensors"
    path.write_bytes(data)
    weights = expect_ok_or_bad_input(read_safetensors, path)
    assert weights is None or all(isinstance(v, np.ndarray) for v in weights.values())


# --- ncnn .param / .bin -----------------------------------------------------------------

def _ncnn_seeds(root: Path) -> list[tuple[str, bytes]]:
    from tests.convert.test_ncnn import rrdbnet_pair, srvgg_pair

    rng = np.random.default_rng(0)
    pairs = []
    for i, make in enumerate((srvgg_pair, rrdbnet_pair)):
        folder = root / f"seed{i}"
        folder.mkdir(parents=True, exist_ok=True)
        param = make(folder, rng)
        pairs.append((param.read_text(), param.with_suffix(".bin").read_bytes()))
    return pairs


_TOKENS = st.sampled_from(["0", "1", "-1", "2", "3", "4", "108", "216.0", "1e999", "-1e999", "nan", "inf",
                           "x", "=", "0=", "6=-108", "0=4.0", "6=216.0", "99999999999999", "-23310=1,2.0e-01",
                           "-23310=-1", "-23310=2,1", "-23301=2,1.0,x", "1=2.5", "Split", "Convolution",
                           "Interp", "PReLU", "data", "7767517", "0=3 1=4.0e+00 2=4.0e+00"])


_RESPELL = st.sampled_from(["{v}.0"] * 4 + ["-{v}", "-{v}", "{v}e0", "1e999", "-1e999", "nan", "{v}0", "0x{v}",
                                             "+{v}", "{v},{v}", "", "{v}=", "99999999999", "-2147483649"])


@st.composite
def ncnn_pair(draw, seeds) -> tuple[str, bytes]:
    text, weights = draw(st.sampled_from(seeds))
    lines = [line.split() for line in text.splitlines()]
    rnd = draw(st.randoms(use_true_random=False))
    ops = []
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(["token"] * 4 + ["respell"] * 4 + ["add", "drop_line", "dup_line", "counts"]))
        ops.append(op)
        i = rnd.randrange(len(lines))
        if op == "token" and lines[i]:
            lines[i][rnd.randrange(len(lines[i]))] = draw(_TOKENS)
        elif op == "respell":  # the same param value spelled otherwise: 4 -> 4.0, -4, 4e0, 1e999, ...
            params = [j for j, token in enumerate(lines[i]) if "=" in token]
            if params:
                j = params[rnd.randrange(len(params))]
                key, _, value = lines[i][j].partition("=")
                lines[i][j] = f"{key}=" + draw(_RESPELL).format(v=value)
        elif op == "add":
            lines[i].append(draw(_TOKENS))
        elif op == "drop_line" and len(lines) > 1:
            del lines[i]
        elif op == "dup_line":
            lines.insert(i, list(lines[i]))
        elif op == "counts" and len(lines) > 1:
            lines[1] = [draw(_TOKENS), draw(_TOKENS)]
    if "counts" not in ops and len(lines) > 2 and len(lines[1]) == 2 and draw(st.integers(0, 3)):
        lines[1][0] = str(len(lines) - 2)  # keep the layer count right: reach the deeper checks
    if rnd.random() < 0.25:
        weights = draw(mutated([weights]))
    return "\n".join(" ".join(line) for line in lines) + "\n", weights


def _read_ncnn(param: Path, weights: Path):
    from srjs.convert.ncnn import read_ncnn

    return read_ncnn(param, weights)


def test_any_ncnn_pair_reads_or_is_bad_input(scratch):
    seeds = _ncnn_seeds(scratch / "ncnn-seeds")

    @fuzz(200)
    @given(pair=mostly(ncnn_pair(seeds), st.tuples(st.one_of(st.text(max_size=120), st.binary(max_size=120)),
                                                   st.binary(max_size=64))))
    def check(pair):
        text, weights = pair
        param, bin_path = scratch / "fuzz.param", scratch / "fuzz.bin"
        param.write_bytes(text.encode() if isinstance(text, str) else text)
        bin_path.write_bytes(weights)
        checkpoint = expect_ok_or_bad_input(_read_ncnn, param, bin_path)
        assert checkpoint is None or all(np.isfinite(v).all() for v in checkpoint.weights.values())

    check()


# --- images and .npy --------------------------------------------------------------------

@contextlib.contextmanager
def _small_pixel_limit():
    """Mutated headers may declare huge sizes: decode at most 64k pixels while fuzzing."""
    from srjs import imageio

    saved = os.environ.get(imageio.MAX_PIXELS_ENV)
    os.environ[imageio.MAX_PIXELS_ENV] = str(1 << 16)
    try:
        yield
    finally:
        if saved is None:
            del os.environ[imageio.MAX_PIXELS_ENV]
        else:
            os.environ[imageio.MAX_PIXELS_ENV] = saved


def _image_seeds(root: Path) -> list[tuple[str, bytes]]:
    import tifffile
    from PIL import Image

    from tests.test_image_inputs import png16

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (16, 12, 3), dtype=np.uint8)  # big enough that edits reach pixel data
    seeds = []

    def save(name: str, image, **options):
        buffer = io.BytesIO()
        image.save(buffer, format=name.split(".")[-1].replace("jpg", "jpeg").replace("tif", "tiff"), **options)
        seeds.append((name, buffer.getvalue()))

    save("rgb.png", Image.fromarray(rgb))
    save("rgba.png", Image.fromarray(np.dstack([rgb, rgb[..., 0]]), "RGBA"))
    save("p.png", Image.fromarray(rgb).convert("P"))
    save("g16.png", Image.fromarray(rng.integers(0, 65535, (5, 4)).astype(np.uint16)))
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6
    save("photo.jpg", Image.fromarray(rgb), exif=exif)
    save("x.bmp", Image.fromarray(rgb))
    save("x.webp", Image.fromarray(rgb), lossless=True)
    seeds.append(("rgb16.png", png16(root / "rgb16.png", rng.integers(0, 65535, (4, 3, 3)).astype(np.uint16)).read_bytes()))
    tifffile.imwrite(root / "rgb16.tif", rng.integers(0, 65535, (4, 3, 3)).astype(np.uint16), photometric="rgb")
    seeds.append(("rgb16.tif", (root / "rgb16.tif").read_bytes()))
    return seeds


@st.composite
def image_file(draw, seeds) -> tuple[str, bytes]:
    name, data = draw(st.sampled_from(seeds))
    return name, draw(mostly(mutated([data]), st.binary(max_size=64)))


def _read(path: Path):
    from srjs import imageio

    return imageio.read_image(path, 1.0)


def test_any_image_reads_or_is_bad_input(scratch):
    seeds = _image_seeds(scratch)

    @fuzz(150)
    @given(file=image_file(seeds))
    def check(file):
        name, data = file
        path = scratch / f"fuzz-{name}"
        path.write_bytes(data)
        with _small_pixel_limit():
            got = expect_ok_or_bad_input(_read, path)
        if got is not None:
            rgb, alpha = got
            assert rgb.ndim == 3 and rgb.shape[-1] == 3 and np.isfinite(rgb).all()
            assert 0.0 <= rgb.min() and rgb.max() <= 1.0
            assert alpha is None or (alpha.dtype == np.uint8 and alpha.shape == rgb.shape[:2])

    check()


_DESCR = st.sampled_from(["<f4", "<f8", "|u1", "|b1", "<i2", ">f4", "<f2", "<U1", "|S2", "|O", "<c8",
                          "|V8", "<M8[s]", "[('a', '<f4')]", "('<f4', (2,))", "junk"])


@st.composite
def npy_file(draw) -> bytes:
    """A .npy with a fuzzed header (dtype, order, shape) and some data."""
    shape = draw(st.one_of(st.lists(st.one_of(st.integers(-1, 4), st.integers(0, 2**62)), max_size=4).map(tuple),
                           st.text(max_size=4)))
    descr = draw(_DESCR)
    descr = descr if descr.startswith(("[", "(")) else repr(descr)
    header = (f"{{'descr': {descr}, 'fortran_order': {draw(st.booleans())}, 'shape': {shape!r}, }}"
              .encode().ljust(draw(st.integers(0, 128))) + b"\n")
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x09"]))
    size = struct.pack("<H" if version == b"\x01\x00" else "<I", min(len(header), 65535))
    return b"\x93NUMPY" + version + size + header + draw(st.binary(max_size=64))


def _npy_seed(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


NPY_SEEDS = [_npy_seed(np.ones((2, 2, 3), np.float32)), _npy_seed(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))]


@fuzz(120)
@given(data=st.one_of(npy_file(), mutated(NPY_SEEDS)))
def test_any_npy_reads_or_is_bad_input(scratch, data):
    path = scratch / "fuzz.npy"
    path.write_bytes(data)
    with _small_pixel_limit():
        got = expect_ok_or_bad_input(_read, path)
    if got is not None:
        assert got[0].dtype == np.float32 and got[0].ndim == 3 and np.isfinite(got[0]).all()


# --- one CLI-level run per reader -------------------------------------------------------

def test_fuzzed_files_through_the_cli_exit_0_or_2(scratch, tiny_x4_dir):
    """`srjs convert` / `srjs upscale` on a few fuzzed files of each kind: exit 0, or exit 2 with
    one line and no output left behind."""
    ncnn_seeds = _ncnn_seeds(scratch / "cli-ncnn-seeds")
    image_seeds = _image_seeds(scratch)
    count = {"n": 0}

    @fuzz(12)
    @given(kind=st.sampled_from(["pth", "safetensors", "param", "image", "npy"]), data=st.data())
    def check(kind, data):
        count["n"] += 1
        folder = scratch / f"cli{count['n']}"
        folder.mkdir()
        out = folder / "out"
        if kind in ("pth", "safetensors"):
            source = folder / f"in.{kind}"
            source.write_bytes(data.draw(any_bytes(PTH_SEEDS) if kind == "pth" else safetensors_file()))
            result = run_cli("convert", source, "-o", out, "--no-tfjs")
        elif kind == "param":
            text, weights = data.draw(ncnn_pair(ncnn_seeds))
            (folder / "in.param").write_text(text)
            (folder / "in.bin").write_bytes(weights)
            result = run_cli("convert", folder / "in.param", "-o", out, "--no-tfjs")
        else:
            name, payload = data.draw(image_file(image_seeds)) if kind == "image" else ("in.npy", data.draw(npy_file()))
            source = folder / f"in-{name}"
            source.write_bytes(payload)
            out = folder / "out.png"
            with _small_pixel_limit():
                result = run_cli("upscale", tiny_x4_dir, source, "-o", out)
        assert_cli_exit(result, out)

    check()
