import numpy as np
import pytest

from srjs.convert.keymaps import rrdbnet_layout, to_basicsr
from srjs.errors import BadInput

NB = 2
PARAMS = ("weight", "bias")


def _basicsr_keys(nb=NB):
    keys = [f"conv_first.{p}" for p in PARAMS]
    keys += [
        f"body.{b}.rdb{r}.conv{c}.{p}"
        for b in range(nb) for r in (1, 2, 3) for c in range(1, 6) for p in PARAMS
    ]
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        keys += [f"{name}.{p}" for p in PARAMS]
    return keys


# Source key -> BasicSR key, written out per layout (ESRGAN transer_RRDB_models.py for old).
OLD_TOP = {"model.0": "conv_first", f"model.1.sub.{NB}": "conv_body", "model.3": "conv_up1",
           "model.6": "conv_up2", "model.8": "conv_hr", "model.10": "conv_last"}
NEW_TOP = {"conv_first": "conv_first", "trunk_conv": "conv_body", "upconv1": "conv_up1",
           "upconv2": "conv_up2", "HRconv": "conv_hr", "conv_last": "conv_last"}


def _pairs(top: dict, block: str) -> dict:
    """Source key -> BasicSR key for a layout given its top-level names and block template."""
    pairs = {f"{old}.{p}": f"{new}.{p}" for old, new in top.items() for p in PARAMS}
    for b in range(NB):
        for r in (1, 2, 3):
            for c in range(1, 6):
                for p in PARAMS:
                    pairs[block.format(b=b, r=r, c=c, p=p)] = f"body.{b}.rdb{r}.conv{c}.{p}"
    return pairs


def _old_pairs():
    return _pairs(OLD_TOP, "model.1.sub.{b}.RDB{r}.conv{c}.0.{p}")


def _new_pairs():
    return _pairs(NEW_TOP, "RRDB_trunk.{b}.RDB{r}.conv{c}.{p}")


def _basicsr_pairs():
    return {k: k for k in _basicsr_keys()}


LAYOUTS = {"old": _old_pairs, "new": _new_pairs, "basicsr": _basicsr_pairs}


def _state_dict(keys):
    # Distinct values per key, so a swapped mapping cannot go unnoticed.
    return {k: np.full((2, 2), i, np.float32) for i, k in enumerate(keys)}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_maps_to_basicsr(layout):
    pairs = LAYOUTS[layout]()
    sd = _state_dict(pairs)
    assert rrdbnet_layout(sd) == layout
    mapped = to_basicsr(sd)
    assert set(mapped) == set(_basicsr_keys())
    for src, dst in pairs.items():
        assert mapped[dst] is sd[src], (src, dst)
    assert rrdbnet_layout(mapped) == "basicsr"


@pytest.mark.parametrize("layout", ["old", "new"])
def test_unknown_keys_are_kept(layout):
    extra = ["extra.weight", "model.1.sub.0.RDB1.conv1.1.weight"]
    sd = _state_dict(list(LAYOUTS[layout]()) + extra)
    mapped = to_basicsr(sd)
    assert all(mapped[k] is sd[k] for k in extra)
    assert set(mapped) - set(extra) == set(_basicsr_keys())


def test_old_layout_other_upscale_counts():
    # x8 old-arch: three (upsample, conv, lrelu) triples -> model.3, 6, 9; HR 11; last 13.
    x4_tail = ("model.3.", "model.6.", "model.8.", "model.10.")
    pairs = {k: v for k, v in _old_pairs().items() if not k.startswith(x4_tail)}
    x8_tail = ((3, "conv_up1"), (6, "conv_up2"), (9, "conv_up3"), (11, "conv_hr"), (13, "conv_last"))
    for idx, name in x8_tail:
        pairs.update({f"model.{idx}.{p}": f"{name}.{p}" for p in PARAMS})
    sd = _state_dict(pairs)
    mapped = to_basicsr(sd)
    for src, dst in pairs.items():
        assert mapped[dst] is sd[src], (src, dst)


def test_non_rrdbnet_is_identity():
    sd = _state_dict(["conv_first.weight", "body.0.weight", "upconv.weight", "model.0.weight"])
    assert rrdbnet_layout(sd) is None
    mapped = to_basicsr(sd)
    assert mapped == sd and mapped is not sd
    assert rrdbnet_layout([]) is None


def test_collision_is_bad_input():
    sd = _state_dict(list(_new_pairs()) + ["conv_body.weight"])
    with pytest.raises(BadInput, match="conv_body.weight"):
        to_basicsr(sd)
