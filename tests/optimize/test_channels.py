"""srjs optimize --prune-channels: channel surgery on the Keras graph (optimize.channels)."""
from __future__ import annotations

import numpy as np
import pytest

from srjs import modeldir
from srjs.optimize import channels
from srjs.optimize.run import Recipe, make_variant
from tests.conftest import run_cli


def _build(arch: str, **params):
    from srjs.archs import get_arch
    from srjs.tf import keras

    keras.utils.set_random_seed(3)
    return get_arch(arch).build(**params)


TINY = {
    "rdn": dict(C=2, D=2, G=8, G0=8, scale=2),
    "rrdn": dict(C=2, D=2, G=8, G0=8, T=2, scale=2),
    "rrdbnet": dict(scale=2, num_feat=8, num_block=1, num_grow_ch=8),
    "srvgg": dict(num_feat=8, num_conv=3, scale=2),
}


def _x(seed=0, size=12):
    return np.random.default_rng(seed).uniform(0, 1, (2, size, size, 3)).astype(np.float32)


def _random_scores(graph, seed=0):
    rng = np.random.default_rng(seed)
    return {root: rng.random(graph.group_size[members[0]]) for root, members in graph.prunable().items()}


def test_rdn_groups_tie_the_residual_trunk_and_fix_the_output():
    model = _build("rdn", **TINY["rdn"])
    graph = channels.channel_graph(model)
    groups = {root: sorted(members) for root, members in graph.prunable().items()}
    trunk = [m for m in groups.values() if "F_0" in m]
    # F_0 and every block's LFF write into the same residual trunk: one group
    assert trunk == [["F_0", "LFF_1", "LFF_2"]]
    assert ["F_m1", "GFF_2"] in groups.values()  # the global residual (FDF) ties these two
    assert all("SR" not in m for m in groups.values())  # the output conv keeps its 3 channels


@pytest.mark.parametrize("arch", sorted(TINY))
def test_pruned_models_keep_shapes_consistent_across_concat_and_residual_edges(arch):
    model = _build(arch, **TINY[arch])
    graph = channels.channel_graph(model)
    keep = channels.plan(graph, _random_scores(graph), ratio=0.5, multiple=2)
    assert keep, "every family has prunable groups"
    pruned = channels.apply(model, graph, keep)  # from_config would fail on any inconsistent edge
    x = _x()
    assert pruned(x).shape == model(x).shape
    for root, kept in keep.items():
        for conv in graph.prunable()[root]:  # tied convs all keep the same channel count
            assert pruned.get_layer(conv).filters == len(kept) < model.get_layer(conv).filters
    # every conv reads exactly the channels its (pruned) inputs still carry
    for layer in pruned.layers:
        if layer.__class__.__name__ == "Conv2D":
            assert layer.kernel.shape[2] == layer.input_shape[-1]


def test_rdn_widths_after_pruning_follow_the_concats():
    model = _build("rdn", **TINY["rdn"])
    graph = channels.channel_graph(model)
    keep = channels.plan(graph, _random_scores(graph), ratio=0.5, multiple=2)
    pruned = channels.apply(model, graph, keep)
    # LFF_1 reads concat(trunk, F_1_1, F_1_2): 4 + 4 + 4 channels after halving each group
    assert pruned.get_layer("LFF_1").kernel.shape[2] == 12
    # GFF_1 reads concat of the two blocks' trunk outputs: 2 x 4
    assert pruned.get_layer("GFF_1").kernel.shape[2] == 8


@pytest.mark.parametrize("arch", sorted(TINY))
def test_removing_all_zero_channels_changes_no_output(arch):
    model = _build(arch, **TINY[arch])
    graph = channels.channel_graph(model)
    rng = np.random.default_rng(1)
    for root, members in graph.prunable().items():
        dead = rng.choice(graph.group_size[members[0]], 2, replace=False)
        for conv in members:  # a channel is dead only if every tied conv writes zero into it
            kernel, *bias = model.get_layer(conv).get_weights()
            kernel[..., dead] = 0
            if bias:
                bias[0][dead] = 0
            model.get_layer(conv).set_weights([kernel, *bias])
    keep = channels.all_zero_channels(model, graph)
    assert set(keep) == set(graph.prunable())
    pruned = channels.apply(model, graph, keep)
    x = _x(2)
    np.testing.assert_allclose(pruned(x).numpy(), model(x).numpy(), rtol=0, atol=1e-5)
    assert channels.params(pruned) < channels.params(model)


def test_a_live_channel_is_never_taken_for_a_zero_one():
    model = _build("rdn", **TINY["rdn"])
    graph = channels.channel_graph(model)
    kernel, bias = model.get_layer("F_1_1").get_weights()
    kernel[..., 0] = 0  # kernel zero but the bias is not: the channel still outputs relu(bias)
    model.get_layer("F_1_1").set_weights([kernel, bias + 0.1])
    assert channels.all_zero_channels(model, graph) == {}


def test_macs_count_upsampled_convs_at_output_resolution():
    model = _build("rdn", C=1, D=1, G=4, G0=8, scale=2)
    macs = channels.conv_macs(model)
    assert macs["F_m1"] == 3 * 3 * 3 * 8
    assert macs["UPN1"] == 5 * 5 * 8 * 64
    assert macs["SR"] == 3 * 3 * 12 * 3 * 4  # after the x2 upsampling: 4 output pixels per input pixel


def test_plan_rounds_kept_channels_to_multiples_and_refuses_bad_ratios():
    model = _build("rdn", **TINY["rdn"])
    graph = channels.channel_graph(model)
    keep = channels.plan(graph, _random_scores(graph), ratio=0.3, multiple=4)
    widths = {root: graph.group_size[members[0]] for root, members in graph.prunable().items()}
    for root, kept in keep.items():
        assert len(kept) % 4 == 0 and abs(len(kept) - 0.7 * widths[root]) <= 2, root  # nearest multiple of 4
    assert len(keep[graph.root("F_0")]) == 4  # 8 * 0.7 = 5.6 -> 4
    with pytest.raises(Exception, match="fraction in"):
        channels.plan(graph, _random_scores(graph), ratio=1.0)


@pytest.fixture(scope="module")
def tiny_rdn(tmp_path_factory):
    """A random-weight RDN x2 model dir in [0, 255] (UpscalerJS esrgan's family, small)."""
    from srjs.convert.write import write_model_dir
    from srjs.modeldir import Manifest

    params = dict(C=1, D=2, G=16, G0=16, scale=2, upscaling="ups")
    model = _build("rdn", **params)
    out = tmp_path_factory.mktemp("rdn") / "rdn"
    write_model_dir(model, out, Manifest(name="tiny-rdn", arch="rdn", arch_params=params, scale=2,
                                         value_range=[0, 255], source={"path": "random", "format": "test"}))
    return out


def test_prune_channels_variant_reports_the_macs_it_removed_and_runs_in_tfjs(tiny_rdn, tmp_path):
    from srjs.evaluate.shipped import load_shipped
    from srjs.runtime.node import run_node

    out = tmp_path / "ch50"
    result = run_cli("optimize", tiny_rdn, "-o", out, "--prune-channels", "0.5", "--steps", "3")
    assert result.exit_code == 0, result.output
    manifest = modeldir.read_manifest(out)
    report = manifest.results["prune_channels"]
    parent, variant = load_shipped(tiny_rdn), load_shipped(out)
    before, after = sum(channels.conv_macs(parent).values()), sum(channels.conv_macs(variant).values())
    assert report["macs_per_pixel"] == {"before": before, "after": after}
    assert report["speedup_macs"] == pytest.approx(before / after, abs=1e-3) and before / after > 2
    assert report["params"]["after"] == channels.params(variant) < channels.params(parent)
    assert report["fine_tune"]["steps"] == 3
    assert manifest.arch_params["prune_channels"] == 0.5
    assert "MACs per input pixel" in result.output
    # the shipped TF.js export is the pruned net, and stock TF.js runs it like Keras does
    x = np.random.default_rng(0).uniform(0, 255, (1, 12, 12, 3)).astype(np.float32)
    (run,) = run_node([(out / modeldir.TFJS_LAYERS_DIR, "layers")], [x], backends=("wasm",), warm_runs=0)
    assert run.ok, run.error
    np.testing.assert_allclose(run.outputs[0], variant(x).numpy(), rtol=0, atol=1e-2)


def test_bad_prune_channels_requests_exit_2_and_write_nothing(tiny_rdn, tmp_path):
    for ratio in ("0", "1", "-0.2"):
        result = run_cli("optimize", tiny_rdn, "-o", tmp_path / "bad", "--prune-channels", ratio)
        assert result.exit_code == 2 and "--prune-channels" in result.output
        assert not (tmp_path / "bad").exists()


def test_refit_recovers_most_of_what_the_cut_lost():
    """Least-squares re-solving brings a cut network closer to the original before any fine-tune."""
    model = _build("rdn", C=1, D=2, G=16, G0=16, scale=2)
    graph = channels.channel_graph(model)
    x = _x(3, 16) * 255
    keep = channels.plan(graph, channels.importance(model, graph, x), ratio=0.25)
    cut = channels.apply(model, graph, keep)
    err = lambda m: float(np.mean((m(x).numpy() - model(x).numpy()) ** 2))
    before = err(cut)
    channels.refit(model, cut, graph, keep, x)
    assert err(cut) < 0.5 * before



def _refit_one_conv_at_a_time(original, pruned, graph, keep, x):
    """The re-solve as it was first written: a sub-model per conv for its input (slow, plain)."""
    from srjs.tf import keras, tf

    for layer in graph.config["layers"]:
        if layer["class_name"] != "Conv2D":
            continue
        name, (source,) = layer["name"], graph.inbound[layer["name"]]
        inputs = keras.Model(pruned.inputs, pruned.get_layer(source).output)(x).numpy()
        target = keras.Model(original.inputs, original.get_layer(name).output)(x).numpy()
        target = target[..., [i for i in range(graph.group_size[name]) if channels._kept(graph, keep, name, i)]]
        kh, kw, cin, cout = pruned.get_layer(name).kernel.shape
        rows = tf.image.extract_patches(inputs, [1, kh, kw, 1], [1] * 4, [1] * 4, "SAME").numpy()
        xs = np.concatenate([rows.reshape(-1, kh * kw * cin), np.ones((rows.size // (kh * kw * cin), 1))], axis=1)
        gram = xs.T @ xs
        gram[np.diag_indices_from(gram)] += 1e-3 * np.mean(np.diag(gram))
        solved = np.linalg.solve(gram, xs.T @ target.reshape(-1, cout))
        pruned.get_layer(name).set_weights([solved[:-1].reshape(kh, kw, cin, cout), solved[-1]])


@pytest.mark.parametrize("arch", ["rdn", "rrdbnet"])
def test_refit_in_one_pass_solves_what_one_conv_at_a_time_solves(arch):
    """refit runs the pruned model once, re-solving each conv as it is reached; the answer is
    the one a fresh forward pass per conv gives (each conv sees the re-solved earlier ones)."""
    model = _build(arch, **TINY[arch])
    graph = channels.channel_graph(model)
    x = _x(4, 12) * 255
    keep = channels.plan(graph, channels.importance(model, graph, x), ratio=0.5)
    fast, slow = channels.apply(model, graph, keep), channels.apply(model, graph, keep)
    channels.refit(model, fast, graph, keep, x)
    _refit_one_conv_at_a_time(model, slow, graph, keep, x)
    changed = 0
    for a, b, before in zip(fast.weights, slow.weights, channels.apply(model, graph, keep).weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4)
        changed += not np.allclose(a.numpy(), before.numpy())
    assert changed >= len(fast.weights) // 2  # the re-solve did change the convs
    np.testing.assert_allclose(channels.run_layers(fast, fast.get_config(), x)[0], fast(x).numpy(),
                               rtol=1e-5, atol=1e-4)


def test_refit_of_one_conv_solves_that_conv():
    """`only` with a single conv (depth pruning's repair after one contiguous cut): the original's
    one-output probe returns a tensor, not a list, and must not be read as one target per image."""
    model = _build("rrdbnet", **TINY["rrdbnet"])
    graph = channels.channel_graph(model)
    x = _x(5, 12) * 255
    keep = channels.plan(graph, channels.importance(model, graph, x), ratio=0.5)
    fast, slow = channels.apply(model, graph, keep), channels.apply(model, graph, keep)
    first = next(layer["name"] for layer in graph.config["layers"] if layer["class_name"] == "Conv2D")
    channels.refit(model, fast, graph, keep, x, only=[first])
    _refit_one_conv_at_a_time(model, slow, graph, keep, x)
    np.testing.assert_allclose(fast.get_layer(first).kernel.numpy(), slow.get_layer(first).kernel.numpy(),
                               rtol=1e-3, atol=1e-4)
    untouched = channels.apply(model, graph, keep)
    for layer in fast.layers[1:]:
        if layer.name != first and layer.weights:
            np.testing.assert_array_equal(layer.weights[0].numpy(), untouched.get_layer(layer.name).weights[0].numpy())

@pytest.mark.slow
def test_pruned_rrdn_with_custom_layers_runs_in_upscalerjs(tmp_path):
    """UpscalerJS 1.0.0 loads a channel-pruned RRDN (MultiplyBeta, PixelShuffle) unmodified."""
    from srjs.convert.write import write_model_dir
    from srjs.evaluate.shipped import load_shipped
    from srjs.modeldir import Manifest
    from srjs.runtime import run_upscalerjs

    params = TINY["rrdn"]
    parent = tmp_path / "rrdn"
    write_model_dir(_build("rrdn", **params), parent, Manifest(
        name="tiny-rrdn", arch="rrdn", arch_params=params, scale=2, value_range=[0, 1],
        source={"path": "random", "format": "test"}))
    out = tmp_path / "ch50"
    make_variant(parent, out, Recipe(prune_channels=0.5, steps=2))
    variant = load_shipped(out)
    assert variant.get_layer("F_1_1_1").filters < load_shipped(parent).get_layer("F_1_1_1").filters
    image = (np.random.default_rng(4).uniform(0, 1, (16, 20, 3)) * 255).astype(np.uint8)
    got = run_upscalerjs(out / modeldir.TFJS_LAYERS_DIR, image, 2, (0, 1))
    ours = np.clip(variant(image[None].astype(np.float32) / 255.0).numpy()[0] * 255.0, 0, 255)
    assert got.shape == ours.shape == (32, 40, 3)
    assert np.abs(got - ours).max() <= 2.0  # 2/255 of the range, in 8-bit levels


BUILD_CONFIG = """
name = "tinych"
source = "tiny.pth"

[package]
version = "1.0.0"

[evaluate]
limit = 1
crop = 32
latency_size = 32
warm = 1

[[variants]]
name = "ch50"
prune_channels = 0.5
steps = 3
[variants.gates]
min_fidelity_db = 10.0
"""


@pytest.mark.slow
def test_build_lists_a_channel_pruned_variant_with_gates(tmp_path):
    import json

    from tests.torch_reference import save_tiny_srvgg

    save_tiny_srvgg(tmp_path / "tiny.pth")
    (tmp_path / "tiny.toml").write_text(BUILD_CONFIG)
    result = run_cli("build", tmp_path / "tiny.toml", "-o", tmp_path / "out", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    by_name = {v["name"]: v for v in json.loads((tmp_path / "s.json").read_text())["variants"]}
    assert by_name["ch50"]["passed"] and by_name["ch50"]["verify_ok"]
    manifest = modeldir.read_manifest(tmp_path / "out" / "tinych" / "models" / "ch50")
    assert manifest.results["prune_channels"]["speedup_macs"] > 1.5
    assert (tmp_path / "out" / "tinych" / "package" / "models" / "tinych-ch50").is_dir()


def test_a_conv_added_to_an_unknown_layer_keeps_its_channels():
    from srjs.tf import keras

    L = keras.layers
    inp = L.Input((None, None, 3))
    mixed = L.Dense(8, name="mix")(L.Conv2D(8, 3, padding="same", name="a")(inp))  # mixes channels
    out = L.Conv2D(3, 3, padding="same", name="c")(L.Add()([L.Conv2D(8, 3, padding="same", name="b")(inp), mixed]))
    graph = channels.channel_graph(keras.Model(inp, out))
    assert sorted(m for members in graph.prunable().values() for m in members) == []  # a feeds mix, b adds to it
