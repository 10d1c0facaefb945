"""Hostile checkpoints and model.json files: each exits 2 with one line, writes nothing, runs nothing."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from srjs.convert.torch_pickle import read_torch_checkpoint
from srjs.errors import BadInput
from srjs.tf import tf
from tests.conftest import run_cli


def _payload(marker: Path):
    """A Lambda body that leaves a marker file when it runs (defaults are serialised with it)."""
    return lambda x, m=str(marker): (open(m, "w").write("ran"), x)[1]  # noqa: SIM115


def _lambda_model(marker: Path):
    from srjs.tf import keras

    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    outputs = keras.layers.Lambda(_payload(marker), name="wrapper")(x)
    model = keras.Model(inputs, outputs)
    marker.unlink(missing_ok=True)  # building the model ran it once, in the test's own hands
    return model


def _wrap_lambda(config: dict) -> dict:
    """The same model with its Lambda moved inside a TimeDistributed wrapper (`config.layer`)."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Lambda":
            inner = {"class_name": "Lambda", "config": dict(layer["config"])}
            layer["class_name"] = "TimeDistributed"
            layer["config"] = {"name": layer["config"]["name"], "trainable": True, "layer": inner}
    return config


def _save_hostile(model, path: Path, fmt: str) -> None:
    """Save `model` as `fmt`; for .h5/.keras hide its Lambda inside a wrapper's config."""
    if fmt == "saved_model":  # SavedModel Keras metadata was never checked at all
        model.save(str(path), save_format="tf")
        return
    model.save(path, save_format=fmt)
    if fmt == "h5":
        import h5py

        with h5py.File(path, "r+") as handle:
            config = json.loads(handle.attrs["model_config"])
            handle.attrs["model_config"] = json.dumps(_wrap_lambda(config))
    else:
        with zipfile.ZipFile(path) as src:
            members = {name: src.read(name) for name in src.namelist()}
        members["config.json"] = json.dumps(_wrap_lambda(json.loads(members["config.json"]))).encode()
        with zipfile.ZipFile(path, "w") as dst:
            for name, data in members.items():
                dst.writestr(name, data)


@pytest.mark.parametrize("fmt", ["h5", "keras", "saved_model"])
def test_lambda_inside_a_wrapper_is_refused_and_never_runs(tmp_path, fmt):
    marker = tmp_path / "payload-ran"
    path = tmp_path / {"h5": "m.h5", "keras": "m.keras", "saved_model": "sm"}[fmt]
    _save_hostile(_lambda_model(marker), path, fmt)
    marker.unlink(missing_ok=True)

    result = run_cli("convert", path, "-o", tmp_path / "out")

    assert result.exit_code == 2
    assert "'wrapper'" in result.output and len(result.output.strip().splitlines()) == 1
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_tfjs_model_json_with_a_nested_lambda_is_refused(tmp_path):
    layer = {"class_name": "Lambda", "config": {"name": "evil", "function": ["AAAA", None, None],
                                                "function_type": "lambda"}}
    topology = {"class_name": "Model", "config": {"layers": [
        {"class_name": "TimeDistributed", "config": {"name": "w", "layer": layer}}]}}
    (tmp_path / "model.json").write_text(json.dumps({"modelTopology": {"model_config": topology},
                                                     "weightsManifest": []}))
    result = run_cli("convert", tmp_path / "model.json", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "layer 'w' has class 'TimeDistributed'" in result.output
    assert not (tmp_path / "out").exists()


def test_keras_files_load_in_safe_mode_even_without_the_config_check(tmp_path, monkeypatch):
    """Second line of defence: should the config walk miss a Lambda, tf_keras still refuses its code."""
    from srjs.convert import gate

    marker = tmp_path / "payload-ran"
    model = _lambda_model(marker)
    path = tmp_path / "m.h5"
    model.save(path, save_format="h5")
    marker.unlink(missing_ok=True)
    monkeypatch.setattr(gate, "check_config", lambda config, where: None)
    result = run_cli("convert", path, "-o", tmp_path / "out")  # no srjs family: loads the file's own model
    assert result.exit_code == 2 and "cannot load Keras model" in result.output
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


# --- patch: Lambda bytecode is analysed in a sandboxed child, never unmarshalled here ----

def test_patch_never_unmarshals_in_process(tmp_path, monkeypatch):
    import marshal

    from srjs.convert.patch import patch_model_json
    from tests.convert.test_patch import _lambda_model_json

    # `tf` must be a global of this module, as in real models, for the call to be recognised
    data = _lambda_model_json(lambda x: tf.nn.depth_to_space(x, 2), "shuffle")

    def refuse(*_args):
        raise AssertionError("marshal.loads ran in srjs's own process")

    monkeypatch.setattr(marshal, "loads", refuse)
    result = patch_model_json(data)
    assert any("PixelShuffle2x" in change for change in result.changes)


@pytest.mark.parametrize("code", ["////", "4wAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "x" * 70000])
def test_patch_garbage_bytecode_is_bad_input(code):
    from srjs.convert.patch import patch_model_json

    layer = {"class_name": "Lambda", "config": {"name": "bad", "function": [code, None, None],
                                                "function_type": "lambda"}}
    data = {"modelTopology": {"model_config": {"class_name": "Functional", "config": {"layers": [layer]}}},
            "weightsManifest": []}
    with pytest.raises(BadInput, match="cannot translate"):
        patch_model_json(data)


# --- patch: manifest paths stay inside their folders --------------------------------------

def _model_json_with_shard(folder: Path, shard: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"format": "layers-model", "modelTopology": {"model_config": {"class_name": "Functional", "config": {
        "layers": [{"class_name": "InputLayer", "name": "in", "config": {"name": "in"}}]}}},
        "weightsManifest": [{"paths": [shard], "weights": [{"name": "in/x", "shape": [1], "dtype": "float32"}]}]}
    (folder / "model.json").write_text(json.dumps(data))
    return folder / "model.json"


def test_patch_refuses_to_read_or_write_outside_the_model_folder(tmp_path):
    (tmp_path / "evil.bin").write_bytes(b"\0" * 4)
    path = _model_json_with_shard(tmp_path / "in", "../evil.bin")
    result = run_cli("patch", path, "-o", tmp_path / "deep" / "out" / "model.json")
    assert result.exit_code == 2 and "leaves the model folder" in result.output
    assert not (tmp_path / "deep").exists()


@pytest.mark.parametrize("text", ["[1, 2, 3]", "42", "{\"modelTopology\": "])
def test_patch_non_object_json_exits_2(tmp_path, text):
    (tmp_path / "model.json").write_text(text)
    result = run_cli("patch", tmp_path / "model.json")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_unknown_tfjs_dtype_exits_2(tmp_path):
    path = _model_json_with_shard(tmp_path / "m", "s.bin")
    data = json.loads(path.read_text())
    data["weightsManifest"][0]["weights"][0]["dtype"] = "complex128"
    path.write_text(json.dumps(data))
    (tmp_path / "m" / "s.bin").write_bytes(b"\0" * 16)
    result = run_cli("convert", path, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "unsupported dtype 'complex128'" in result.output
    assert not (tmp_path / "out").exists()


# --- PyTorch pickles ----------------------------------------------------------------------

def test_refused_build_leaves_no_state_for_the_next_load(tmp_path):
    # GLOBAL torch.FloatStorage; BUILD {"dtype": "int64"}: would retype every later float32 storage
    hostile = tmp_path / "build.pth"
    hostile.write_bytes(b"\x80\x02ctorch\nFloatStorage\n}(X\x05\x00\x00\x00dtypeX\x05\x00\x00\x00int64ub.")
    with pytest.raises(BadInput, match="modify"):
        read_torch_checkpoint(hostile)
    good = tmp_path / "good.pth"
    weights = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    torch.save({"w": weights}, good)
    np.testing.assert_array_equal(read_torch_checkpoint(good)["w"], weights.numpy())


def test_memo_references_share_one_array(tmp_path):
    tensor = torch.ones(1000)
    path = tmp_path / "memo.pth"
    torch.save({f"k{i}": tensor for i in range(1000)}, path)  # one tensor, 1000 memo references
    loaded = read_torch_checkpoint(path)
    assert len(loaded) == 1000
    assert all(value is loaded["k0"] for value in loaded.values())


def test_views_expanding_past_the_byte_budget_are_refused(tmp_path):
    base = torch.zeros(1 << 18)  # 1 MiB storage, 200 distinct full views of it: 200 MiB decoded
    path = tmp_path / "views.pth"
    torch.save({f"v{i}": base.view(512, 512) for i in range(200)}, path)
    assert path.stat().st_size < 2 << 20
    with pytest.raises(BadInput, match="more bytes than such a file can hold"):
        read_torch_checkpoint(path)


def test_compressed_zip_members_are_refused(tmp_path):
    plain = tmp_path / "plain.pth"
    torch.save({"w": torch.zeros(1 << 16)}, plain)
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert bomb.stat().st_size < plain.stat().st_size / 10
    with pytest.raises(BadInput, match="compressed"):
        read_torch_checkpoint(bomb)


# --- exit codes -----------------------------------------------------------------------------

def _run_main(monkeypatch, *args) -> int:
    import sys

    from srjs import cli

    monkeypatch.setattr(sys, "argv", ["srjs", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    return done.value.code


def test_main_propagates_ctx_exit_and_ctrl_c(monkeypatch):
    import click

    from srjs import cli

    @cli.cli.command("_exit-one")
    @click.pass_context
    def exit_one(ctx):
        ctx.exit(1)

    @cli.cli.command("_interrupt")
    def interrupt():
        raise KeyboardInterrupt

    try:
        assert _run_main(monkeypatch, "_exit-one") == 1
        assert _run_main(monkeypatch, "_interrupt") == 130
        assert _run_main(monkeypatch, "--help") == 0
    finally:
        cli.cli.commands.pop("_exit-one")
        cli.cli.commands.pop("_interrupt")
