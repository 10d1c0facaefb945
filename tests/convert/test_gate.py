"""The config gate: only classes srjs builds reach TensorFlow, on every path that loads Keras.

The hostile layer below is the one a review found: srjs's own class name `MultiplyBeta`, with
`module`/`registered_name` pointing at TensorFlow's legacy Lambda, which unmarshals the file's
bytecode without a safe-mode check. Each test asserts exit 2, one line naming the layer, no
marker file from the payload, nothing written.
"""
from __future__ import annotations

import base64
import json
import marshal
import zipfile
from pathlib import Path

import numpy as np
import pytest

from srjs import modeldir
from srjs.archs import ARCHS
from srjs.archs.layers import MultiplyBeta
from srjs.convert import gate
from srjs.errors import BadInput
from srjs.tf import keras
from tests.conftest import run_cli


def _body(x, marker="MARKER"):
    return (open(marker, "w").write("ran"), x)[1]  # noqa: SIM115


def _legacy_lambda_layer(marker: Path) -> dict:
    """A layer named like srjs's MultiplyBeta that tf_keras resolves to TF's legacy Lambda."""
    code = base64.b64encode(marshal.dumps(_body.__code__)).decode()
    return {"module": "tensorflow.python.keras.layers", "class_name": "MultiplyBeta",
            "registered_name": "Lambda", "name": "evil",
            "config": {"name": "evil", "trainable": True, "dtype": "float32",
                       "function": [code, [str(marker)], None], "function_type": "lambda",
                       "module": "__main__", "output_shape": None, "output_shape_type": "raw",
                       "output_shape_module": None, "arguments": {}}}


def _tiny_model():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    return keras.Model(inputs, MultiplyBeta(0.2, name="evil")(x))


def _make_hostile(config: dict, marker: Path) -> dict:
    """`config` (a Functional's, in any format) with the MultiplyBeta layer made hostile."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "MultiplyBeta":
            hostile = _legacy_lambda_layer(marker)
            layer.pop("build_config", None)  # the legacy class has no build_from_config
            layer.update({k: v for k, v in hostile.items() if k != "name"})
    return config


def _hostile_keras(path: Path, marker: Path) -> Path:
    _tiny_model().save(path)
    with zipfile.ZipFile(path) as src:
        members = {name: src.read(name) for name in src.namelist()}
    members["config.json"] = json.dumps(_make_hostile(json.loads(members["config.json"]), marker)).encode()
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    return path


def _hostile_h5(path: Path, marker: Path) -> Path:
    import h5py

    _tiny_model().save(path, save_format="h5")
    with h5py.File(path, "r+") as handle:
        handle.attrs["model_config"] = json.dumps(_make_hostile(json.loads(handle.attrs["model_config"]), marker))
    return path


def _hostile_saved_model(path: Path, marker: Path) -> Path:
    from tf_keras.protobuf import saved_metadata_pb2

    _tiny_model().save(str(path), save_format="tf")
    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString((path / "keras_metadata.pb").read_bytes())
    for node in proto.nodes:
        data = json.loads(node.metadata) if node.metadata else {}
        if isinstance(data.get("config"), dict) and "layers" in data["config"]:
            node.metadata = json.dumps(_make_hostile(data, marker))
    (path / "keras_metadata.pb").write_bytes(proto.SerializeToString())
    return path


def _hostile_model_json(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    config = _make_hostile(json.loads(_tiny_model().to_json()), marker)
    conv = np.zeros((3, 3, 3, 3), np.float32)
    (folder / "group1-shard1of1.bin").write_bytes(conv.tobytes() + np.zeros(3, np.float32).tobytes())
    weights = [{"name": "conv/kernel", "shape": [3, 3, 3, 3], "dtype": "float32"},
               {"name": "conv/bias", "shape": [3], "dtype": "float32"}]
    (folder / "model.json").write_text(json.dumps({
        "format": "layers-model", "modelTopology": {"model_config": config},
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": weights}]}))
    return folder / "model.json"


def _assert_refused(result, marker: Path, *unwritten: Path) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'evil'" in lines[0], result.output
    assert not marker.exists(), "the file's code ran"
    for path in unwritten:
        assert not path.exists()


def test_the_payload_is_live_without_the_gate(tmp_path):
    """Guard for the tests below: tf_keras itself does run this payload (safe mode or not)."""
    from srjs.archs import custom_objects
    from srjs.tf import keras_safe_mode

    marker = tmp_path / "ran"
    path = _hostile_keras(tmp_path / "m.keras", marker)
    with pytest.raises(Exception), keras_safe_mode():
        keras.models.load_model(path, custom_objects=custom_objects(), compile=False, safe_mode=True)
    assert marker.exists()


@pytest.mark.parametrize("fmt", ["keras", "h5", "saved_model", "model_json"])
def test_convert_refuses_a_legacy_lambda_behind_an_srjs_class_name(tmp_path, fmt):
    marker = tmp_path / "ran"
    make = {"keras": lambda: _hostile_keras(tmp_path / "m.keras", marker),
            "h5": lambda: _hostile_h5(tmp_path / "m.h5", marker),
            "saved_model": lambda: _hostile_saved_model(tmp_path / "sm", marker),
            "model_json": lambda: _hostile_model_json(tmp_path / "tfjs", marker)}[fmt]
    source = make()
    _assert_refused(run_cli("convert", source, "-o", tmp_path / "out"), marker, tmp_path / "out")


def _model_dir(root: Path, keras_file: Path) -> Path:
    (root / "keras").mkdir(parents=True)
    keras_file.replace(root / modeldir.KERAS_FILE)
    manifest = modeldir.Manifest(name="tiny", arch="srvgg", arch_params={"scale": 1}, scale=1,
                                 value_range=[0, 1], source={"path": "x", "format": "keras", "sha256": "0" * 64})
    modeldir.write_manifest(root, manifest)
    return root


def test_model_dirs_pass_the_gate_before_keras_loads_them(tmp_path):
    """`srjs upscale` (and every command loading a model dir) refuses a hostile keras/model.keras."""
    from PIL import Image

    marker = tmp_path / "ran"
    model_dir = _model_dir(tmp_path / "dir", _hostile_keras(tmp_path / "m.keras", marker))
    Image.new("RGB", (4, 4)).save(tmp_path / "in.png")
    result = run_cli("upscale", model_dir, tmp_path / "in.png", "-o", tmp_path / "out.png",
                     "--runtime", "python")
    _assert_refused(result, marker, tmp_path / "out.png")
    with pytest.raises(BadInput, match="'evil'"):
        modeldir.load_keras(model_dir)
    assert not marker.exists()


# --- the rules, one at a time -------------------------------------------------------------

def _layer(**fields) -> dict:
    layer = {"class_name": "Conv2D", "config": {"name": "c1", "filters": 3, "kernel_size": [3, 3],
                                                "activation": "linear",
                                                "kernel_initializer": {"class_name": "GlorotUniform",
                                                                       "config": {"seed": None}}}}
    layer.update(fields)
    return {"class_name": "Functional", "config": {"name": "m", "layers": [layer]}}


@pytest.mark.parametrize("fields, why", [
    ({"class_name": "Lambda"}, "Lambda layer 'c1'"),
    ({"class_name": "TimeDistributed"}, "class 'TimeDistributed'"),
    ({"class_name": "os.system"}, "class 'os.system'"),
    ({"module": "tensorflow.python.keras.layers"}, "module 'tensorflow.python.keras.layers'"),
    ({"module": "builtins"}, "module 'builtins'"),
    ({"registered_name": "Lambda"}, "as 'Lambda'"),
    ({"config": {"name": "c1", "function": "AAAA"}}, "serialised Python ('function')"),
    ({"config": {"name": "c1", "activation": "os.system"}}, "activation 'os.system'"),
    ({"config": {"name": "c1", "activation": "deserialize"}}, "activation 'deserialize'"),
    ({"config": {"name": "c1", "kernel_initializer": {"class_name": "Evil", "config": {}}}}, "class 'Evil'"),
    ({"config": {"name": "c1", "kernel_initializer": "my.module"}}, "kernel_initializer 'my.module'"),
])
def test_each_rule_names_the_layer(fields, why):
    with pytest.raises(BadInput) as err:
        gate.check_config(_layer(**fields), "m.json")
    assert why in str(err.value.message) and "'c1'" in err.value.message


def test_keras_and_srjs_modules_and_plain_configs_pass():
    gate.check_config(_layer(module="keras.layers", registered_name=None), "m.json")
    gate.check_config(_layer(module="tf_keras.src.layers", registered_name="Conv2D"), "m.json")
    gate.check_config({"class_name": "PixelShuffle", "module": "srjs.archs.layers",
                       "registered_name": "PixelShuffle", "config": {"name": "s", "scale": 2}}, "m.json")


def test_deep_configs_are_bad_input_not_a_recursion_error():
    config: dict = {"class_name": "Functional", "config": {}}
    for _ in range(300):
        config = {"class_name": "Functional", "config": {"layers": [config]}}
    with pytest.raises(BadInput, match="nested deeper"):
        gate.check_config(config, "m.json")


# Small sizes for the builders' size parameters (a family's other parameters keep their defaults).
_TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "num_conv": 2, "C": 1, "D": 1, "G": 4,
         "G0": 4, "T": 1, "feature_channels": 8, "dim": 8, "n_blocks": 1}
_EXTRA = {"rrdbnet": [{"plus": True}],
          "srvgg": [{"act_type": "relu"}, {"act_type": "leakyrelu"}, {"scale": 2, "shuffle_scale": 4}],
          "rdn": [{"upscaling": "shuffle"}]}


@pytest.mark.parametrize("family, extra", [(name, extra) for name in ARCHS.names()
                                           for extra in [{}] + _EXTRA.get(name, [])])
def test_every_registered_family_passes_the_gate(family, extra):
    """The allowlist covers what srjs builds: a new family whose layers are missing fails here."""
    import inspect

    from tf_keras.src.saving.serialization_lib import serialize_keras_object

    build = ARCHS.get(family).build
    named = inspect.signature(build).parameters
    if any(p.kind is p.VAR_KEYWORD for p in named.values()):  # e.g. plksr: build(**params)
        named = {"dim", "n_blocks"}
    model = build(**{k: v for k, v in _TINY.items() if k in named}, **extra)
    gate.check_config(json.loads(model.to_json()), family)  # the .h5 / model.json form
    gate.check_config(serialize_keras_object(model), family)  # the .keras form (module, registered_name)


def test_a_saved_model_whose_variables_do_not_fit_its_config_is_bad_input(tmp_path):
    """SavedModels are rebuilt from their checked config; weights that do not fit are not ignored."""
    _tiny_model().save(str(tmp_path / "sm"), save_format="tf")
    inputs = keras.Input((4, 4, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="other")(inputs))
    other.save(str(tmp_path / "other"), save_format="tf")
    variables = tmp_path / "sm" / "variables"
    for shard in variables.iterdir():
        shard.unlink()
    for shard in (tmp_path / "other" / "variables").iterdir():
        shard.replace(variables / shard.name)
    result = run_cli("convert", tmp_path / "sm", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "cannot load Keras model" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_keras_zip_whose_weights_claim_to_unpack_past_the_cap_is_refused(tmp_path, monkeypatch):
    """The weights are extracted to a temporary file first; the member's declared size is capped."""
    path = tmp_path / "m.keras"
    _tiny_model().save(path)
    monkeypatch.setattr(gate, "_MAX_KERAS_WEIGHTS", 100)
    with pytest.raises(BadInput, match="model.weights.h5 unpacks to .* bytes"):
        gate.load_keras_file(path)
