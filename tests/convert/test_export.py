"""TF.js export (layers + graph) and exact graph simplification, on real UpscalerJS models.

The layers export is reloaded with tensorflowjs' own loader; the graph export is rebuilt from
its model.json topology and weight shards into a TensorFlow graph and run, so both checks read
the files that ship. One export per model and format per session (esrgan-thick is big).
"""
from __future__ import annotations

import collections
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from srjs.archs import custom_objects
from srjs.archs.layers import MultiplyBeta, PixelShuffle
from srjs.convert.export import ExportOptions, export_graph, export_layers, tensorflowjs
from srjs.convert.fold import simplify
from srjs.tf import keras, tf
from tests.conftest import SLIM_X2, THICK_X2, npm_model

pytestmark = pytest.mark.slow

# name: (npm source, scale, value range max)
MODELS = {"thick_x2": (THICK_X2, 2, 1.0), "slim_x2": (SLIM_X2, 2, 255.0)}


def load_layers(model_json: Path) -> keras.Model:
    with keras.utils.custom_object_scope(custom_objects()):
        return tensorflowjs().converters.load_keras_model(str(model_json))


def run_graph_model(model_json: Path, x: np.ndarray) -> np.ndarray:
    """Run a TF.js graph model in TensorFlow: its GraphDef JSON with the shard weights as Consts."""
    from google.protobuf.json_format import ParseDict
    from tensorflowjs import read_weights

    data = json.loads(model_json.read_text())
    graph_def = ParseDict(data["modelTopology"], tf.compat.v1.GraphDef())
    weights = {w["name"]: w["data"] for w in read_weights.read_weights(
        data["weightsManifest"], str(model_json.parent), flatten=True)}
    for node in graph_def.node:
        if node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights.pop(node.name)))
    assert not weights, f"weights with no Const node: {sorted(weights)[:3]}"
    signature = data["signature"]
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(signature["outputs"]["output"]["name"],
                           {signature["inputs"]["input"]["name"]: x})


def op_counts(model_json: Path) -> collections.Counter:
    return collections.Counter(n["op"] for n in json.loads(model_json.read_text())["modelTopology"]["node"])


def file_digests(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


@pytest.fixture(scope="session")
def models():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_layers(npm_model(MODELS[name][0]))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def exported(models, tmp_path_factory):
    """exported(name, fmt) -> model.json path; one export per model and format per session."""
    root = tmp_path_factory.mktemp("export")
    cache = {}

    def get(name, fmt):
        if (name, fmt) not in cache:
            out = root / name / f"tfjs_{fmt}"
            if fmt == "layers":
                cache[name, fmt] = export_layers(models(name), out, MODELS[name][1])
            else:
                cache[name, fmt] = export_graph(models(name), out)
        return cache[name, fmt]

    return get


def sample(name: str, h: int = 12, w: int = 20) -> np.ndarray:
    """Non-square input in the model's value range, so an H/W mix-up shows."""
    rng = np.random.default_rng(7)
    return (rng.uniform(0, 1, (1, h, w, 3)) * MODELS[name][2]).astype(np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_layers_export_reloads_and_matches_keras(name, models, exported):
    x = sample(name)
    want = models(name)(x).numpy()
    got = load_layers(exported(name, "layers"))(x).numpy()
    assert got.shape == (1, 24, 40, 3)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_both_exports_run_in_tfjs_node_and_match(models, exported):
    from srjs.runtime.run import run_tfjs

    x = sample("thick_x2")
    want = models("thick_x2")(x).numpy()
    results = run_tfjs([(exported("thick_x2", fmt), fmt) for fmt in ("layers", "graph")], [x],
                       runtime="node", backends=("wasm",), warm_runs=0)
    assert [(r.format, r.error) for r in results] == [("layers", None), ("graph", None)]
    for r in results:
        assert np.abs(r.outputs[0] - want).max() <= 1e-5 * np.abs(want).max()


def test_layers_export_uses_upscalerjs_layer_names(exported):
    data = json.loads(exported("thick_x2", "layers").read_text())
    config = data["modelTopology"]["model_config"]
    assert config["class_name"] == "Functional"
    by_class = collections.defaultdict(list)
    for layer in config["config"]["layers"]:
        by_class[layer["class_name"]].append(layer["config"])
    assert [c["scale"] for c in by_class["PixelShuffle2x"]] == [2]
    assert "PixelShuffle" not in by_class
    assert len(by_class["MultiplyBeta"]) == 40
    assert {c["beta"] for c in by_class["MultiplyBeta"]} == {0.2}
    # same weight names as the UpscalerJS package, so its model.json and ours are interchangeable
    original = json.loads(npm_model(THICK_X2).read_text())
    names = lambda d: sorted(w["name"] for g in d["weightsManifest"] for w in g["weights"])  # noqa: E731
    assert names(data) == names(original)


def test_layers_export_renames_plain_pixel_shuffle_and_compat_top_level(tmp_path):
    inp = keras.Input((None, None, 3))
    out = PixelShuffle(3)(keras.layers.Conv2D(27, 3, padding="same")(inp))
    model = keras.Model(inp, out)
    path = export_layers(model, tmp_path / "l", 3, ExportOptions(upscalerjs_compat=True))
    config = json.loads(path.read_text())["modelTopology"]["model_config"]
    assert config["class_name"] == "Model"
    assert [(l["class_name"], l["config"]["scale"]) for l in config["config"]["layers"] if "Pixel" in l["class_name"]] \
        == [("PixelShuffle3x", 3)]


@pytest.mark.parametrize("name", MODELS)
def test_graph_export_runs_and_matches_keras_at_two_sizes(name, models, exported):
    path = exported(name, "graph")
    for h, w in ((12, 20), (17, 9)):
        x = sample(name, h, w)
        want = models(name)(x).numpy()
        got = run_graph_model(path, x)
        assert got.shape == (1, 2 * h, 2 * w, 3)
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("name", MODELS)
def test_graph_signature_is_dynamic_and_ops_fused(name, exported):
    path = exported(name, "graph")
    signature = json.loads(path.read_text())["signature"]
    for side in ("inputs", "outputs"):
        (spec,) = signature[side].values()
        assert spec["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in spec["tensorShape"]["dim"]] == ["1", "-1", "-1", "3"]
    ops = op_counts(path)
    conv_layers = {"thick_x2": 154, "slim_x2": 12}[name]
    assert ops["_FusedConv2D"] == conv_layers
    assert not {"Conv2D", "BiasAdd", "Relu"} & set(ops)


def test_export_is_byte_identical_twice(models, exported, tmp_path):
    model = models("thick_x2")
    first_layers, first_graph = exported("thick_x2", "layers").parent, exported("thick_x2", "graph").parent
    again_layers = export_layers(model, tmp_path / "layers", 2).parent
    again_graph = export_graph(model, tmp_path / "graph").parent
    assert file_digests(again_layers) == file_digests(first_layers)
    assert file_digests(again_graph) == file_digests(first_graph)
    assert len(file_digests(first_graph)) == 8  # model.json + 7 shards of at most 4 MiB


@pytest.mark.parametrize("fmt", ["layers", "graph"])
def test_small_shards_add_up_and_load(fmt, models, tmp_path):
    model = models("slim_x2")
    shard = 64 * 1024
    opts = ExportOptions(shard_bytes=shard)
    path = export_layers(model, tmp_path / fmt, 2, opts) if fmt == "layers" else export_graph(model, tmp_path / fmt, opts)
    manifest = json.loads(path.read_text())["weightsManifest"]
    files = [path.parent / p for group in manifest for p in group["paths"]]
    sizes = [f.stat().st_size for f in files]
    weight_bytes = sum(4 * int(np.prod(w["shape"])) for group in manifest for w in group["weights"])
    assert len(files) == -(-weight_bytes // shard) > 1
    assert sum(sizes) == weight_bytes and max(sizes) <= shard
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(["model.json", *(f.name for f in files)])
    x = sample("slim_x2")
    want = model(x).numpy()
    got = load_layers(path)(x).numpy() if fmt == "layers" else run_graph_model(path, x)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_export_refuses_to_overwrite_unrelated_folder(models, tmp_path):
    from srjs.errors import BadInput

    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(BadInput, match="refusing to overwrite"):
        export_layers(models("slim_x2"), tmp_path, 2)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


# --- fold ---------------------------------------------------------------------------------

def residual_toy() -> keras.Model:
    """Every rewrite fold knows, plus the cases it must leave alone."""
    inp = keras.Input((None, None, 3), name="x")
    conv = lambda n, name, act=None: keras.layers.Conv2D(n, 3, padding="same", activation=act, name=name)  # noqa: E731
    a = conv(8, "a")(inp)
    a = keras.layers.Activation("relu", name="a_relu")(a)  # merged into conv a
    b = MultiplyBeta(0.2, name="b_beta")(conv(8, "b")(a))  # folded into b
    c = keras.layers.Lambda(lambda t: t * 0.5, name="c_half")(conv(8, "c")(b))  # folded into c
    c = keras.layers.Activation("linear", name="c_linear")(c)  # dropped
    c = keras.layers.Dropout(0.3, name="c_drop")(c)  # dropped
    d_conv = conv(8, "d")(c)
    d = MultiplyBeta(0.2, name="d_beta")(d_conv)  # kept: d's output also feeds the Add
    e = keras.layers.Add(name="e_add")([d, d_conv, b])
    f = MultiplyBeta(0.2, name="f_beta")(e)  # kept: after an Add, not a conv
    g = MultiplyBeta(0.2, name="g_beta")(conv(8, "g", "relu")(f))  # kept: conv has an activation
    out = PixelShuffle(2, name="shuffle")(conv(12, "out")(g))
    model = keras.Model(inp, out, name="toy")
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_simplify_folds_exactly_what_is_exact():
    model = residual_toy()
    before = [w.copy() for w in model.get_weights()]
    result = simplify(model)
    assert result.folded_scales == {"b_beta": "b", "c_half": "c"}
    assert result.merged_activations == {"a_relu": "a"}
    assert result.dropped == ["c_linear", "c_drop"]
    kept = {layer.name for layer in result.model.layers}
    assert {"d_beta", "f_beta", "g_beta"} <= kept and not {"b_beta", "c_half", "a_relu"} & kept
    np.testing.assert_allclose(result.model.get_layer("b").get_weights()[0],
                               model.get_layer("b").get_weights()[0] * np.float32(0.2), rtol=1e-6)
    x = np.random.default_rng(4).uniform(0, 1, (1, 9, 11, 3)).astype(np.float32)
    want, got = model(x).numpy(), result.model(x).numpy()
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    assert len(model.layers) == 17 and all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_simplified_graph_has_fewer_ops_and_same_output(tmp_path):
    model = residual_toy()
    plain = export_graph(model, tmp_path / "plain", simplify=False)
    folded = export_graph(model, tmp_path / "folded")
    plain_ops, folded_ops = op_counts(plain), op_counts(folded)
    # Grappler itself folds a Mul whose only consumer is a conv into that conv's kernel
    # (c_half into d, f_beta into g) but not a Mul after a conv whose result goes on to
    # several consumers (b_beta): that one is fold's. d_beta stays in both.
    assert (plain_ops["Mul"], folded_ops["Mul"]) == (2, 1)
    assert folded_ops["_FusedConv2D"] == plain_ops["_FusedConv2D"] == 6
    assert sum(folded_ops.values()) < sum(plain_ops.values())
    x = np.random.default_rng(5).uniform(0, 1, (1, 10, 6, 3)).astype(np.float32)
    want = model(x).numpy()
    for path in (plain, folded):
        assert np.abs(run_graph_model(path, x) - want).max() <= 1e-5 * np.abs(want).max()


def test_thick_graph_keeps_only_unfoldable_scales(models, exported):
    result = simplify(models("thick_x2"))
    # ISR RRDN: each dense block's LFF conv feeds a MultiplyBeta (30 fold); the 10 per-RRDB
    # scales follow an Add and stay.
    assert len(result.folded_scales) == 30
    assert all(conv.startswith("LFF_") for conv in result.folded_scales.values())
    assert op_counts(exported("thick_x2", "graph"))["Mul"] == 10
    x = sample("thick_x2")
    want = models("thick_x2")(x).numpy()
    assert np.abs(result.model(x).numpy() - want).max() <= 1e-5 * np.abs(want).max()
