"""The ESRGAN family as people hold it, against spandrel (tests/spandrel_ref.py).

Random-weight models from spandrel's own torch classes over a grid of key layouts (old-arch
ESRGAN, BasicSR / Real-ESRGAN, BSRGAN / RealSR), scales (upconv stacks 1-16x, pixel-unshuffle
2x / 1x), image channels (1, 3, 4), ESRGAN+ blocks and Compact activations, saved as .pth and
.safetensors. Whole grid: srjs's detection equals spandrel's (cheap, pure numpy on srjs's
side). A representative subset: srjs's Keras model matches spandrel's forward within 1e-4 of
the output's range. Plus one Node wasm verify per family (slow).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests import spandrel_ref as ref  # stubs torchvision, then imports spandrel

from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402

from srjs.archs import detect_arch, get_arch  # noqa: E402
from srjs.convert.detect import build_model  # noqa: E402
from srjs.convert.sources import read_checkpoint  # noqa: E402
from srjs.errors import BadInput  # noqa: E402

TOL = 1e-4  # max |srjs - spandrel| / output range
FORMATS = (".pth", ".safetensors")
random_model = ref.random_model


def spandrel_reads(source) -> dict:
    """spandrel's detection of a file path or a state dict, in tests/spandrel_ref.describe's words."""
    return ref.describe(ref.detect(source))


# --- RRDBNet -------------------------------------------------------------------------------

# name -> (spandrel ESRGAN scale, shuffle_factor): what the weights say, and the true scale
RRDB_SCALES = {"x1": (1, None), "x2": (2, None), "x4": (4, None), "x8": (8, None), "x16": (16, None),
               "x2-unshuffle": (4, 2), "x1-unshuffle": (4, 4)}
CHANNELS = (1, 3, 4)


def _old_to(layout: str, state: dict) -> dict:
    """spandrel's old-arch names -> BasicSR ('basicsr') or BSRGAN / RealSR ('bsrgan') names."""
    if layout == "old":
        return dict(state)
    top = sorted({int(m[1]) for k in state if (m := re.match(r"model\.(\d+)\.(weight|bias)$", k))} - {0})
    *ups, hr, last = top
    nb = max(int(m[1]) for k in state if (m := re.match(r"model\.1\.sub\.(\d+)\.weight$", k)))
    basicsr = layout == "basicsr"
    names = {0: "conv_first", hr: "conv_hr" if basicsr else "HRconv", last: "conv_last",
             **{i: (f"conv_up{n}" if basicsr else f"upconv{n}") for n, i in enumerate(ups, 1)}}
    out = {}
    for key, value in state.items():
        if m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$", key):
            b, r, c, p = m.groups()
            out[f"body.{b}.rdb{r}.conv{c}.{p}" if basicsr else f"RRDB_trunk.{b}.RDB{r}.conv{c}.{p}"] = value
        elif m := re.match(rf"model\.1\.sub\.{nb}\.(weight|bias)$", key):
            out[f"{'conv_body' if basicsr else 'trunk_conv'}.{m[1]}"] = value
        elif m := re.match(r"model\.(\d+)\.(weight|bias)$", key):
            out[f"{names[int(m[1])]}.{m[2]}"] = value
        else:
            raise AssertionError(f"no {layout} name for {key}")
    return out


def _rrdb_case(layout, scale_name, channels, plus):
    return pytest.param(layout, scale_name, channels, plus,
                        id=f"{layout}-{scale_name}-c{channels}{'-plus' if plus else ''}")


# spandrel maps only old-arch ESRGAN+ (conv1x1) names; ESRGAN+ was only released old-arch.
RRDB_GRID = [_rrdb_case(layout, s, c, plus) for layout in ("old", "basicsr", "bsrgan")
             for s in RRDB_SCALES for c in CHANNELS for plus in ((False, True) if layout == "old" else (False,))]


def rrdb_state(layout: str, scale_name: str, channels: int, plus: bool, nf: int = 8, nb: int = 1):
    """(spandrel torch model, its state dict in `layout`'s names). spandrel's ESRGAN fixes the
    growth channels at 32; tests/torch_reference covers other growths."""
    scale, shuffle = RRDB_SCALES[scale_name]
    model = random_model(ESRGAN, seed=channels * 31 + scale, in_nc=channels * (shuffle or 1) ** 2,
                             out_nc=channels, num_filters=nf, num_blocks=nb, scale=scale, plus=plus,
                             shuffle_factor=shuffle)
    return model, _old_to(layout, model.state_dict())


def expected_rrdbnet(found: dict) -> tuple[str, dict]:
    """srjs's (arch, params) in the words of spandrel's detection `found`."""
    assert found["arch"] == "ESRGAN"
    hp = found["hyperparameters"]
    return "rrdbnet", {
        "scale": found["scale"], "num_feat": hp["num_filters"], "num_block": hp["num_blocks"],
        "num_grow_ch": 32, "num_in_ch": found["input_channels"], "num_out_ch": found["output_channels"],
        "unshuffle": hp["shuffle_factor"] or 1, "plus": hp["plus"],
    }


@pytest.mark.parametrize("layout,scale_name,channels,plus", RRDB_GRID)
def test_rrdbnet_detection_equals_spandrel(tmp_path, layout, scale_name, channels, plus):
    _, state = rrdb_state(layout, scale_name, channels, plus)
    for suffix in FORMATS:
        path = ref.save(state, tmp_path / f"m{suffix}")
        want = expected_rrdbnet(spandrel_reads(path))
        ckpt = read_checkpoint(path)
        assert detect_arch({k: v.shape for k, v in ckpt.weights.items()}) == want, suffix
    true_scale = RRDB_SCALES[scale_name][0] // (RRDB_SCALES[scale_name][1] or 1)
    assert want[1]["scale"] == true_scale and want[1]["num_in_ch"] == channels


# --- SRVGGNetCompact -----------------------------------------------------------------------

COMPACT_GRID = [pytest.param(scale, c, act, id=f"x{scale}-c{c}-{act}")
                for scale in (1, 2, 3, 4, 8) for c in CHANNELS for act in ("prelu", "relu", "leakyrelu")]


def compact_state(scale, channels, act, nf=8, nc=2):
    model = random_model(Compact, seed=scale * 7 + channels, num_in_ch=channels, num_out_ch=channels,
                             num_feat=nf, num_conv=nc, upscale=scale, act_type=act)
    return model, model.state_dict()


@pytest.mark.parametrize("scale,channels,act", COMPACT_GRID)
def test_compact_detection_equals_spandrel(tmp_path, scale, channels, act):
    _, state = compact_state(scale, channels, act)
    for suffix in FORMATS:
        path = ref.save(state, tmp_path / f"m{suffix}")
        shapes = {k: v.shape for k, v in read_checkpoint(path).weights.items()}
        arch, params = detect_arch(shapes)
        if act != "prelu":
            # spandrel's Compact needs body.1.weight (a PReLU): it refuses relu / leakyrelu nets;
            # srjs reads them and says it assumed relu (see `assumed`).
            with pytest.raises(ref.UnsupportedModelError):
                spandrel_reads(path)
            assert get_arch("srvgg").assumed(shapes, params).keys() == {"act_type"}
            assert (arch, params) == ("srvgg", dict(scale=scale, num_feat=8, num_conv=2, act_type="relu",
                                                    num_in_ch=channels, num_out_ch=channels))
            continue
        d = spandrel_reads(path)
        hp = d["hyperparameters"]
        assert d["arch"] == "Compact"
        assert (arch, params) == ("srvgg", dict(
            scale=d["scale"], num_feat=hp["num_feat"], num_conv=hp["num_conv"], act_type=hp["act_type"],
            num_in_ch=d["input_channels"], num_out_ch=d["output_channels"])), suffix
        assert (params["scale"], params["num_in_ch"]) == (scale, channels)
        assert get_arch("srvgg").assumed(shapes, params) == {}


# --- forward parity on a subset ------------------------------------------------------------

def _max_rel_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max() / (theirs.max() - theirs.min()))


def _keras_forward(path: Path, x: np.ndarray, **arch_params):
    built = build_model(read_checkpoint(path), arch_params=arch_params)
    return built, built.model(x, training=False).numpy()


PARITY_RRDB = [  # every layout, scale route, channel count and ESRGAN+ at least once
    ("old", "x1", 3, False), ("old", "x2", 1, True), ("old", "x8", 4, False), ("old", "x16", 1, False),
    ("basicsr", "x4", 3, False), ("basicsr", "x2-unshuffle", 4, False), ("basicsr", "x1-unshuffle", 1, False),
    ("bsrgan", "x2", 3, False), ("bsrgan", "x4", 4, False),
]


@pytest.mark.parametrize("layout,scale_name,channels,plus", PARITY_RRDB,
                         ids=[f"{l}-{s}-c{c}{'-plus' if p else ''}" for l, s, c, p in PARITY_RRDB])
def test_rrdbnet_forward_matches_spandrel(tmp_path, layout, scale_name, channels, plus):
    model, state = rrdb_state(layout, scale_name, channels, plus)
    suffix = FORMATS[PARITY_RRDB.index((layout, scale_name, channels, plus)) % 2]
    path = ref.save(state, tmp_path / f"m{suffix}")
    x = np.random.default_rng(channels).random((1, 16, 16, channels), dtype=np.float32)
    built, ours = _keras_forward(path, x)
    theirs = ref.forward(model, x)
    assert built.channels == channels
    assert _max_rel_diff(ours, theirs) < TOL


PARITY_COMPACT = [(1, 3, "prelu"), (2, 1, "prelu"), (4, 4, "prelu"), (3, 3, "leakyrelu"), (1, 4, "relu"),
                  (8, 1, "relu")]


@pytest.mark.parametrize("scale,channels,act", PARITY_COMPACT, ids=[f"x{s}-c{c}-{a}" for s, c, a in PARITY_COMPACT])
def test_compact_forward_matches_spandrel(tmp_path, scale, channels, act):
    model, state = compact_state(scale, channels, act)
    path = ref.save(state, tmp_path / "m.safetensors")
    x = np.random.default_rng(scale).random((1, 16, 16, channels), dtype=np.float32)
    override = {"act_type": act} if act == "leakyrelu" else {}  # weights cannot say leakyrelu
    built, ours = _keras_forward(path, x, **override)
    assert _max_rel_diff(ours, ref.forward(model, x)) < TOL
    assert built.assumed == ({"act_type": built.assumed.get("act_type")} if act == "relu" else {})


def test_leakyrelu_compact_differs_without_the_override(tmp_path):
    """The assumption is visible: without --arch-param the leakyrelu net is run as relu."""
    model, state = compact_state(2, 3, "leakyrelu")
    path = ref.save(state, tmp_path / "m.pth")
    x = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32) - 0.5
    built, ours = _keras_forward(path, x)
    assert built.params["act_type"] == "relu" and "act_type" in built.assumed
    assert _max_rel_diff(ours, ref.forward(model, x)) > 100 * TOL


def test_growth_channels_other_than_32_are_read(tmp_path):
    """spandrel's ESRGAN fixes gc=32; srjs reads it from conv1 (BasicSR reference forward)."""
    from tests.torch_reference import RRDBNet, randomize, run_nhwc

    net = randomize(RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4))
    path = ref.save(net.state_dict(), tmp_path / "m.pth")
    x = np.random.default_rng(1).random((1, 16, 16, 3), dtype=np.float32)
    built, ours = _keras_forward(path, x)
    assert built.params["num_grow_ch"] == 4
    assert _max_rel_diff(ours, run_nhwc(net, x)) < TOL


# --- wrappers, overrides and refusals ------------------------------------------------------

def test_wrappers_are_canonicalised_like_spandrel(tmp_path):
    import torch

    model, state = rrdb_state("basicsr", "x4", 3, False)
    wrapped = {"params_ema": {f"netG.module.{k}": v for k, v in state.items()}}
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    shapes = {k: v.shape for k, v in read_checkpoint(path).weights.items()}
    assert detect_arch(shapes) == expected_rrdbnet(spandrel_reads(state))
    safe = ref.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "prefixed.safetensors")
    assert set(read_checkpoint(safe).weights) == set(state)


@pytest.mark.parametrize("wrap", ["model_state_dict", "params-ema", "net", "any-single-key"])
def test_every_spandrel_wrapper_key_is_unwrapped(tmp_path, wrap):
    import torch

    _, state = compact_state(2, 3, "prelu")
    torch.save({wrap: state}, tmp_path / "m.pth")
    assert set(read_checkpoint(tmp_path / "m.pth").weights) == set(state)


def test_arch_param_values_parse_as_json_else_text():
    from srjs.convert.detect import parse_arch_params

    assert parse_arch_params(["act_type=leakyrelu", "img_range=1", "rgb_mean=[0.5, 0.5, 0.5]", "plus=true"]) == {
        "act_type": "leakyrelu", "img_range": 1, "rgb_mean": [0.5, 0.5, 0.5], "plus": True}
    with pytest.raises(BadInput, match="--arch-param takes NAME=VALUE, not 'leakyrelu'"):
        parse_arch_params(["leakyrelu"])


def test_unknown_arch_param_and_impossible_unshuffle_are_bad_input(tmp_path):
    _, state = compact_state(2, 3, "relu")
    ckpt = read_checkpoint(ref.save(state, tmp_path / "m.pth"))
    with pytest.raises(BadInput, match=r"--arch-param img_range: 'srvgg' has no such parameter"):
        build_model(ckpt, arch_params={"img_range": 255})
    # an old-arch x1 trunk fed a 2x-unshuffled image would shrink it: refused with the reason
    _, state = rrdb_state("old", "x1", 3, False)
    state["model.0.weight"] = state["model.0.weight"].repeat(1, 4, 1, 1)
    with pytest.raises(BadInput, match=r"only 0 upconv\(s\) follow"):
        build_model(read_checkpoint(ref.save(state, tmp_path / "bad.pth")))


def test_mismatched_image_channels_are_refused(tmp_path):
    model = random_model(ESRGAN, in_nc=3, out_nc=2, num_filters=8, num_blocks=1, scale=2)
    ckpt = read_checkpoint(ref.save(model.state_dict(), tmp_path / "m.pth"))
    with pytest.raises(BadInput, match="takes 3 and gives 2 image channels"):
        build_model(ckpt)


# --- grayscale and RGBA models end to end --------------------------------------------------

GRAY_RRDB = ("old", "x2", 1, False)  # a manga-style grayscale ESRGAN, old-arch keys
RGBA_COMPACT = (2, 4, "prelu")  # an RGBA Compact


@pytest.fixture(scope="module")
def channel_models(tmp_path_factory):
    """{'gray': (model dir, checkpoint), 'rgba': ...}: converted without TF.js (Python paths)."""
    from srjs.convert.run import convert_checkpoint

    root = tmp_path_factory.mktemp("channels")
    _, gray = rrdb_state(*GRAY_RRDB)
    _, rgba = compact_state(*RGBA_COMPACT)
    out = {}
    for name, state in (("gray", gray), ("rgba", rgba)):
        path = ref.save(state, root / f"{name}.safetensors")
        out[name] = (convert_checkpoint(str(path), root / name, export_tfjs=False), path)
    return {name: (root / name, path) for name, (_, path) in out.items()}


def _photo(h: int = 12, w: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (h, w), dtype=np.uint8)


def test_manifest_records_channels_cost_and_assumptions(channel_models):
    from srjs import modeldir
    from srjs.optimize.channels import conv_macs

    gray = modeldir.read_manifest(channel_models["gray"][0])
    rgba = modeldir.read_manifest(channel_models["rgba"][0])
    assert (gray.channels, rgba.channels) == (1, 4)
    assert gray.arch_params["unshuffle"] == 1 and gray.arch_params_assumed == {}
    model = modeldir.load_keras(channel_models["gray"][0])
    assert gray.cost == {"params": int(sum(np.prod(w.shape) for w in model.weights)),
                         "conv_macs_per_pixel": round(sum(conv_macs(model).values()), 1)}
    # old-arch x2, nf 8, gc 32, one upconv: conv_first 1*8*9 + upconv 8*8*9*4 + hr/last at 4 px/px
    assert gray.cost["conv_macs_per_pixel"] > 8 * 8 * 9 * 4 * 3


def test_upscale_feeds_grayscale_luminance_and_rgba_alpha(channel_models, tmp_path):
    from PIL import Image

    from srjs import modeldir
    from srjs.upscale import run_upscale

    rgb, alpha = _photo()
    src = tmp_path / "in.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    for name in ("gray", "rgba"):
        model_dir = channel_models[name][0]
        model = modeldir.load_keras(model_dir)
        if name == "gray":
            x = luma[None, ..., None] / 255.0
        else:
            x = np.dstack([rgb, alpha])[None] / 255.0
        want = np.asarray(model(x.astype(np.float32), training=False))[0]
        run_upscale(model_dir, src, tmp_path / f"{name}.png")
        got = np.asarray(Image.open(tmp_path / f"{name}.png"))
        expect = np.floor(np.clip(want, 0, 1) * 255 + 0.5)
        if name == "gray":  # luminance in, gray RGB out; the input's alpha is resized alongside
            assert got.shape == (24, 32, 4)
            for c in range(3):
                assert np.abs(got[..., c] - expect[..., 0]).max() <= 1
        else:  # the model's own 4th channel is the alpha
            assert np.abs(got.astype(np.int64) - expect).max() <= 1
        run_upscale(model_dir, src, tmp_path / f"{name}.npy")  # .npy keeps every model channel
        assert np.load(tmp_path / f"{name}.npy").shape == (24, 32, 1 if name == "gray" else 4)


def test_npy_input_must_have_the_models_channels(channel_models, tmp_path):
    from srjs.upscale import run_upscale

    np.save(tmp_path / "rgb.npy", np.zeros((8, 8, 3), np.float32))
    with pytest.raises(BadInput, match=r"has 3 channels; this model takes 1 \(grayscale\)"):
        run_upscale(channel_models["gray"][0], tmp_path / "rgb.npy", tmp_path / "out.png")
    np.save(tmp_path / "rgba.npy", np.full((8, 8, 4), 0.5, np.float32))
    run_upscale(channel_models["rgba"][0], tmp_path / "rgba.npy", tmp_path / "out.npy")
    assert np.load(tmp_path / "out.npy").shape == (16, 16, 4)


def test_override_and_assumption_reach_the_manifest(tmp_path):
    from srjs import modeldir
    from srjs.convert.run import convert_checkpoint

    _, state = compact_state(1, 3, "leakyrelu")
    path = ref.save(state, tmp_path / "m.pth")
    assumed = build_model(read_checkpoint(path))
    assert assumed.params["act_type"] == "relu" and "leakyrelu" in assumed.assumed["act_type"]
    chosen = convert_checkpoint(str(path), tmp_path / "b", export_tfjs=False, arch_params={"act_type": "leakyrelu"})
    assert chosen.arch_params["act_type"] == "leakyrelu" and chosen.arch_params_assumed == {}
    assert modeldir.read_manifest(tmp_path / "b").arch_params_assumed == {}


@pytest.fixture(scope="module")
def shipped_channel_models(tmp_path_factory):
    """The grayscale RRDBNet and RGBA Compact converted with every TF.js export."""
    from srjs.convert.run import convert_checkpoint

    root = tmp_path_factory.mktemp("channels-tfjs")
    out = {}
    for name, (_, state) in (("gray", rrdb_state(*GRAY_RRDB)), ("rgba", compact_state(*RGBA_COMPACT))):
        convert_checkpoint(str(ref.save(state, root / f"{name}.pth")), root / name)
        out[name] = root / name
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gray", "rgba"])
def test_verify_quantize_and_evaluate_in_tfjs(shipped_channel_models, tmp_path, name):
    """Per family: the layers and graph exports of a 1- / 4-channel model agree with Keras in
    Node wasm; a uint8 variant is calibrated on its channels and verifies too; evaluate scores it."""
    from srjs.evaluate.run import evaluate
    from srjs.optimize.recipe import Recipe
    from srjs.optimize.run import make_variant
    from srjs.verify import verify_model_dir

    model_dir = shipped_channel_models[name]
    report = verify_model_dir(model_dir, runtimes=("node",), backends={"node": ("wasm",)}, warm_runs=0)
    assert [(r.format, r.ok) for r in report.rows] == [("layers", True), ("graph", True)], report.rows
    assert report.input_shapes == [[1, 20, 28, 1 if name == "gray" else 4]]
    variant = make_variant(model_dir, tmp_path / "uint8", Recipe(quantize="uint8"))
    assert variant.channels == (1 if name == "gray" else 4)
    assert variant.results["heldout"]["fidelity_psnr_y"] > 25  # uint8 vs its float32 parent, dB
    report = verify_model_dir(tmp_path / "uint8", runtimes=("node",), backends={"node": ("wasm",)}, warm_runs=0)
    assert all(r.ok for r in report.rows), report.rows
    ev = evaluate([model_dir], limit=1, crop=32, latency_tiles=(0,), warm=1, seam=False, progress=False)
    row = next(r for r in ev.rows if r.path == str(model_dir))
    assert np.isfinite(row.psnr_y) and row.psnr_y > 0


@pytest.mark.slow
def test_package_definitions_adapt_channels_in_node(shipped_channel_models, tmp_path):
    """The package's UpscalerJS definitions turn RGB pixels into the model's channels and back,
    by the rule `srjs upscale` uses (image_channels), run with TF.js in Node."""
    import json
    import subprocess

    from srjs import image_channels
    from srjs.package import write_package
    from srjs.runtime import env

    pkg = write_package(list(shipped_channel_models.values()), tmp_path / "pkg", name="tiny-zoo",
                        version="0.1.0", exports=("layers", "graph"))
    rgb, _ = _photo(4, 6)
    outputs = {"gray": np.random.default_rng(1).random((1, 8, 12, 1)),
               "rgba": np.random.default_rng(2).random((1, 8, 12, 4))}
    entries = {"gray": "gray", "rgba": "rgba-graph"}
    script = tmp_path / "check.mjs"
    script.write_text(f"""
import {{ createRequire }} from 'node:module';
const tf = createRequire({json.dumps(str(env.js_dir() / 'package.json'))})('@tensorflow/tfjs');
const rgb = tf.tensor4d({json.dumps(rgb[None].tolist())}, undefined, 'int32');
const out = {{}};
for (const [name, entry] of Object.entries({json.dumps(entries)})) {{
  const def = (await import({json.dumps((pkg / 'dist/esm').as_uri())} + '/' + entry + '.mjs')).default;
  await def.setup(tf);
  const y = tf.tensor4d({json.dumps({k: v.tolist() for k, v in outputs.items()})}[name]);
  out[name] = {{ channels: def.meta.channels, pre: await def.preprocess(rgb).array(),
                post: await def.postprocess(y).array() }};
}}
console.log(JSON.stringify(out));
""")
    js = env.require_js_deps("node")
    done = subprocess.run([env.node(), str(script)], cwd=js, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    for name, channels in (("gray", 1), ("rgba", 4)):
        assert got[name]["channels"] == channels
        # UpscalerJS gives [0, 255] pixels and no alpha (opaque); its inputRange scaling follows
        want_pre = image_channels.to_model(rgb[None].astype(np.float32), None, channels, 255.0)
        assert np.abs(np.asarray(got[name]["pre"]) - want_pre).max() < 1e-3
        want_post = image_channels.from_model(outputs[name], channels)[0]
        assert np.abs(np.asarray(got[name]["post"]) - want_post).max() < 1e-6


@pytest.mark.slow
def test_upscalerjs_runs_grayscale_and_rgba_models(shipped_channel_models):
    """UpscalerJS 1.0.0 itself (Chromium) gives RGB and takes RGB: with the definition's channel
    adapters its output matches the Keras model under the same rule (luminance / opaque alpha)."""
    from srjs.verify import verify_model_dir

    for name, model_dir in shipped_channel_models.items():
        report = verify_model_dir(model_dir, runtimes=("upscalerjs",), backends={"upscalerjs": ("cpu",)},
                                  warm_runs=0)
        assert [(r.runtime, r.ok) for r in report.rows] == [("upscalerjs", True)], (name, report.rows)


@pytest.mark.slow
def test_channel_pruning_fine_tunes_on_the_models_channels(shipped_channel_models, tmp_path):
    """--prune-channels distils on patches in the model's channels (here RGBA): the variant
    keeps 4 channels, does less conv work and still verifies in Node wasm."""
    from srjs import modeldir
    from srjs.optimize.recipe import Recipe
    from srjs.optimize.run import make_variant
    from srjs.verify import verify_model_dir

    parent = modeldir.read_manifest(shipped_channel_models["rgba"])
    variant = make_variant(shipped_channel_models["rgba"], tmp_path / "ch50", Recipe(prune_channels=0.5, steps=5))
    assert variant.channels == 4
    assert variant.cost["conv_macs_per_pixel"] < 0.6 * parent.cost["conv_macs_per_pixel"]
    report = verify_model_dir(tmp_path / "ch50", runtimes=("node",), backends={"node": ("wasm",)}, warm_runs=0)
    assert all(r.ok for r in report.rows), report.rows
