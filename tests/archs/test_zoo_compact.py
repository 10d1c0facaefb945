"""SPAN, PLKSR, RealPLKSR and Real-CUGAN against spandrel (tests/spandrel_ref.py).

Random-weight models from spandrel's own torch classes over their hyperparameters (scales 1-4,
image channels, mixer / large-kernel types, attention, LayerNorm / GroupNorm; Real-CUGAN's
2x / 3x / 4x / 2x fast variants, 'pro', channels and odd sizes), saved as .pth
and .safetensors: srjs reads the file, its detection equals spandrel's, and its Keras model
matches spandrel's forward within 1e-4 of the output's range. Settings the weights cannot tell
are overridable and recorded; channel pruning's surgery is exact on each family; one Node
wasm verify per family (slow).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests import spandrel_ref as ref  # stubs torchvision, then imports spandrel

from spandrel.architectures.PLKSR import PLKSR, RealPLKSR  # noqa: E402
from spandrel.architectures.RealCUGAN import UpCunet2x, UpCunet2x_fast, UpCunet3x, UpCunet4x  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402

from srjs.convert.detect import build_model  # noqa: E402
from srjs.convert.sources import read_checkpoint  # noqa: E402
from srjs.errors import BadInput  # noqa: E402

TOL = 1e-4  # max |srjs - spandrel| / output range
FORMATS = (".pth", ".safetensors")


def _max_rel_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max() / (theirs.max() - theirs.min()))


def span_model(seed: int = 0, **hp) -> torch.nn.Module:
    """A random SPAN; with normalisation, conv_1's input weights are scaled by 1/img_range as a
    trained model's are (raw random weights on a x255 input blow activations up to ~1e4, where
    float32 rounding alone exceeds the tolerance, in torch and TF alike)."""
    model = ref.random_model(SPAN, seed, **hp)
    if hp.get("norm", True):
        with torch.no_grad():
            for part in (model.conv_1.sk, model.conv_1.conv[0]):
                part.weight.mul_(1 / model.img_range)
    return model


def expected_params(found: dict) -> tuple[str, dict]:
    """srjs's (arch, params) for what spandrel detected (spandrel_ref.describe's dict)."""
    hp = found["hyperparameters"]
    scale = found["scale"]
    if found["arch"] == "SPAN":
        params = {"scale": scale, "feature_channels": hp["feature_channels"], "num_in_ch": found["input_channels"],
                  "num_out_ch": found["output_channels"], "norm": hp["norm"]}
        if hp["norm"]:
            params.update(img_range=hp["img_range"], rgb_mean=list(hp["rgb_mean"]))
        return "span", params
    if found["arch"] == "RealCUGAN":
        return "realcugan", {"scale": scale, "in_channels": found["input_channels"],
                             "out_channels": found["output_channels"], "pro": hp.get("pro", False),
                             "fast": hp["fast"] if "fast" in hp else False}
    assert found["arch"] == "PLKSR" and (found["input_channels"], found["output_channels"]) == (3, 3)
    if "dysample" in hp:  # RealPLKSR
        assert not hp["dysample"]
        keys = ("dim", "n_blocks", "kernel_size", "split_ratio", "use_ea", "norm_groups", "layer_norm")
        return "realplksr", {"scale": scale, **{k: hp[k] for k in keys}}
    keys = ["dim", "n_blocks", "ccm_type", "kernel_size", "split_ratio", "lk_type", "with_idt", "use_ea"]
    if hp["lk_type"] == "SparsePLK":
        keys += ["use_max_kernel", "sparse_kernels", "sparse_dilations"]
    return "plksr", {"scale": scale, **{k: (list(hp[k]) if isinstance(hp[k], (list, tuple)) else hp[k]) for k in keys}}


SPAN_GRID = [  # (scale, image channels, norm, feature_channels)
    (1, 1, False, 4), (2, 3, True, 8), (3, 4, False, 4), (4, 3, True, 4), (2, 3, False, 8), (4, 1, False, 4),
]
PLKSR_GRID = [
    dict(dim=8, n_blocks=2, upscaling_factor=2, kernel_size=5, ccm_type="CCM"),
    dict(dim=8, n_blocks=1, upscaling_factor=1, kernel_size=7, split_ratio=0.5, ccm_type="ICCM", use_ea=False),
    dict(dim=8, n_blocks=1, upscaling_factor=3, kernel_size=9, ccm_type="DCCM", lk_type="RectSparsePLK"),
    dict(dim=8, n_blocks=1, upscaling_factor=4, lk_type="SparsePLK"),
    dict(dim=12, n_blocks=1, upscaling_factor=2, kernel_size=3, split_ratio=1.0, ccm_type="DCCM", use_ea=False),
]
REALPLKSR_GRID = [
    dict(dim=8, n_blocks=2, upscaling_factor=2, kernel_size=5),
    dict(dim=8, n_blocks=1, upscaling_factor=4, kernel_size=7, layer_norm=True, use_ea=False),
    dict(dim=8, n_blocks=1, upscaling_factor=1, kernel_size=3, split_ratio=0.5, layer_norm=True),
    dict(dim=16, n_blocks=1, upscaling_factor=3, kernel_size=5, use_ea=False),
]


def _grid():
    cases = []
    for i, (scale, ch, norm, fc) in enumerate(SPAN_GRID):
        hp = dict(num_in_ch=ch, num_out_ch=ch, feature_channels=fc, upscale=scale, norm=norm)
        cases.append(pytest.param("span", hp, FORMATS[i % 2], id=f"span-x{scale}-c{ch}-f{fc}{'-norm' if norm else ''}"))
    for cls, grid in (("plksr", PLKSR_GRID), ("realplksr", REALPLKSR_GRID)):
        for i, hp in enumerate(grid):
            tags = "-".join(str(v) for k, v in hp.items() if k in ("ccm_type", "lk_type"))
            flags = "".join(f"-{k}" for k in ("layer_norm",) if hp.get(k)) + ("-noea" if hp.get("use_ea") is False else "")
            cases.append(pytest.param(cls, hp, FORMATS[(i + 1) % 2],
                                      id=f"{cls}-x{hp['upscaling_factor']}-d{hp['dim']}{'-' + tags if tags else ''}{flags}"))
    return cases


def make_model(family: str, hp: dict, seed: int = 0) -> torch.nn.Module:
    if family == "span":
        return span_model(seed, **hp)
    if family == "realcugan":
        return ref.random_model(UpCunet2x, seed, **hp)
    return ref.random_model(PLKSR if family == "plksr" else RealPLKSR, seed, **hp)


@pytest.mark.parametrize("family,hp,suffix", _grid())
def test_detection_and_forward_equal_spandrels(tmp_path, family, hp, suffix):
    model = make_model(family, hp)
    path = ref.save(model.state_dict(), tmp_path / f"m{suffix}")
    theirs = ref.detect(path)
    built = build_model(read_checkpoint(path))
    assert (built.arch, built.params) == expected_params(ref.describe(theirs))
    channels = theirs.input_channels
    x = np.random.default_rng(len(hp)).random((1, 16, 16, channels), dtype=np.float32)
    ours = built.model(x, training=False).numpy()
    assert _max_rel_diff(ours, ref.forward(theirs.model, x)) < TOL


# --- what the weights cannot tell ----------------------------------------------------------

OVERRIDES = [  # (family, true hyperparameters, override, recorded assumption that it replaces)
    ("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=2, img_range=1.0), {"img_range": 1.0},
     "img_range"),
    ("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=2, rgb_mean=(0.5, 0.5, 0.5)),
     {"rgb_mean": [0.5, 0.5, 0.5]}, "rgb_mean"),
    ("plksr", dict(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=5, with_idt=True), {"with_idt": True},
     "with_idt"),
    ("realplksr", dict(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=5, norm_groups=2), {"norm_groups": 2},
     "norm_groups"),
]


@pytest.mark.parametrize("family,hp,override,param", OVERRIDES, ids=[o[3] for o in OVERRIDES])
def test_assumed_settings_are_recorded_and_overridable(tmp_path, family, hp, override, param):
    """Without the override srjs runs spandrel's default (and says so); with it, the true net."""
    model = make_model(family, hp)
    path = ref.save(model.state_dict(), tmp_path / "m.safetensors")
    x = np.random.default_rng(1).random((1, 16, 16, 3), dtype=np.float32)
    want = ref.forward(model, x)
    default = build_model(read_checkpoint(path))
    assert param in default.assumed and "not in the weights" in default.assumed[param]
    assert _max_rel_diff(default.model(x).numpy(), want) > 100 * TOL  # the assumption matters
    fixed = build_model(read_checkpoint(path), arch_params=override)
    assert param not in fixed.assumed and fixed.params[param] == override[param]
    assert _max_rel_diff(fixed.model(x).numpy(), want) < TOL


def test_dysample_realplksr_is_refused_by_name(tmp_path):
    model = ref.random_model(RealPLKSR, 0, dim=8, n_blocks=1, upscaling_factor=2, kernel_size=3, dysample=True)
    path = ref.save(model.state_dict(), tmp_path / "m.pth")
    assert ref.describe(ref.detect(path))["hyperparameters"]["dysample"]  # spandrel reads it too
    with pytest.raises(BadInput, match=r"DySample upsampling \(to_img\.init_pos\) is not supported"):
        build_model(read_checkpoint(path))


def test_span_with_a_wrong_eval_conv_still_follows_spandrel(tmp_path):
    """spandrel's eval forward refolds eval_conv from the train-time branches; so does srjs."""
    model = span_model(0, num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=2, norm=False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["block_2.c2_r.eval_conv.weight"].normal_()  # stale or garbage stored fold
    path = ref.save(state, tmp_path / "m.pth")
    theirs = ref.detect(path)
    x = np.random.default_rng(2).random((1, 16, 16, 3), dtype=np.float32)
    ours = build_model(read_checkpoint(path)).model(x).numpy()
    assert _max_rel_diff(ours, ref.forward(theirs.model, x)) < TOL


# --- optimize: channel pruning's surgery and the MAC count ----------------------------------

def _keras_model(family: str, hp: dict, tmp_path: Path):
    path = ref.save(make_model(family, hp).state_dict(), tmp_path / "m.pth")
    return build_model(read_checkpoint(path)).model


PRUNE_CASES = [
    pytest.param("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2, norm=False), id="span"),
    pytest.param("plksr", dict(dim=8, n_blocks=2, upscaling_factor=2, kernel_size=5), id="plksr"),
    pytest.param("realplksr", dict(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=5), id="realplksr"),
    pytest.param("realcugan", dict(), id="realcugan", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("family,hp", PRUNE_CASES)
def test_removing_all_zero_channels_changes_no_output(tmp_path, family, hp):
    """Channel pruning understands each family's graph: zero half of every prunable group's
    channels, remove them, and the output is the same with fewer conv MACs."""
    from srjs.optimize import channels

    model = _keras_model(family, hp, tmp_path)
    graph = channels.channel_graph(model)
    groups = graph.prunable()
    assert groups, "no prunable group"
    for members in groups.values():
        dead = np.arange(graph.group_size[members[0]])[::2]
        for conv in members:
            layer = model.get_layer(conv)
            kernel, bias = layer.get_weights()
            kernel[..., dead], bias[dead] = 0, 0
            layer.set_weights([kernel, bias])
    x = np.random.default_rng(3).random((1, 40, 40, 3) if family == "realcugan" else (1, 16, 16, 3), dtype=np.float32)
    pruned = channels.apply(model, graph, channels.all_zero_channels(model, graph))
    np.testing.assert_allclose(pruned(x).numpy(), model(x).numpy(), rtol=0, atol=1e-5)
    assert sum(channels.conv_macs(pruned).values()) < sum(channels.conv_macs(model).values())


def test_span_conv_macs_are_the_folded_convs():
    """One 3x3 conv per Conv3XC: MACs per input pixel by hand for f features, scale s."""
    from srjs.archs import span
    from srjs.optimize.channels import conv_macs

    f, s, c = 8, 3, 3
    model = span.build(scale=s, feature_channels=f, num_in_ch=c, num_out_ch=c, norm=False)
    by_hand = 9 * c * f + (6 * 3 + 1) * 9 * f * f + 4 * f * f + 9 * f * c * s * s
    assert sum(conv_macs(model).values()) == by_hand


# --- TF.js ----------------------------------------------------------------------------------

VERIFY_CASES = [
    ("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2), ".safetensors"),
    ("plksr", dict(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=7, ccm_type="CCM"), ".pth"),
    ("realplksr", dict(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=7), ".safetensors"),
    ("realcugan", dict(pro=True), ".pth"),
]


@pytest.mark.slow
@pytest.mark.parametrize("family,hp,suffix", VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_converted_model_runs_in_tfjs_node_wasm(tmp_path, family, hp, suffix):
    """convert from the file, then both TF.js exports in Node wasm match the Keras model
    (GELU, Mish, swish, LayerNormalization, the split partial conv, DepthwiseConv2D affines)."""
    from srjs import modeldir
    from srjs.convert.run import convert_checkpoint
    from srjs.verify import verify_model_dir

    model = make_model(family, hp)
    path = ref.save(model.state_dict(), tmp_path / f"m{suffix}")
    out = tmp_path / "model"
    convert_checkpoint(str(path), out)
    manifest = modeldir.read_manifest(out)
    assert manifest.arch == family
    assert manifest.cost["params"] == _shipped_params(family, hp, model)
    shapes = ((21, 24),) if family == "realcugan" else ((16, 16),)  # Real-CUGAN reflect-pads 18 px
    report = verify_model_dir(out, runtimes=("node",), backends={"node": ("wasm",)}, warm_runs=1, shapes=shapes)
    assert {(r.format, r.backend) for r in report.rows} == {("layers", "wasm"), ("graph", "wasm")}
    assert report.ok, report.table()
    if family in ("plksr", "realcugan"):  # GELU (UpscalerJS 1.0.0's tfjs 4.11 lacks it), ReflectPad, CropToInput
        report = verify_model_dir(out, runtimes=("upscalerjs",), warm_runs=0, shapes=shapes)
        assert [r.runtime for r in report.rows] == ["upscalerjs"] and report.ok, report.table()


def _shipped_params(family: str, hp: dict, model: torch.nn.Module) -> int:
    """Weights the converted model holds. PLKSR: exactly the source's (split convs and the
    GroupNorm affine keep every value). SPAN: each Conv3XC is one 3x3 conv, plus the constant
    depthwise affines (attention offset per block, input normalisation)."""
    if family != "span":  # realcugan: the pro input/output affines add 2 x (3 + 3) constants
        return sum(v.numel() for v in model.parameters()) + (12 if hp.get("pro") else 0)
    f, c, s = hp["feature_channels"], hp["num_in_ch"], hp["upscale"]
    conv3xc = (9 * c * f + f) + 19 * (9 * f * f + f)
    return conv3xc + (4 * f * f + f) + (9 * f * c * s * s + c * s * s) + 6 * 2 * f + 2 * c


CUGAN_GRID = [  # (spandrel class, hyperparameters, input H, W: fast needs multiples of 4 and > 38 px)
    # all slow: fixed 1.3 M-param nets (tests/archs/test_parity.py runs a plain 2x in the fast lane)
    pytest.param(UpCunet2x, dict(pro=True), (36, 40), id="x2-pro", marks=pytest.mark.slow),
    pytest.param(UpCunet2x, dict(in_channels=1, out_channels=1), (33, 35), id="x2-c1-odd", marks=pytest.mark.slow),
    pytest.param(UpCunet3x, dict(), (30, 34), id="x3", marks=pytest.mark.slow),
    pytest.param(UpCunet4x, dict(in_channels=4, out_channels=4, pro=True), (21, 26), id="x4-c4-pro",
                 marks=pytest.mark.slow),
    pytest.param(UpCunet2x_fast, dict(), (40, 44), id="x2-fast", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("cls,hp,size", CUGAN_GRID)
def test_realcugan_detection_and_forward_equal_spandrels(tmp_path, cls, hp, size):
    """Real-CUGAN's U-Nets have fixed widths (32-256), so this grid is over its variants,
    'pro' and image channels (odd sizes exercise the pad-to-even and the final crop)."""
    model = ref.random_model(cls, 0, **hp)
    path = ref.save(model.state_dict(), tmp_path / ("m.pth" if hp.get("pro") else "m.safetensors"))
    theirs = ref.detect(path)
    built = build_model(read_checkpoint(path))
    assert (built.arch, built.params) == expected_params(ref.describe(theirs))
    x = np.random.default_rng(5).random((1, *size, theirs.input_channels), dtype=np.float32)
    assert _max_rel_diff(built.model(x).numpy(), ref.forward(theirs.model, x)) < TOL


def test_realcugan_detection_of_every_variant_equals_spandrels():
    """Detection alone (names and shapes), for every variant: cheap, so all of them here."""
    from srjs.archs import detect_arch

    for cls, hp in ((UpCunet2x, {}), (UpCunet2x, {"pro": True}), (UpCunet3x, {"pro": True}),
                    (UpCunet4x, {}), (UpCunet4x, {"in_channels": 1, "out_channels": 1}), (UpCunet2x_fast, {})):
        state = cls(**hp).state_dict()
        found = ref.describe(ref.detect(dict(state)))
        assert detect_arch({k: tuple(v.shape) for k, v in state.items()}) == expected_params(found), cls


def test_graph_export_has_no_erfc(tmp_path):
    """tf_keras traces exact GELU with Erfc, which TF.js graph models cannot run; the export
    must trace it with Erf (the same function) instead."""
    import json

    from srjs.archs import plksr
    from srjs.convert.export import export_graph

    model = plksr.SPECS[0].build(scale=1, dim=4, n_blocks=1, kernel_size=3, use_ea=False)
    path = export_graph(model, tmp_path / "graph")
    ops = {node["op"] for node in json.loads(path.read_text())["modelTopology"]["node"]}
    assert "Erf" in ops and "Erfc" not in ops


def test_a_malformed_family_checkpoint_is_bad_input_naming_the_family():
    """Names that match a family's key condition with a tensor of the wrong rank: one line, exit 2."""
    from srjs.archs import detect_arch

    state = {k: tuple(v.shape) for k, v in PLKSR(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=3).state_dict().items()}
    state["feats.0.weight"] = (8,)
    with pytest.raises(BadInput, match=r"^plksr: the weights match plksr's names but not its layout"):
        detect_arch(state)


def test_cli_override_reaches_the_manifest_and_dysample_exits_2(tmp_path):
    """`srjs convert --arch-param`: the override is in arch_params, the rest stays recorded as
    assumed; a DySample RealPLKSR exits 2 with one line and writes nothing."""
    import json

    from tests.conftest import run_cli

    model = span_model(0, num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=2)
    path = ref.save(model.state_dict(), tmp_path / "span.pth")
    result = run_cli("convert", path, "-o", tmp_path / "out", "--no-tfjs", "--arch-param", "img_range=255")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["arch"] == "span" and manifest["arch_params"]["img_range"] == 255
    assert list(manifest["arch_params_assumed"]) == ["rgb_mean"]

    dysample = ref.random_model(RealPLKSR, 0, dim=8, n_blocks=1, upscaling_factor=2, kernel_size=3, dysample=True)
    result = run_cli("convert", ref.save(dysample.state_dict(), tmp_path / "dy.pth"), "-o", tmp_path / "dy")
    assert result.exit_code == 2 and "DySample" in result.output and not (tmp_path / "dy").exists()
