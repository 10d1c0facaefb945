"""Make a TF.js layers model.json loadable by tfjs-layers 4.x and UpscalerJS.

model.json files reach users in states tfjs-layers cannot load: Keras 3 configs written by
tensorflowjs 4.22 (`batch_shape`, DTypePolicy objects, `{args, kwargs}` inbound nodes,
`layers/conv2d/vars/0` weight names), Lambda layers (never loadable in JS), and custom
layer names that UpscalerJS does not register. UpscalerJS users used to fix these by hand;
`patch_model_json` does it as a pure, idempotent JSON -> JSON rewrite that reports every
change, and `validate_weights_manifest` proves the shards still match the topology.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from srjs import atomic, strict_json, tfjs_weights
from srjs.convert import lambda_code
from srjs.errors import BadInput


@dataclass
class PatchResult:
    data: dict  # the patched model.json content
    changes: list[str] = field(default_factory=list)  # one human-readable line per change


# ---------------------------------------------------------------------------------------
# weights each layer class owns, in Keras variable order (Keras 2 and 3 agree on order)

def _conv_weights(cfg: dict) -> list[str]:
    return ["kernel"] + (["bias"] if cfg.get("use_bias", True) else [])


def _norm_weights(cfg: dict, stats: bool) -> list[str]:
    names = (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if cfg.get("center", True) else [])
    return names + (["moving_mean", "moving_variance"] if stats else [])


_LAYER_WEIGHTS = {
    "Conv1D": _conv_weights, "Conv2D": _conv_weights, "Conv3D": _conv_weights,
    "Conv2DTranspose": _conv_weights, "Conv3DTranspose": _conv_weights, "Dense": _conv_weights,
    "DepthwiseConv2D": lambda c: ["depthwise_kernel"] + (["bias"] if c.get("use_bias", True) else []),
    "SeparableConv2D": lambda c: ["depthwise_kernel", "pointwise_kernel"]
    + (["bias"] if c.get("use_bias", True) else []),
    "PReLU": lambda c: ["alpha"],
    "BatchNormalization": lambda c: _norm_weights(c, stats=True),
    "LayerNormalization": lambda c: _norm_weights(c, stats=False),
    "Embedding": lambda c: ["embeddings"],
}
# Classes known to own no weights; any other class (a custom layer) may own weights srjs
# cannot predict, so its weights are accepted as they come.
_WEIGHTLESS = {
    "InputLayer", "Activation", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
    "Concatenate", "UpSampling2D", "ZeroPadding2D", "Cropping2D", "Reshape", "Flatten", "Permute",
    "Dropout", "SpatialDropout2D", "LeakyReLU", "ReLU", "ELU", "Softmax", "ThresholdedReLU",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "MultiplyBeta", "PixelUnshuffle", "PixelShuffle", "Lambda", "Identity",
}
_PIXEL_SHUFFLE_N = re.compile(r"^PixelShuffle\d+x$")
_MODEL_CLASSES = {"Functional", "Model", "Sequential"}


def _layer_weights(layer: dict) -> list[str] | None:
    """Weight names (without the layer prefix) or None when the class is not known."""
    cls = layer.get("class_name")
    if cls in _LAYER_WEIGHTS:
        return _LAYER_WEIGHTS[cls](layer.get("config") or {})
    if cls in _WEIGHTLESS or _PIXEL_SHUFFLE_N.match(str(cls)):
        return []
    return None


# ---------------------------------------------------------------------------------------
# model.json structure

def _model_config(data: dict) -> dict:
    """The {class_name, config} dict of the model inside a layers-model model.json."""
    topology = data.get("modelTopology") if isinstance(data, dict) else None
    if not isinstance(topology, dict):
        raise BadInput("model.json has no modelTopology; it is not a TF.js layers model")
    # tensorflowjs writes {keras_version, model_config}; tfjs-layers' own save writes the
    # model config directly as the topology.
    model = topology.get("model_config", topology)
    if not isinstance(model, dict) or "class_name" not in model:
        raise BadInput("model.json modelTopology has no model class_name")
    return model


def _layers(model: dict) -> list[dict]:
    cfg = model.get("config")
    layers = cfg.get("layers") if isinstance(cfg, dict) else cfg  # very old Sequential: a list
    if not isinstance(layers, list):
        raise BadInput(f"model '{model.get('class_name')}' in model.json has no layers list")
    return layers


def _layer_name(layer: dict) -> str:
    return str(layer.get("name") or (layer.get("config") or {}).get("name"))


# ---------------------------------------------------------------------------------------
# Keras 3 -> Keras 2 (tfjs-layers) config rewrites

_POLICY_CLASSES = {"DTypePolicy", "FloatDTypePolicy", "Policy"}
# tfjs-layers computes in float32 only; a mixed policy's variables are float32 already.
_POLICY_DTYPE = {"float32": "float32", "mixed_float16": "float32", "mixed_bfloat16": "float32",
                 "float16": "float32", "bfloat16": "float32", "int32": "int32"}


def _strip_keras3_keys(obj) -> int:
    """Drop `module`/`registered_name` (Keras 3 object locators) in place; count objects."""
    count = 0
    if isinstance(obj, dict):
        if "class_name" in obj and ("module" in obj or "registered_name" in obj):
            obj.pop("module", None)
            obj.pop("registered_name", None)
            count += 1
        for value in obj.values():
            count += _strip_keras3_keys(value)
    elif isinstance(obj, list):
        count += sum(_strip_keras3_keys(item) for item in obj)
    return count


def _flatten_policies(obj, where: str, changes: list[str]):
    """Replace DTypePolicy objects by their dtype string; returns the (maybe new) object."""
    if isinstance(obj, dict):
        if obj.get("class_name") in _POLICY_CLASSES and isinstance(obj.get("config"), dict):
            name = obj["config"].get("name")
            if name not in _POLICY_DTYPE:
                raise BadInput(f"{where} has dtype policy '{name}'; tfjs-layers runs float32 layers")
            changes.append(f"{where}: dtype {obj['class_name']}('{name}') -> '{_POLICY_DTYPE[name]}'")
            return _POLICY_DTYPE[name]
        for key in list(obj):
            obj[key] = _flatten_policies(obj[key], where, changes)
    elif isinstance(obj, list):
        return [_flatten_policies(item, where, changes) for item in obj]
    return obj


# Keras 3 additions with no Keras 2 / tfjs-layers meaning; dropped only at their inert value.
_KERAS3_LAYER_KEYS = {"lora_rank": None, "lora_alpha": None, "quantization_config": None}
_KERAS3_INIT_KEYS = ("input_axes", "output_axes")  # VarianceScaling family, Keras >= 3.11


def _strip_keras3_init_keys(obj) -> int:
    count = 0
    if isinstance(obj, dict):
        cfg = obj.get("config")
        if "class_name" in obj and isinstance(cfg, dict):
            for key in _KERAS3_INIT_KEYS:
                if key in cfg and cfg[key] is None:
                    del cfg[key]
                    count += 1
        count += sum(_strip_keras3_init_keys(v) for v in obj.values())
    elif isinstance(obj, list):
        count += sum(_strip_keras3_init_keys(v) for v in obj)
    return count


def _is_keras_tensor(obj) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _history(tensor: dict, where: str) -> list:
    history = (tensor.get("config") or {}).get("keras_history")
    if not (isinstance(history, list) and len(history) == 3):
        raise BadInput(f"{where}: Keras 3 tensor without a [layer, node, index] keras_history")
    return list(history)


def _convert_node(node, where: str):
    """A Keras 3 {args, kwargs} node -> the Keras 2 [[layer, node, index, kwargs], ...] list."""
    if not (isinstance(node, dict) and "args" in node):
        return node  # already Keras 2 form
    args, kwargs = node.get("args") or [], node.get("kwargs") or {}
    if len(args) != 1:
        raise BadInput(f"{where}: a call with {len(args)} positional arguments has no Keras 2 form")
    first = args[0]
    tensors = first if isinstance(first, list) else [first]
    if not tensors or not all(_is_keras_tensor(t) for t in tensors):
        raise BadInput(f"{where}: inbound node arguments are not Keras tensors")
    if any(_is_keras_tensor(v) for v in kwargs.values()):
        raise BadInput(f"{where}: tensors passed as keyword arguments have no Keras 2 form")
    # Keras 3 records call defaults (mask=None, training=None); Keras 2 nodes omit them, and a
    # layer whose call takes no such argument (a custom JS layer) would choke on them.
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return [_history(t, where) + [kwargs] for t in tensors]


def _fix_inbound_nodes(layer: dict, where: str, changes: list[str]) -> None:
    nodes = layer.get("inbound_nodes")
    if not isinstance(nodes, list) or not any(isinstance(n, dict) for n in nodes):
        return
    layer["inbound_nodes"] = [_convert_node(n, where) for n in nodes]
    changes.append(f"{where}: Keras 3 inbound_nodes -> nested-list form")


def _fix_io_list(cfg: dict, key: str, changes: list[str]) -> None:
    value = cfg.get(key)
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        cfg[key] = [value]  # Keras 3 writes a single input/output unwrapped
        changes.append(f"model: {key} {strict_json.dumps(value)} -> {strict_json.dumps(cfg[key])}")
    elif isinstance(value, dict):
        raise BadInput(f"model: {key} is a dict (named inputs); tfjs-layers needs a list")


def _fix_layer_keras3(layer: dict, changes: list[str]) -> None:
    where = f"layer '{_layer_name(layer)}'"
    cfg = layer.get("config")
    if isinstance(cfg, dict):
        if "batch_shape" in cfg:
            shape = cfg.pop("batch_shape")
            cfg.setdefault("batch_input_shape", shape)
            changes.append(f"{where}: batch_shape -> batch_input_shape")
        if layer.get("class_name") == "InputLayer" and "optional" in cfg:
            del cfg["optional"]  # Keras 3 only; tf_keras' InputLayer takes no such arg
            changes.append(f"{where}: removed Keras 3 InputLayer key 'optional'")
        for key, inert in _KERAS3_LAYER_KEYS.items():
            if key in cfg:
                if cfg[key] != inert:
                    raise BadInput(f"{where}: Keras 3 '{key}' = {cfg[key]!r} has no tfjs-layers form")
                del cfg[key]
                changes.append(f"{where}: removed Keras 3 key '{key}'")
        dropped = _strip_keras3_init_keys(cfg)
        if dropped:
            changes.append(f"{where}: removed {dropped} Keras 3 initializer key(s) "
                           f"{'/'.join(_KERAS3_INIT_KEYS)}")
    stripped = _strip_keras3_keys(layer)
    if stripped:
        changes.append(f"{where}: removed module/registered_name from {stripped} object(s)")
    for key in ("build_config", "compile_config"):  # Keras 3 bookkeeping, unknown to tfjs
        if key in layer:
            del layer[key]
            changes.append(f"{where}: removed {key}")
    _flatten_policies(layer, where, changes)  # a layer dict is rewritten in place
    _fix_inbound_nodes(layer, where, changes)


# ---------------------------------------------------------------------------------------
# Lambda layers -> UpscalerJS custom layers

# Function names known only by name (Keras 3 keeps just the name of a def'd function).
_SHUFFLE_NAME = re.compile(r"^(pixel_?shuffle|subpixel(_?conv2d)?|depth_to_space(_v2)?)$", re.I)
_SCALE_KEYS = ("scale", "block_size", "upscale_factor", "factor", "r")


def _function_spec(cfg: dict):
    """(code_b64, defaults, closure, name) from a Keras 2 or Keras 3 Lambda config."""
    fn = cfg.get("function")
    if isinstance(fn, dict) and fn.get("class_name") == "__lambda__":  # Keras 3
        inner = fn.get("config") or {}
        return inner.get("code"), inner.get("defaults"), inner.get("closure"), None
    if isinstance(fn, dict) and fn.get("class_name") == "function":  # Keras 3 def by name
        return None, None, None, fn.get("config")
    if cfg.get("function_type") == "lambda" and isinstance(fn, list) and len(fn) == 3:
        return fn[0], fn[1], fn[2], None  # Keras 2 func_dump: (code, defaults, closure)
    if cfg.get("function_type") == "function" and isinstance(fn, str):
        return None, None, None, fn
    return None, None, None, None


def _translate_lambda(layer: dict, scale: int | None):
    """('shuffle', N) or ('multiply', beta) for a Lambda srjs can prove; BadInput otherwise."""
    name = _layer_name(layer)
    cfg = layer.get("config") or {}
    arguments = cfg.get("arguments") or {}
    code_b64, defaults, closure, fn_name = _function_spec(cfg)
    found = None
    if code_b64 is not None:
        found = lambda_code.analyse_isolated(code_b64, closure, defaults, arguments)
    elif isinstance(fn_name, str) and _SHUFFLE_NAME.match(fn_name):
        # Only a name survives; TF's one pixel-shuffle op is depth_to_space, which the JS
        # PixelShuffle layers implement, so the name is trusted and the scale must be known.
        given = [arguments[k] for k in _SCALE_KEYS if k in arguments]
        if arguments.get("data_format", "NHWC") != "NHWC":
            given = []
        value = given[0] if len(given) == 1 else scale
        if isinstance(value, int) and value >= 2:
            found = ("shuffle", value)
        else:
            raise BadInput(f"layer '{name}' is a Lambda calling '{fn_name}' with no known scale; "
                           "pass the model's scale")
    if found is None:
        raise BadInput(f"layer '{name}' is a Lambda srjs cannot translate; "
                       "tfjs-layers cannot load Lambda layers")
    return found


def _custom_layer(layer: dict, class_name: str, extra: dict) -> dict:
    old = layer.get("config") or {}
    config = {"name": old.get("name", layer.get("name")), "trainable": old.get("trainable", True),
              "dtype": "float32", **extra}
    new = {"class_name": class_name, "config": config}
    for key, value in layer.items():
        if key not in ("class_name", "config"):
            new[key] = value
    return new


def _fix_custom_layers(layers: list[dict], scale: int | None, changes: list[str]) -> None:
    for index, layer in enumerate(layers):
        where = f"layer '{_layer_name(layer)}'"
        cls = layer.get("class_name")
        if cls == "Lambda":
            kind, value = _translate_lambda(layer, scale)
            if kind == "shuffle":
                layers[index] = _custom_layer(layer, f"PixelShuffle{value}x", {"scale": value})
                changes.append(f"{where}: Lambda (depth_to_space, scale {value}) -> PixelShuffle{value}x")
            else:
                layers[index] = _custom_layer(layer, "MultiplyBeta", {"beta": value})
                changes.append(f"{where}: Lambda (x * {value}) -> MultiplyBeta(beta={value})")
        elif cls == "PixelShuffle":
            cfg = layer.setdefault("config", {})
            value = cfg.get("scale", scale)
            if not isinstance(value, int) or value < 2:
                raise BadInput(f"{where}: PixelShuffle without a scale in its config; pass the scale")
            cfg["scale"] = value
            layer["class_name"] = f"PixelShuffle{value}x"
            changes.append(f"{where}: class PixelShuffle -> PixelShuffle{value}x (UpscalerJS name)")


# ---------------------------------------------------------------------------------------
# Keras 3 .keras weight paths -> layer/weight names

_V3_WEIGHT = re.compile(r"^layers/([A-Za-z0-9_]+)/vars/(\d+)$")


def _snake_case(name: str) -> str:
    """Keras 3's `naming.to_snake_case`, which names a layer's group in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _v3_weight_map(model: dict) -> dict[str, str]:
    """'layers/conv2d_1/vars/0' -> 'c2/kernel', following Keras 3's saving_lib naming.

    Keras 3 files a Functional model's layers under the snake-cased class name, numbered
    per class in `model.layers` order (the config's layer order), and each layer's
    variables by index; tfjs-layers matches weights by 'layer/weight' instead.
    """
    used: dict[str, int] = {}
    mapping = {}
    for layer in _layers(model):
        cls = str(layer.get("class_name"))
        base = _snake_case(cls)
        if base in used:
            used[base] += 1
            group = f"{base}_{used[base]}"
        else:
            used[base] = 0
            group = base
        names = _layer_weights(layer) or []
        for i, weight in enumerate(names):
            mapping[f"layers/{group}/vars/{i}"] = f"{_layer_name(layer)}/{weight}"
    return mapping


def _fix_weight_names(data: dict, model: dict, changes: list[str]) -> None:
    entries = [w for g in data.get("weightsManifest") or [] for w in g.get("weights") or []]
    if not any(_V3_WEIGHT.match(str(w.get("name"))) for w in entries):
        return
    mapping = _v3_weight_map(model)
    for entry in entries:
        old = entry.get("name")
        if old in mapping:
            entry["name"] = mapping[old]
            changes.append(f"weight '{old}' -> '{mapping[old]}'")
        elif _V3_WEIGHT.match(str(old)):
            raise BadInput(f"weight '{old}' matches no layer of the model (Keras 3 weight path)")


# ---------------------------------------------------------------------------------------

def patch_model_json(data: dict, *, upscalerjs_compat: bool = False,
                     scale: int | None = None) -> PatchResult:
    """Rewrite a layers-model model.json so tfjs-layers (and UpscalerJS) can load it.

    Pure and idempotent: `data` is not modified, and patching the result again reports no
    changes. `scale` (the model's upscaling factor) is used only where a PixelShuffle or a
    pixel-shuffle Lambda does not carry its own. `upscalerjs_compat` renames a top-level
    'Functional' to 'Model', the only name old tfjs runtimes know.
    """
    out = copy.deepcopy(data)
    changes: list[str] = []
    model = _model_config(out)
    topology = out["modelTopology"]
    layers = _layers(model)
    _fix_custom_layers(layers, scale, changes)  # before key stripping: Lambdas need 'module'
    for layer in layers:
        _fix_layer_keras3(layer, changes)
    cfg = model.get("config")
    if isinstance(cfg, dict):
        for key in ("input_layers", "output_layers"):
            _fix_io_list(cfg, key, changes)
    for key in ("module", "registered_name", "build_config", "compile_config"):
        if key in model:
            del model[key]
            changes.append(f"model: removed Keras 3 key {key}")
    if str(topology.get("keras_version", "")).startswith("3") and "training_config" in topology:
        # Keras 3 loss/optimizer configs break tfjs-layers' compile on load; inference
        # needs none of it.
        del topology["training_config"]
        changes.append("model: removed Keras 3 training_config")
    if upscalerjs_compat and model.get("class_name") == "Functional":
        model["class_name"] = "Model"
        changes.append("model: class Functional -> Model (old tfjs runtimes)")
    _fix_weight_names(out, model, changes)
    return PatchResult(out, changes)


def patch_file(path: Path, out: Path | None = None, *, check: bool = False,
               upscalerjs_compat: bool = False) -> PatchResult:
    """Patch the model.json at `path`, writing atomically to `out` (default: in place).

    With `check`, nothing is written; the result lists what would change. The patched
    weightsManifest is validated against the shard files beside `path`. When `out` is in
    another directory (or is a directory), the shards are copied beside it.
    """
    path = Path(path)
    data = tfjs_weights.read_model_json(path)
    topology = data.get("modelTopology") if isinstance(data, dict) else None
    if data.get("format") == "graph-model" or (isinstance(topology, dict) and "node" in topology):
        raise BadInput(f"'{path}' is a TF.js graph model: graph models need no patch (patch fixes layers "
                       "models for tfjs-layers and UpscalerJS)")
    result = patch_model_json(data, upscalerjs_compat=upscalerjs_compat)
    _check_manifest(result.data, path.parent, str(path))
    if check:
        return result
    target = Path(out) if out is not None else path
    if target.is_dir():
        target = target / path.name
    if target.resolve() == path.resolve() and not result.changes:
        return result
    if target.parent.resolve() != path.parent.resolve():
        for group in result.data.get("weightsManifest") or []:
            for shard in group.get("paths") or []:  # both ends checked by _check_manifest's rules
                atomic.copy_file(tfjs_weights.resolve_inside(path.parent, shard, str(path)),
                                 tfjs_weights.resolve_inside(target.parent, shard, str(path)))
    atomic.write_text(target, strict_json.dumps(result.data))
    return result


# ---------------------------------------------------------------------------------------
# weights manifest validation (shard bytes live in srjs.tfjs_weights; topology here)

def _expected_weights(model: dict) -> tuple[set[str], set[str]]:
    """(weight names the topology needs, layer names whose weights srjs cannot predict)."""
    needed, unknown = set(), set()
    for layer in _layers(model):
        if layer.get("class_name") in _MODEL_CLASSES:  # nested model: its layers' weights
            inner_needed, inner_unknown = _expected_weights(layer)
            needed |= inner_needed
            unknown |= inner_unknown
            continue
        names = _layer_weights(layer)
        if names is None:
            unknown.add(_layer_name(layer))
        else:
            needed |= {f"{_layer_name(layer)}/{w}" for w in names}
    return needed, unknown


def check_topology_weights(data: dict, present: list[str], where: str) -> None:
    """Every weight a known layer of the topology needs is in `present`, and none is extra."""
    needed, unknown = _expected_weights(_model_config(data))
    missing = sorted(needed - set(present))
    if missing:
        raise BadInput(f"{where}: weight '{missing[0]}' needed by the model is missing "
                       f"({len(missing)} missing)")
    extra = sorted(n for n in set(present) - needed if n.split("/")[0] not in unknown)
    if extra:
        raise BadInput(f"{where}: weight '{extra[0]}' belongs to no layer of the model "
                       f"({len(extra)} extra)")


def _check_manifest(data: dict, root: Path, where: str) -> None:
    check_topology_weights(data, tfjs_weights.check_shards(data, root, where), where)


def validate_weights_manifest(model_json: Path) -> None:
    """Check model.json's weightsManifest against its shard files and its topology.

    See `srjs.tfjs_weights.validate_manifest`: every shard exists inside the model folder,
    each group's shards hold exactly the bytes its weights need, every weight a known layer
    needs is present and no weight is left over. Raises BadInput naming the first problem.
    """
    tfjs_weights.validate_manifest(model_json)
