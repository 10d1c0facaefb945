"""Property-based tests of two readers that take files from users: a model dir's manifest.json
and a build config (TOML).

Every generated input ends in a value or BadInput (exit 2, one line), never another exception;
and what is accepted is usable: typed as promised, finite, and writable back as strict JSON.
Inputs are mutations of a valid document (fields replaced by other JSON/TOML values, deleted,
added, nested), arbitrary documents, and raw bytes or text. Derandomized, so CI sees the same
examples each run; no example database is written.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from srjs import modeldir
from srjs.errors import BadInput
from tests.test_hostile_inputs import srjs_main

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CLI = settings(FAST, max_examples=20)


def _one_line(err: BadInput) -> None:
    assert err.message and "\n" not in err.message and "Traceback" not in err.message
    event("refused")  # --hypothesis-show-statistics: how many examples each way


# --- manifest.json -------------------------------------------------------------------------------

VALID_MANIFEST = {
    "name": "tiny-x2", "arch": "srvgg", "arch_params": {"num_feat": 8, "scale": 2, "act_type": "prelu"},
    "scale": 2, "value_range": [0, 1], "value_range_from": "convention",
    "source": {"path": "tiny.pth", "format": "pth", "sha256": "ab" * 32}, "parent": None,
    "recipe": {"quantize": "uint8"}, "results": {"seam_free_padding": 4, "seam_patch": 32, "heldout": {"drop_db": 0.01}},
    "files": {"tfjs_layers/model.json": {"bytes": 10, "gzip_bytes": 9, "sha256": "cd" * 32}},
    "srjs_version": "0.1.0", "schema": modeldir.SCHEMA,
}

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=10)
# Values near the edge of what each field allows, so mutations also probe the ranges.
PLAUSIBLE = {
    "name": st.text(max_size=210),
    "scale": st.one_of(st.integers(-2, 20), st.floats(0, 20), st.booleans()),
    "value_range": st.lists(st.sampled_from([0, 1, 255, 0.0, 1.0, 255.0, True, False, -1, "1"]), max_size=3),
    "files": st.dictionaries(st.sampled_from(["a", "a/b.bin", "../x", "/abs", "", ".", "a//b", "a\\b", "a\nb"]),
                             st.one_of(json_values, st.fixed_dictionaries({
                                 "bytes": st.integers(-2, 2 ** 54), "gzip_bytes": st.integers(0, 10),
                                 "sha256": st.sampled_from(["ab" * 32, "AB" * 32, "ab", ""])})), max_size=3),
    "parent": st.one_of(st.none(), st.text(max_size=20)),
    "results": st.dictionaries(st.sampled_from(["seam_free_padding", "seam_patch", "quality", "x"]),
                               json_values, max_size=3),
    "schema": st.sampled_from([modeldir.SCHEMA, "srjs.manifest/2", ""]),
}


@st.composite
def manifests(draw):
    doc = json.loads(json.dumps(VALID_MANIFEST))
    for key in draw(st.lists(st.sampled_from([*VALID_MANIFEST, "channels", "cost", "extra"]), max_size=3, unique=True)):
        action = draw(st.sampled_from(["replace", "replace", "delete", "add inside"]))
        if action == "delete":
            doc.pop(key, None)
        elif action == "add inside" and isinstance(doc.get(key), dict):
            doc[key][draw(st.text(max_size=10))] = draw(json_values)
        else:
            doc[key] = draw(PLAUSIBLE.get(key, json_values) if draw(st.booleans()) else json_values)
    return doc


manifest_files = st.one_of(
    manifests().map(lambda d: json.dumps(d).encode()),  # json.dumps writes NaN/Infinity: a hostile writer
    json_values.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=64))


@pytest.fixture(scope="module")
def manifest_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-manifest")


@FAST
@given(data=manifest_files)
def test_manifest_reader_returns_a_usable_manifest_or_bad_input(manifest_dir, data):
    from srjs.package.writer import _meta, entry_name

    (manifest_dir / modeldir.MANIFEST).write_bytes(data)
    try:
        manifest = modeldir.read_manifest(manifest_dir)
    except BadInput as err:
        _one_line(err)
        return
    event("accepted")
    assert isinstance(manifest.name, str) and manifest.name.isprintable() and manifest.name.strip()
    assert type(manifest.scale) is int and 1 <= manifest.scale <= 16
    assert manifest.value_range in ([0, 1], [0, 255]) and manifest.value_max in (1.0, 255.0)
    assert all(".." not in p.split("/") and not p.startswith("/") for p in manifest.files)
    assert isinstance(manifest.arch_params, dict) and isinstance(manifest.results, dict)
    json.loads(modeldir.manifest_text(manifest))  # writes back as strict JSON
    assert entry_name(manifest.name) and _meta(manifest)["name"] == manifest.name


@CLI
@given(doc=manifests())
def test_cli_on_a_generated_manifest_exits_2_and_writes_nothing(tmp_path_factory, capsys, monkeypatch, doc):
    """`srjs package`: a bad manifest, or a good one without TF.js exports, is bad input."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    (root / "model").mkdir()
    (root / "model" / modeldir.MANIFEST).write_text(json.dumps(doc))
    result = srjs_main(capsys, monkeypatch, "package", root / "model", "-o", root / "pkg")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert sorted(p.name for p in root.iterdir()) == ["model"]


# --- build config (TOML) --------------------------------------------------------------------------

VALID_CONFIG = {
    "name": "tiny", "source": "missing.pth",
    "convert": {"arch": "auto", "shard_mb": 4.0},
    "verify": {"runtimes": ["node"]},
    "evaluate": {"dataset": "builtin", "limit": 1, "crop": 32, "latency_size": 32, "latency_tiles": [0, 16],
                 "warm": 1, "seam": True},
    "package": {"version": "1.2.3", "exports": ["layers"]},
    "gates": {"max_drop_db": 1.0, "max_gzip_bytes": 100000},
    "variants": [{"name": "float16", "quantize": "float16"},
                 {"name": "auto", "quantize": "auto", "max_drop_db": 0.05, "gates": {"min_fidelity_db": 40.0}}],
}
TABLES = ("convert", "verify", "evaluate", "package", "gates")
KEYS = {"convert": ["arch", "scale", "value_range", "shard_mb"], "verify": ["runtimes"],
        "evaluate": ["dataset", "limit", "crop", "latency_size", "latency_tiles", "warm", "seam"],
        "package": ["name", "version", "exports"],
        "gates": ["max_drop_db", "min_fidelity_db", "min_psnr_y", "max_gzip_bytes", "max_warm_ms"],
        "variants": ["name", "quantize", "max_drop_db", "min_fidelity_db", "prune", "prune_channels", "cluster",
                     "steps", "time_budget_s", "calib", "gates"]}

toml_scalars = st.one_of(
    st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", "node", "browser", "layers", "graph", "0-1", "auto", "uint8",
                                           "float16", "builtin", "original", "Tiny", "a/b", "..", "x\x00",
                                           "1.0.0", "@me/x"]),
    st.dates(), st.datetimes())
toml_values = st.recursive(toml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
numbers = st.one_of(st.integers(-3, 5000), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -1, 1e300]))


def _toml_str(text: str) -> str:
    """A TOML basic string (JSON's escapes, minus the surrogate pairs TOML refuses; DEL escaped)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_str(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()  # date, datetime


def to_toml(doc: dict) -> str:
    """A TOML text of `doc`: top-level values, then [tables], then [[arrays of tables]]."""
    lines = [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(t, dict) for t in v))]
    for key, value in doc.items():
        if isinstance(value, dict):
            lines += ["", f"[{_toml_str(key)}]"] + [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(t, dict) for t in value):
            for table in value:
                lines += ["", f"[[{_toml_str(key)}]]"] + [f"{_toml_str(k)} = {_toml_value(v)}"
                                                          for k, v in table.items()]
    return "\n".join(lines) + "\n"


NAMES = st.one_of(st.text(max_size=12), st.sampled_from(
    ["ok-name", "Tiny", "a b", "x\x00y", "..", ".hidden", "-x", "é", "a" * 101, "original", "a/b", "@me/x"]))
FLOAT_KEYS = {"shard_mb", "max_drop_db", "min_fidelity_db", "min_psnr_y", "max_warm_ms", "prune",
              "prune_channels", "time_budget_s"}
INT_KEYS = {"scale", "limit", "crop", "latency_size", "warm", "max_gzip_bytes", "cluster", "steps"}
# A value of the field's own type most of the time (so ranges, finiteness and names are what
# is probed, not only types), anything TOML can say otherwise.
TYPED = {
    **{k: st.one_of(numbers, st.floats(-1, 2)) for k in FLOAT_KEYS},
    **{k: st.one_of(st.integers(-3, 300), st.integers()) for k in INT_KEYS},
    "runtimes": st.lists(st.sampled_from(["node", "browser", "upscalerjs", "python", "x", ""]), max_size=3),
    "exports": st.lists(st.sampled_from(["layers", "graph", "onnx", ""]), max_size=3),
    "latency_tiles": st.lists(st.integers(-5, 5000), max_size=3),
    "seam": st.booleans(),
    "version": st.sampled_from(["1.0.0", "1.0", "v1", "", "1.0.0-rc.1", "01.0.0"]),
    "value_range": st.sampled_from(["0-1", "0-255", "0-2", ""]),
    "quantize": st.sampled_from(["uint8", "auto", "float16", "uint8:*conv*", "int4", "uint8:", ""]),
}


@st.composite
def configs(draw):
    """A valid config with 1-2 mutations: mostly one key set to another value of its type (a
    range's edge, nan, inf, an unsafe name, an empty list), sometimes to anything, deleted,
    or an unknown key added; sometimes one more variant."""
    doc = json.loads(json.dumps(VALID_CONFIG))
    for _ in range(draw(st.integers(1, 2))):
        where = draw(st.sampled_from([*TABLES, *TABLES, "variants", "variants", "name", "name", "source", "extra"]))
        if where in TABLES or where == "variants":
            table = doc.setdefault(where, {}) if where != "variants" else draw(st.sampled_from(doc["variants"]))
            key = draw(st.sampled_from(KEYS[where]) if draw(st.integers(0, 9)) else st.just("unknown"))
            action = draw(st.sampled_from(["typed", "typed", "typed", "any", "delete"]))
            if action == "delete":
                table.pop(key, None)
            elif action == "typed":
                table[key] = draw(NAMES if key == "name" else TYPED.get(key, toml_values))
            else:
                table[key] = draw(toml_values)
        else:
            doc[where] = draw(NAMES if draw(st.integers(0, 3)) else toml_values)
    if draw(st.integers(0, 4)) == 0:
        doc["variants"].append({"name": draw(NAMES), "quantize": draw(TYPED["quantize"])})
    return to_toml(doc)


@st.composite
def garbled(draw):
    """A valid config's text with a few characters inserted: TOML errors, odd keys and values."""
    text = to_toml(VALID_CONFIG)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=3)) + text[at:]
    return text


config_texts = st.one_of(configs(), configs(), garbled(), st.text(max_size=80))


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


@FAST
@given(text=config_texts)
def test_config_reader_returns_a_checked_config_or_bad_input(config_dir, text):
    from srjs import pipeline
    from srjs.package.writer import check_name, check_version

    path = config_dir / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    try:
        config = pipeline.load_config(path)
    except BadInput as err:
        _one_line(err)
        return
    event("accepted")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", config.name)
    assert config.verify.runtimes and config.package.exports
    check_name(config.package.name or config.name)  # the package step will not refuse it late
    check_version(config.package.version)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v.name) for v in config.variants)
    tables = [asdict(t) for t in (config.convert, config.verify, config.evaluate, config.package, config.gates)]
    tables += [v.recipe | asdict(v.gates) for v in config.variants]
    numbers_in = [x for t in tables for v in t.values() for x in (v if isinstance(v, list) else [v])
                  if isinstance(x, float)]
    assert all(math.isfinite(x) for x in numbers_in)
    pipeline._key(*tables)  # cache keys are strict JSON: they would refuse a nan


@CLI
@given(text=configs())
def test_cli_on_a_generated_config_exits_2_and_writes_nothing(tmp_path_factory, capsys, monkeypatch, text):
    """`srjs build`: a bad config, or a good one whose source does not exist, is bad input."""
    root = tmp_path_factory.mktemp("fuzz-build")
    (root / "c.toml").write_text(text, encoding="utf-8")
    source = re.search(r'^"source" = (.*)$', text, re.M)
    assume(source is None or not source.group(1).strip('"').startswith(("npm:", "pypi:", ".", "~", "/")))
    result = srjs_main(capsys, monkeypatch, "build", root / "c.toml", "-o", root / "out")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert sorted(p.name for p in root.iterdir()) == ["c.toml"]
