"""srjs optimize --prune-depth: residual blocks found on the graph, dropped by measured error."""
from __future__ import annotations

import numpy as np
import pytest

from srjs import modeldir
from srjs.optimize import depth
from srjs.optimize.run import Recipe, make_variant
from tests.conftest import run_cli


def _build(arch: str, **params):
    from srjs.archs import get_arch
    from srjs.tf import keras

    keras.utils.set_random_seed(5)
    return get_arch(arch).build(**params)


def _x(seed=0, size=12):
    return np.random.default_rng(seed).uniform(0, 1, (2, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("arch, params, blocks", [
    ("rrdbnet", dict(scale=2, num_feat=8, num_block=4, num_grow_ch=4), [f"body__{i}__out" for i in range(4)]),
    ("rdn", dict(C=2, D=3, G=4, G0=4, scale=2), None),
    ("rrdn", dict(C=1, D=2, G=4, G0=4, T=3, scale=2), None),
    ("srvgg", dict(num_feat=8, num_conv=3, scale=2), []),
])
def test_the_trunk_is_the_longest_chain_of_residual_blocks(arch, params, blocks):
    chain = depth.residual_blocks(_build(arch, **params))
    if blocks is not None:  # RRDBs, never their inner dense blocks or the global skip
        assert [b.add for b in chain] == blocks
    else:
        assert len(chain) == params.get("T", params.get("D"))
    for earlier, later in zip(chain, chain[1:]):
        assert later.skip == earlier.add


def test_dropping_a_block_whose_branch_is_zero_changes_nothing_and_ranks_it_first():
    model = _build("rdn", C=2, D=3, G=4, G0=4, scale=2)
    chain = depth.residual_blocks(model)
    lff = [n for n in chain[1].branch if model.get_layer(n).__class__.__name__ == "Conv2D"
           and model.get_layer(n).filters == 4 and n.startswith("LFF")]
    assert len(lff) == 1  # RDN's local fusion conv writes the block's residual
    model.get_layer(lff[0]).set_weights([np.zeros_like(w) for w in model.get_layer(lff[0]).get_weights()])
    x = _x()
    pruned = depth.drop(model, [chain[1]])
    np.testing.assert_allclose(pruned(x).numpy(), model(x).numpy(), atol=1e-6)
    assert len(pruned.layers) < len(model.layers)
    errors = depth.block_errors(model, chain, x)
    assert errors[1] < 1e-12 < min(errors[0], errors[2])


def test_consecutive_blocks_drop_together():
    model = _build("rrdbnet", scale=2, num_feat=8, num_block=4, num_grow_ch=4)
    chain = depth.residual_blocks(model)
    pruned = depth.drop(model, chain[1:3])
    assert pruned(_x()).shape == model(_x()).shape
    assert not any(layer.name.startswith(("body__1__", "body__2__")) for layer in pruned.layers)
    assert depth.repair_convs(pruned, chain, chain[1:3]) == ["body__3__rdb1__conv1"]


def test_prune_depth_alone_fine_tunes_what_it_cut():
    model = _build("rrdbnet", scale=2, num_feat=8, num_block=3, num_grow_ch=4)
    teacher = _build("rrdbnet", scale=2, num_feat=8, num_block=3, num_grow_ch=4)
    teacher.set_weights(model.get_weights())
    images = [np.random.default_rng(2).uniform(0, 1, (40, 40, 3)).astype(np.float32)]
    pruned, report = depth.prune_depth(model, teacher, images, ratio=0.34, value_max=1.0, steps=1)
    assert len(report["blocks"]["dropped"]) == 1 and report["fine_tune"]["steps"] == 1
    assert len(pruned.layers) < len(model.layers)


def test_a_model_without_a_chain_of_blocks_is_bad_input(tmp_path):
    from srjs.convert.write import write_model_dir

    parent = tmp_path / "srvgg"
    write_model_dir(_build("srvgg", num_feat=8, num_conv=2, scale=2), parent, modeldir.Manifest(
        name="tiny", arch="srvgg", arch_params={}, scale=2, value_range=[0, 1],
        source={"path": "random", "format": "test"}))
    result = run_cli("optimize", parent, "-o", tmp_path / "d50", "--prune-depth", "0.5", "--steps", "2")
    assert result.exit_code == 2 and "residual blocks" in result.output, result.output
    assert not (tmp_path / "d50").exists()
    for bad in ("0", "1", "nan"):
        result = run_cli("optimize", parent, "-o", tmp_path / "d", "--prune-depth", bad)
        assert result.exit_code == 2 and not (tmp_path / "d").exists()


@pytest.mark.slow
def test_a_depth_pruned_variant_is_a_model_dir_that_runs_in_tfjs(tmp_path):
    from srjs.convert.write import write_model_dir
    from srjs.evaluate.shipped import load_shipped
    from srjs.runtime import run_tfjs

    params = dict(scale=2, num_feat=8, num_block=4, num_grow_ch=4)
    parent = tmp_path / "rrdb"
    write_model_dir(_build("rrdbnet", **params), parent, modeldir.Manifest(
        name="tiny", arch="rrdbnet", arch_params=params, scale=2, value_range=[0, 1],
        source={"path": "random", "format": "test"}))
    out = tmp_path / "d50-ch50"
    manifest = make_variant(parent, out, Recipe(prune_depth=0.5, prune_channels=0.5, steps=2))
    report = manifest.results["prune_depth"]
    assert manifest.arch_params["prune_depth"] == 0.5
    assert report["blocks"]["total"] == 4 and len(report["blocks"]["dropped"]) == 2
    errors = report["drop_error"]  # the two blocks whose removal changed the output least went
    assert sorted(report["blocks"]["dropped"]) == sorted(sorted(errors, key=errors.get)[:2])
    assert report["macs_per_pixel"]["after"] < report["macs_per_pixel"]["before"]
    assert report["params"]["after"] < report["params"]["before"]
    assert report["resolved_convs"]  # the block after a dropped one was re-solved
    # one fine-tune, the channel pruning's, repairs both cuts
    assert report["fine_tune"] is None and manifest.results["prune_channels"]["fine_tune"]["steps"] == 2
    assert manifest.cost["conv_macs_per_pixel"] < report["macs_per_pixel"]["after"]
    variant = load_shipped(out)
    x = _x(size=8)[:1]
    (result,) = run_tfjs([(out / modeldir.TFJS_LAYERS_DIR, "layers")], [x], runtime="node", backends=("wasm",),
                         warm_runs=0)
    assert result.error is None, result.error
    np.testing.assert_allclose(result.outputs[0], variant(x).numpy(), atol=1e-4)
