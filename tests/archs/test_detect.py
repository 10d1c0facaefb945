"""detect() reads the exact params back from weights; load() names the first bad weight."""
from __future__ import annotations

import numpy as np
import pytest


from srjs.archs import ARCHS, detect_arch, get_arch  # noqa: E402
from srjs.errors import BadInput  # noqa: E402
from tests.torch_reference import RRDBNet, SRVGGNetCompact, state_dict_numpy  # noqa: E402


def keras_state(arch: str, params: dict) -> dict[str, np.ndarray]:
    """'<layer>/<variable>' weights of a fresh build: the naming of ISR .h5 and TF.js manifests."""
    model = get_arch(arch).build(**params)
    return {
        f"{layer.name}/{v.name.split('/')[-1].split(':')[0]}": v.numpy()
        for layer in model.layers for v in layer.weights
    }


CASES = {
    "rrdbnet-x4": ("rrdbnet", dict(scale=4, num_feat=16, num_block=2, num_grow_ch=8, num_in_ch=3, num_out_ch=3,
                                      unshuffle=1, plus=False),
                   lambda: state_dict_numpy(RRDBNet(3, 3, scale=4, num_feat=16, num_block=2, num_grow_ch=8))),
    "rrdbnet-x2": ("rrdbnet", dict(scale=2, num_feat=16, num_block=2, num_grow_ch=8, num_in_ch=3, num_out_ch=3,
                                      unshuffle=2, plus=False),
                   lambda: state_dict_numpy(RRDBNet(3, 3, scale=2, num_feat=16, num_block=2, num_grow_ch=8))),
    "rrdbnet-x1": ("rrdbnet", dict(scale=1, num_feat=16, num_block=2, num_grow_ch=8, num_in_ch=3, num_out_ch=3,
                                      unshuffle=4, plus=False),
                   lambda: state_dict_numpy(RRDBNet(3, 3, scale=1, num_feat=16, num_block=2, num_grow_ch=8))),
    "srvgg-x4": ("srvgg", dict(scale=4, num_feat=16, num_conv=4, act_type="prelu", num_in_ch=3, num_out_ch=3),
                 lambda: state_dict_numpy(SRVGGNetCompact(3, 3, num_feat=16, num_conv=4, upscale=4))),
    "srvgg-x2-relu": ("srvgg", dict(scale=2, num_feat=8, num_conv=3, act_type="relu", num_in_ch=3, num_out_ch=3),
                      lambda: state_dict_numpy(SRVGGNetCompact(3, 3, num_feat=8, num_conv=3, upscale=2,
                                                               act_type="relu"))),
    "rdn-x3": ("rdn", dict(C=2, D=3, G=8, G0=16, scale=3, upscaling="ups"),
               lambda: keras_state("rdn", dict(C=2, D=3, G=8, G0=16, scale=3))),
    "rrdn-x2": ("rrdn", dict(C=3, D=2, G=8, G0=16, T=2, scale=2),
                lambda: keras_state("rrdn", dict(C=3, D=2, G=8, G0=16, T=2, scale=2))),
    "span-x4": ("span", dict(scale=4, feature_channels=8, num_in_ch=3, num_out_ch=3, norm=True,
                             img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.4040]),
                lambda: _spandrel_state("SPAN", num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4)),
    "plksr-x2": ("plksr", dict(scale=2, dim=8, n_blocks=2, ccm_type="CCM", kernel_size=5, use_ea=True,
                               with_idt=False, lk_type="PLK", split_ratio=0.25),
                 lambda: _spandrel_state("PLKSR", dim=8, n_blocks=2, upscaling_factor=2, kernel_size=5)),
    "realplksr-x2": ("realplksr", dict(scale=2, dim=8, n_blocks=2, kernel_size=5, split_ratio=0.25, use_ea=True,
                                       norm_groups=4, layer_norm=False),
                     lambda: _spandrel_state("RealPLKSR", dim=8, n_blocks=2, upscaling_factor=2, kernel_size=5)),
    "realcugan-x3": ("realcugan", dict(scale=3, in_channels=3, out_channels=3, pro=False, fast=False),
                     lambda: _spandrel_state("UpCunet3x")),
}


def _spandrel_state(cls_name: str, **hyperparameters) -> dict[str, np.ndarray]:
    from tests import spandrel_ref

    return spandrel_ref.state_numpy(spandrel_ref.random_model(getattr(spandrel_ref.spandrel.architectures,
                                                                      _SPANDREL_MODULES[cls_name]).__dict__[cls_name],
                                                              **hyperparameters).state_dict())


_SPANDREL_MODULES = {"SPAN": "SPAN", "PLKSR": "PLKSR", "RealPLKSR": "PLKSR", "UpCunet3x": "RealCUGAN"}


@pytest.mark.parametrize("arch", ARCHS.names())
def test_every_registered_arch_has_a_detect_case(arch):
    assert arch in {a for a, _, _ in CASES.values()}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_detect_returns_the_params_used(case):
    arch, params, make_state = CASES[case]
    shapes = {k: v.shape for k, v in make_state().items()}
    assert detect_arch(shapes) == (arch, params)
    others = [name for name in ARCHS.names() if name != arch and get_arch(name).detect(shapes) is not None]
    assert others == []  # no family claims another's weights


@pytest.mark.parametrize("case", CASES, ids=str)
def test_one_wrong_shape_is_named(case):
    arch, params, make_state = CASES[case]
    state = make_state()
    victim = sorted(state)[len(state) // 2]
    right = tuple(state[victim].shape)
    state[victim] = np.zeros(right[:-1] + (right[-1] + 1,), np.float32)
    model = get_arch(arch).build(**params)
    with pytest.raises(BadInput) as err:
        get_arch(arch).load(model, state)
    message = err.value.message
    assert f"'{victim}' has shape {tuple(state[victim].shape)}, expected {right}" in message


def test_missing_and_unexpected_weights_are_named():
    arch, params, make_state = CASES["rrdbnet-x4"]
    spec = get_arch(arch)
    state = make_state()
    del state["body.1.rdb2.conv3.bias"]
    with pytest.raises(BadInput, match=r"missing weight 'body\.1\.rdb2\.conv3\.bias' \(expected shape \(8,\)\)"):
        spec.load(spec.build(**params), state)
    state = {**make_state(), "extra.weight": np.zeros(3, np.float32)}
    with pytest.raises(BadInput, match=r"unexpected weight 'extra\.weight'"):
        spec.load(spec.build(**params), state)


def test_isr_h5_spellings_are_accepted():
    arch, params, make_state = CASES["rdn-x3"]
    h5_style = {f"{k.split('/')[0]}/{k}:0": v for k, v in make_state().items()}  # 'F_0/F_0/kernel:0'
    assert detect_arch({k: v.shape for k, v in h5_style.items()}) == (arch, params)
    get_arch(arch).load(get_arch(arch).build(**params), h5_style)


def test_unknown_weights_and_names_are_bad_input():
    with pytest.raises(BadInput, match=r"first names: 'encoder\.weight', 'decoder\.bias'"):
        detect_arch({"encoder.weight": (3, 3), "decoder.bias": (3,)})
    with pytest.raises(BadInput, match=r"unknown architecture 'swinir' \(known: plksr, rdn, realcugan, realplksr, rrdbnet, rrdn, span, srvgg\)"):
        get_arch("swinir")


def test_unsupported_channel_counts_are_bad_input():
    from srjs.convert.detect import build_model
    from srjs.convert.sources import Checkpoint

    gray = state_dict_numpy(RRDBNet(1, 1, scale=4, num_feat=8, num_block=1, num_grow_ch=4))
    assert build_model(Checkpoint("pth", gray)).channels == 1  # grayscale is an image too
    two = state_dict_numpy(RRDBNet(2, 2, scale=4, num_feat=8, num_block=1, num_grow_ch=4))
    with pytest.raises(BadInput, match="takes 2 and gives 2 image channels"):
        build_model(Checkpoint("pth", two))


def test_value_range_conventions_live_in_the_registry():
    from srjs.archs import ARCHS

    # BasicSR families publish [0, 1]; ISR's differ between ISR and UpscalerJS, so convert probes
    assert {name: ARCHS.get(name).default_value_range for name in ARCHS.names()} == {
        "rrdbnet": (0, 1), "srvgg": (0, 1), "rdn": None, "rrdn": None,
        "span": (0, 1), "plksr": (0, 1), "realplksr": (0, 1), "realcugan": (0, 1)}
