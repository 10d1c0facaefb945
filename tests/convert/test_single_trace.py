"""convert writes each artifact once: one trace per SavedModel, no SavedModel round trip for
the graph export, gzip sizes only for what ships (issue 17: x4plus took minutes)."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from srjs import modeldir


@pytest.fixture(scope="module")
def tiny_rrdb(tmp_path_factory):
    """A 2-block, 8-feature RRDBNet x4 (its 0.2 scales fold into convs) and its .pth."""
    import torch

    from srjs.convert.detect import build_model
    from srjs.convert.sources import read_checkpoint
    from tests.torch_reference import RRDBNet, randomize

    path = tmp_path_factory.mktemp("rrdb") / "tiny-rrdb.pth"
    torch.save({"params_ema": randomize(RRDBNet(num_feat=8, num_block=2, num_grow_ch=4), seed=3).state_dict()}, path)
    return path, build_model(read_checkpoint(path)).model


def test_simplified_call_computes_what_simplify_builds(tiny_rrdb):
    from srjs.convert.fold import simplified_call, simplify
    from srjs.tf import tf

    _, model = tiny_rrdb
    x = np.random.default_rng(0).random((1, 11, 9, 3), dtype=np.float32)
    folded = simplify(model)
    assert len(folded.folded_scales) == 2 * 3  # each dense block's 0.2 went into its conv5
    direct = simplified_call(model)(tf.constant(x)).numpy()
    np.testing.assert_array_equal(direct, folded.model(x, training=False).numpy())
    np.testing.assert_allclose(direct, model(x, training=False).numpy(), rtol=0, atol=1e-5)


def test_graph_export_traces_once_and_writes_no_saved_model(tiny_rrdb, tmp_path, monkeypatch):
    from srjs import tfjs_weights
    from srjs.convert.export import export_graph
    from srjs.convert.fold import simplify
    from srjs.tf import tf

    _, model = tiny_rrdb

    def refuse(*args, **kwargs):
        raise AssertionError("the graph export wrote a SavedModel")

    monkeypatch.setattr(tf.saved_model, "save", refuse)
    path = export_graph(model, tmp_path / "graph")
    data = json.loads(path.read_text())
    assert data["signature"]["inputs"]["input"]["tensorShape"]["dim"] == [
        {"size": "1"}, {"size": "-1"}, {"size": "-1"}, {"size": "3"}]
    assert list(data["signature"]["outputs"]) == ["output"]
    # the shards hold the folded network's weights: every folded conv kernel is there, scaled
    shipped = list(tfjs_weights.read_weights(path).values())
    folded = simplify(model).model
    for conv in ("body__0__rdb1__conv5", "body__1__rdb3__conv5"):
        kernel = folded.get_layer(conv).get_weights()[0]
        assert any(w.shape == kernel.shape and np.array_equal(w, kernel) for w in shipped), conv


def test_saved_model_holds_one_trace_and_reloads(tiny_rrdb, tmp_path):
    """Keras' per-layer traces (save_traces) made the library 327 functions for this model."""
    from tensorflow.python.saved_model import loader_impl

    from srjs.convert import gate
    from srjs.convert.export import export_saved_model

    _, model = tiny_rrdb
    out = export_saved_model(model, tmp_path / "sm")
    graph = loader_impl.parse_saved_model(str(out)).meta_graphs[0]
    assert len(graph.object_graph_def.concrete_functions) <= 2
    x = np.random.default_rng(1).random((1, 7, 6, 3), dtype=np.float32)
    again = gate.load_keras_file(out)  # the layer configs in keras_metadata.pb + the checkpoint
    np.testing.assert_array_equal(again(x, training=False).numpy(), model(x, training=False).numpy())


def test_manifest_gzips_only_what_ships_at_level_6(tiny_rrdb, converted):
    path, _ = tiny_rrdb
    root = converted(str(path))
    files = modeldir.read_manifest(root).files
    assert {k.split("/")[0] for k in files} == {"keras", "saved_model", "tfjs_layers", "tfjs_graph"}
    for rel, entry in files.items():
        data = (root / rel).read_bytes()
        assert entry["bytes"] == len(data)
        if rel.split("/")[0] in ("tfjs_layers", "tfjs_graph"):
            assert entry["gzip_bytes"] == len(gzip.compress(data, compresslevel=6, mtime=0)), rel
        else:
            assert entry["gzip_bytes"] is None, rel


def test_file_index_reuses_started_entries_only_for_unchanged_files(tmp_path):
    root = tmp_path / "dir"
    (root / "tfjs_layers").mkdir(parents=True)
    (root / "keras").mkdir()
    (root / "tfjs_layers" / "a.bin").write_bytes(b"\0" * 1000)
    (root / "tfjs_layers" / "b.bin").write_bytes(b"ab" * 500)
    (root / "keras" / "model.keras").write_bytes(b"k" * 10)
    with modeldir.FileIndex(root) as index:
        index.start(root / "tfjs_layers")
        (root / "tfjs_layers" / "b.bin").write_bytes(b"xyz" * 700)  # rewritten after start (optimize's finish)
        (root / "tfjs_layers" / "c.bin").write_bytes(b"c")  # written after start
        entries = index.entries()
    assert entries == modeldir.index_files(root)
    assert entries["tfjs_layers/b.bin"]["bytes"] == 2100
    assert entries["tfjs_layers/a.bin"]["gzip_bytes"] == len(gzip.compress(b"\0" * 1000, compresslevel=6, mtime=0))
    assert entries["keras/model.keras"]["gzip_bytes"] is None


def test_keras_file_weights_are_read_from_an_extracted_copy(tiny_rrdb, tmp_path, monkeypatch):
    """h5py seeking inside the zip member re-read it from the start each time: 14 min for x4plus."""
    from tf_keras.src.saving import saving_lib

    from srjs.convert import gate

    _, model = tiny_rrdb
    path = tmp_path / "m.keras"
    model.save(path, save_format="keras")
    stores = []
    real = saving_lib.H5IOStore

    def recording(root_path, archive=None, mode="r"):
        stores.append((root_path, archive))
        return real(root_path, archive=archive, mode=mode)

    monkeypatch.setattr(saving_lib, "H5IOStore", recording)
    loaded = gate.load_keras_file(path)
    assert len(stores) == 1 and stores[0][1] is None and stores[0][0].endswith("model.weights.h5")
    x = np.random.default_rng(2).random((1, 6, 5, 3), dtype=np.float32)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), model(x, training=False).numpy())


def test_graph_export_runs_grappler_on_stand_ins_and_writes_the_same_files(tiny_rrdb, tmp_path, monkeypatch):
    """The weights skip grappler (stand-ins, put back by marker: the x4plus peak was its copies);
    the files are byte-identical to a run with the weights inside."""
    from srjs.convert import export

    _, model = tiny_rrdb
    restored = []  # (stand-ins, whether they were put back) per export
    real_restore = export._restore_constants

    def spy(graph_def, stash):
        restored.append((len(stash), real_restore(graph_def, stash)))
        return restored[-1][1]

    monkeypatch.setattr(export, "_restore_constants", spy)
    export.export_graph(model, tmp_path / "lean")
    assert len(restored) == 1 and restored[0][1] is True
    assert restored[0][0] >= 2 * 3 * 5  # every conv kernel of the dense blocks went as a stand-in
    monkeypatch.setattr(export, "_STASH_MIN_VALUES", 10**12)  # nothing stashed: the weights go through grappler
    export.export_graph(model, tmp_path / "full")
    files = sorted(p.name for p in (tmp_path / "full").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "lean").iterdir())
    for name in files:
        assert (tmp_path / "lean" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_restore_refuses_a_graph_that_computed_with_a_stand_in():
    """A renamed stand-in (grappler folding an Identity) gets its tensor back; a stand-in that
    went through arithmetic (a new value: w * 2 folded) means grappler used it: refused."""
    from srjs.convert.export import _restore_constants, _stash_constants
    from srjs.tf import tf

    graph = tf.Graph()
    with graph.as_default():
        w = tf.constant(np.arange(300, dtype=np.float32), name="w")
        tf.identity(w * 2.0, name="out")
    graph_def = graph.as_graph_def()
    stash = _stash_constants(graph_def)
    assert len(stash) == 1
    renamed = graph_def.__class__()
    renamed.CopyFrom(graph_def)
    next(n for n in renamed.node if n.name == "w").name = "w/Identity"
    assert _restore_constants(renamed, stash)
    np.testing.assert_array_equal(
        tf.make_ndarray(next(n for n in renamed.node if n.name == "w/Identity").attr["value"].tensor),
        np.arange(300, dtype=np.float32))
    folded = graph_def.__class__()
    folded.CopyFrom(graph_def)
    tensor = next(n for n in folded.node if n.name == "w").attr["value"].tensor
    tensor.float_val[0] *= 2.0  # what constant folding of w * 2 on the stand-in would leave
    assert not _restore_constants(folded, stash)
    reduced = graph_def.__class__()
    reduced.CopyFrom(graph_def)
    tensor = next(n for n in reduced.node if n.name == "w").attr["value"].tensor
    tensor.tensor_shape.dim[0].size = 1  # a small constant computed from it (a sum, a slice)
    assert not _restore_constants(reduced, stash)
