"""ncnn `.param` + `.bin` pairs (realesrgan-ncnn-vulkan, Upscayl) -> BasicSR-named weights.

The `.param` text is parsed (magic 7767517, layer/blob counts, one line per layer:
`type name n_in n_out inputs... outputs... k=v...`, array values as `-23300-k=n,v1,...`),
Split layers are folded away, and the remaining graph is compared op by op with the graph
each supported architecture exports to (RRDBNet x4, SRVGGNetCompact, also followed by the
bicubic downscale of realesrgan-ncnn-vulkan's animevideov3 x2/x3): same layer types,
parameters and wiring. Only an exact match is accepted, so the weights then get BasicSR
names and PyTorch layouts (OIHW kernels) and the arch loaders treat them like a `.pth`.

The `.bin` holds, in layer order, each Convolution's weight (a 4-byte tag: 0x01306B47
float16, 0 float32; as ncnn's ModelBinFromDataReader::load(w, 0)) then its bias (raw float32,
load(w, 1)), and each PReLU's slopes (raw float32). Int8 / table-quantized weights, unknown
layers and any size disagreement are refused with BadInput naming the layer. Counts are
capped before anything is allocated; the file size is checked before it is read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srjs.errors import BadInput

MAGIC = 7767517
MAX_PARAM_BYTES = 16 << 20
MAX_LAYERS = 100_000
MAX_ARRAY = 4096            # elements of one array-valued param
MAX_CHANNELS = 4096
TAG_FLOAT16 = 0x01306B47
TAG_FLOAT32 = 0x00000000
KNOWN_LAYERS = {"Input", "Convolution", "PReLU", "Eltwise", "BinaryOp", "Concat", "Split",
                "Interp", "PixelShuffle"}
_ACTIVATIONS = {0: None, 1: "relu", 2: "leakyrelu"}  # Convolution 9=activation_type


@dataclass
class Layer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, object] = field(default_factory=dict)  # int, float or list[float]

    def p(self, key: int, default=0):
        return self.params.get(key, default)


# --- .param text ------------------------------------------------------------------------

def parse_param(text: str, where: str) -> list[Layer]:
    """Layers of a `.param` file (BadInput, one line, on anything malformed)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != str(MAGIC):
        raise BadInput(f"'{where}' is not an ncnn .param file (first line is not {MAGIC})")
    try:
        layer_count, blob_count = (_int_token(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise BadInput(f"'{where}': second line must be '<layer count> <blob count>'") from None
    if not 0 < layer_count <= MAX_LAYERS or not 0 < blob_count <= 4 * MAX_LAYERS:
        raise BadInput(f"'{where}': absurd layer/blob counts {layer_count} {blob_count}")
    if len(lines) - 2 != layer_count:
        raise BadInput(f"'{where}' declares {layer_count} layers but has {len(lines) - 2} layer lines")
    layers = [_parse_layer(line, where) for line in lines[2:]]
    blobs = {b for layer in layers for b in layer.outputs}
    if len(blobs) != blob_count:
        raise BadInput(f"'{where}' declares {blob_count} blobs but its layers produce {len(blobs)}")
    return layers


def _parse_layer(line: str, where: str) -> Layer:
    tokens = line.split()
    try:
        kind, name, n_in, n_out = tokens[0], tokens[1], _int_token(tokens[2]), _int_token(tokens[3])
    except (IndexError, ValueError):
        raise BadInput(f"'{where}': malformed layer line '{line[:60]}'") from None
    if not 0 <= n_in <= 64 or not 0 <= n_out <= 64 or len(tokens) < 4 + n_in + n_out:
        raise BadInput(f"'{where}': layer '{name}' has a bad input/output count")
    if kind not in KNOWN_LAYERS:
        raise BadInput(f"'{where}': layer '{name}' has type '{kind}', which srjs does not read "
                       f"(known: {', '.join(sorted(KNOWN_LAYERS))})")
    layer = Layer(kind, name, tokens[4:4 + n_in], tokens[4 + n_in:4 + n_in + n_out])
    for token in tokens[4 + n_in + n_out:]:
        key, value = _param_token(token, kind, where, name)
        if key in layer.params:
            raise BadInput(f"'{where}': layer '{name}' sets param {key} twice")
        layer.params[key] = value
    return layer


# What each layer's params may hold (ncnn's operation-param table, the keys srjs reads or that
# exporters write): anything else is refused, so every value the graph code sees has the type
# and sign it expects. COUNT: a non-negative int (channels, kernel sizes, weight counts).
INT, COUNT, FLOAT, FLOATS = "an integer", "a non-negative integer", "a finite number", "a float array"
PARAM_KINDS: dict[str, dict[int, str]] = {
    "Input": {0: COUNT, 1: COUNT, 2: COUNT, 11: COUNT},
    "Convolution": {0: COUNT, 1: COUNT, 11: COUNT, 2: COUNT, 12: COUNT, 3: COUNT, 13: COUNT,
                    4: INT, 14: INT, 15: INT, 16: INT, 5: INT, 6: COUNT, 8: INT, 9: INT,
                    10: FLOATS, 18: FLOAT, 19: INT},
    "PReLU": {0: COUNT},
    "Eltwise": {0: INT, 1: FLOATS},
    "BinaryOp": {0: INT, 1: INT, 2: FLOAT},
    "Concat": {0: INT},
    "Split": {},
    "Interp": {0: INT, 1: FLOAT, 2: FLOAT, 3: COUNT, 4: COUNT, 5: INT, 6: INT},
    "PixelShuffle": {0: COUNT, 1: INT},
}
INT32 = (-(1 << 31), (1 << 31) - 1)   # ncnn reads ints with %d
_INT_TOKEN = re.compile(r"^[+-]?[0-9]{1,12}$")


def _int_token(text: str) -> int:
    if not _INT_TOKEN.match(text):
        raise ValueError(text)
    return int(text)


def _float_token(text: str) -> float:
    value = float(text)  # ValueError on anything but a number; '1e999' gives inf, refused next
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _param_token(token: str, kind: str, where: str, name: str) -> tuple[int, object]:
    """(key, value) of one `k=v` token, checked against PARAM_KINDS[kind] (BadInput otherwise)."""
    key_text, sep, value = token.partition("=")
    try:
        key = _int_token(key_text)
    except ValueError:
        key = None
    if not sep or key is None:
        raise BadInput(f"'{where}': layer '{name}' has a malformed param '{token[:40]}'")
    is_array = key <= -23300  # array param: -23300-k=count,v1,v2,...
    if is_array:
        key = -key - 23300
    expected = PARAM_KINDS[kind].get(key)
    if expected is None:
        raise BadInput(f"'{where}': layer '{name}' ({kind}) has param {key}, which srjs does not read")
    if is_array != (expected == FLOATS):
        raise BadInput(f"'{where}': layer '{name}' param {key} must be {expected}, not '{token[:40]}'")
    try:
        if expected == FLOATS:
            items = value.split(",")
            count = _int_token(items[0])
            if not 0 <= count <= MAX_ARRAY or len(items) != count + 1:
                raise ValueError
            return key, [_float_token(v) for v in items[1:]]
        if expected == FLOAT:  # ncnn takes an int spelling of a float param as that number
            return key, _float_token(value)
        number = _int_token(value)
        low = 0 if expected == COUNT else INT32[0]
        if not low <= number <= INT32[1]:
            raise ValueError
        return key, number
    except ValueError:
        raise BadInput(f"'{where}': layer '{name}' param {key} must be {expected}, "
                       f"not '{value[:40]}'") from None


# --- graph normal form ------------------------------------------------------------------
# An op is (kind, attrs, inputs): inputs are indices of earlier ops, -1 the network input.
# Commutative adds carry (input, coefficient) pairs sorted, so exporters' operand order and
# Eltwise-with-coeffs vs BinaryOp-add spellings compare equal.

def normal_form(layers: list[Layer], where: str) -> tuple[list[tuple], list[Layer]]:
    """(ops, layer of each op): Splits folded, attrs normalised, wiring by producer index."""
    producer: dict[str, int] = {}
    ops: list[tuple] = []
    owners: list[Layer] = []
    for layer in layers:
        try:
            inputs = [producer[b] for b in layer.inputs]
        except KeyError as err:
            raise BadInput(f"'{where}': layer '{layer.name}' reads blob {err} before it is made") from None
        if layer.type == "Input":
            if producer or len(layer.outputs) != 1:
                raise BadInput(f"'{where}': layer '{layer.name}': srjs reads one Input, first")
            producer[layer.outputs[0]] = -1
            continue
        if layer.type == "Split":
            for out in layer.outputs:
                producer[out] = inputs[0] if len(inputs) == 1 else _bad(where, layer, "needs one input")
            continue
        op = (layer.type, _attrs(layer, where), tuple(inputs))
        if layer.type in ("Eltwise", "BinaryOp"):
            op = ("Add", (), tuple(sorted(zip(inputs, _add_coeffs(layer, where)))))
        if len(layer.outputs) != 1:
            _bad(where, layer, "must have one output")
        producer[layer.outputs[0]] = len(ops)
        ops.append(op)
        owners.append(layer)
    return ops, owners


def _bad(where: str, layer: Layer, why: str):
    raise BadInput(f"'{where}': layer '{layer.name}' ({layer.type}) {why}")


def _attrs(layer: Layer, where: str) -> tuple:
    p = layer.p
    if layer.type == "Convolution":
        kw = p(1)
        shape = (p(0), kw, p(11, kw), p(2, 1), p(12, p(2, 1)), p(3, 1), p(13, p(3, 1)),
                 p(4), p(14, p(4)), p(15, p(4)), p(16, p(14, p(4))))
        if p(8) or p(18, 0.0):
            _bad(where, layer, "uses int8 quantisation or a pad value; srjs reads float weights only")
        act = p(9)
        if act not in _ACTIVATIONS:
            _bad(where, layer, f"has activation type {act}; srjs reads none, ReLU or LeakyReLU")
        slope = tuple(round(float(v), 6) for v in p(10, [])) if act == 2 else ()
        return (*shape, p(5), _ACTIVATIONS[act], slope)
    if layer.type == "PReLU":
        return (p(0),)
    if layer.type == "Interp":
        return (p(0), round(float(p(1, 1.0)), 6), round(float(p(2, 1.0)), 6), p(3), p(4), p(6))
    if layer.type == "PixelShuffle":
        return (p(0), p(1))
    if layer.type == "Concat":
        return (p(0),)
    return ()


def _add_coeffs(layer: Layer, where: str) -> list[float]:
    n = len(layer.inputs)
    if layer.type == "Eltwise":
        coeffs = layer.p(1, [])
        if layer.p(0) != 1 or (coeffs and len(coeffs) != n):
            _bad(where, layer, "is not a sum; srjs reads Eltwise sums only")
        return [round(float(c), 6) for c in coeffs] if coeffs else [1.0] * n
    if layer.p(0) != 0 or layer.p(1) or n != 2:  # BinaryOp: 0=op_type (0 add), 1=with_scalar
        _bad(where, layer, "is not a two-input add; srjs reads BinaryOp add only")
    return [1.0, 1.0]


# --- the graphs the architectures export to ---------------------------------------------

class _Graph:
    """Builds the expected normal form; `names[i]` is the BasicSR module of op i (convs, PReLUs)."""

    def __init__(self):
        self.ops: list[tuple] = []
        self.names: list[str | None] = []

    def add(self, op: tuple, name: str | None = None) -> int:
        self.ops.append(op)
        self.names.append(name)
        return len(self.ops) - 1

    def conv(self, x: int, out: int, name: str, act: str | None = None, slope: float = 0.0) -> int:
        slopes = (round(slope, 6),) if act == "leakyrelu" else ()
        return self.add(("Convolution", (out, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, act, slopes), (x,)), name)

    def add2(self, a: int, b: int, ca: float = 1.0, cb: float = 1.0) -> int:
        return self.add(("Add", (), tuple(sorted([(a, round(ca, 6)), (b, round(cb, 6))]))))

    def concat(self, xs: list[int]) -> int:
        return self.add(("Concat", (0,), tuple(xs)))

    def nearest(self, x: int, factor: int) -> int:
        return self.add(("Interp", (1, float(factor), float(factor), 0, 0, 0), (x,)))


def rrdbnet_graph(num_feat: int, num_block: int, num_grow_ch: int) -> _Graph:
    """BasicSR RRDBNet x4 as ONNX -> onnx2ncnn exports it (LeakyReLU fused into the convs)."""
    g = _Graph()
    first = g.conv(-1, num_feat, "conv_first")
    body = first
    for n in range(num_block):
        x = body
        for r in (1, 2, 3):
            prefix = f"body.{n}.rdb{r}"
            feats = [x]
            for k in range(1, 5):
                inp = x if k == 1 else g.concat(feats)
                feats.append(g.conv(inp, num_grow_ch, f"{prefix}.conv{k}", "leakyrelu", 0.2))
            y = g.conv(g.concat(feats), num_feat, f"{prefix}.conv5")
            x = g.add2(y, x, 0.2, 1.0)
        body = g.add2(x, body, 0.2, 1.0)
    feat = g.add2(first, g.conv(body, num_feat, "conv_body"))
    for k in (1, 2):
        feat = g.conv(g.nearest(feat, 2), num_feat, f"conv_up{k}", "leakyrelu", 0.2)
    feat = g.conv(feat, num_feat, "conv_hr", "leakyrelu", 0.2)
    g.conv(feat, 3, "conv_last")
    return g


def srvgg_graph(num_feat: int, num_conv: int, scale: int, resize: float | None = None) -> _Graph:
    """SRVGGNetCompact (PReLU) as exported by Real-ESRGAN's ONNX -> ncnn route.

    resize: the bicubic Interp factor realesrgan-ncnn-vulkan's animevideov3 x2/x3 files put
    after the x4 network (0.5, 0.75).
    """
    g = _Graph()
    x = -1
    for i in range(num_conv + 1):
        x = g.conv(x, num_feat, f"body.{2 * i}")
        x = g.add(("PReLU", (num_feat,), (x,)), f"body.{2 * i + 1}")
    x = g.conv(x, 3 * scale * scale, f"body.{2 * num_conv + 2}")
    x = g.add(("PixelShuffle", (scale, 0), (x,)))
    x = g.add2(x, g.nearest(-1, scale))
    if resize is not None:
        g.add(("Interp", (3, resize, resize, 0, 0, 0), (x,)))
    return g


def match_graph(ops: list[tuple], owners: list[Layer], where: str) -> tuple[str, dict, _Graph]:
    """(arch, params, expected graph) whose normal form equals `ops`; BadInput otherwise."""
    convs = [op for op in ops if op[0] == "Convolution"]
    if not convs:
        raise BadInput(f"'{where}' has no Convolution layers; it maps onto no known architecture")
    candidates = []
    feat = convs[0][1][0]
    if any(op[0] == "PReLU" for op in ops):
        out = convs[-1][1][0]
        shuffle = int(round((out / 3) ** 0.5))
        resize, scale = _final_resize(ops, owners, shuffle, where)
        if 3 * shuffle * shuffle == out:
            params = {"scale": scale, "num_feat": feat, "num_conv": len(convs) - 2,
                      "act_type": "prelu", "num_in_ch": 3, "num_out_ch": 3}
            if scale != shuffle:
                params["shuffle_scale"] = shuffle
            candidates.append(("srvgg", params,
                               lambda: srvgg_graph(feat, len(convs) - 2, shuffle, resize)))
    elif len(convs) >= 21 and (len(convs) - 6) % 15 == 0:  # 15 per RRDB + first, body, up1, up2, hr, last
        blocks, grow = (len(convs) - 6) // 15, convs[1][1][0]
        candidates.append(("rrdbnet", {"scale": 4, "num_feat": feat, "num_block": blocks,
                                       "num_grow_ch": grow, "num_in_ch": 3, "num_out_ch": 3},
                           lambda: rrdbnet_graph(feat, blocks, grow)))
    for arch, params, make in candidates:
        if max(feat, params.get("num_grow_ch", 0)) > MAX_CHANNELS:
            raise BadInput(f"'{where}': {feat} feature channels is more than srjs reads ({MAX_CHANNELS})")
        expected = make()
        if expected.ops == ops:
            return arch, params, expected
        first = next((i for i, (a, b) in enumerate(zip(expected.ops, ops)) if a != b), min(len(ops), len(expected.ops)))
        at = f"layer '{owners[first].name}'" if first < len(owners) else "its end"
        raise BadInput(f"'{where}' looks like {arch} but its graph differs from {arch}'s at {at}")
    raise BadInput(f"'{where}': the graph ({len(ops)} ops, {len(convs)} convolutions) maps onto "
                   "no known architecture (rrdbnet x4, srvgg)")


def _final_resize(ops: list[tuple], owners: list[Layer], shuffle: int, where: str) -> tuple[float | None, int]:
    """(bicubic factor, model scale) of a last Interp bicubic layer; (None, shuffle) if none.

    realesrgan-ncnn-vulkan's animevideov3 x2/x3 files are the x4 network (same weights)
    followed by ncnn's bicubic Interp by 0.5 / 0.75; srvgg rebuilds that resize exactly.
    """
    kind, attrs, _ = ops[-1]
    if kind != "Interp" or attrs[0] != 3:
        return None, shuffle
    factor = attrs[1]
    scale = round(shuffle * factor)
    if attrs[2] != factor or attrs[3:] != (0, 0, 0) or not 1 <= scale < shuffle \
            or abs(shuffle * factor - scale) > 1e-6:
        raise BadInput(f"'{where}': last layer '{owners[-1].name}' resizes by {attrs[1]} x {attrs[2]}; "
                       f"srjs reads a bicubic downscale of the x{shuffle} output to an integer scale only")
    return factor, scale


# --- .bin weights -----------------------------------------------------------------------

class _Bin:
    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = data, 0, where

    def take(self, nbytes: int, layer: Layer) -> bytes:
        if nbytes > len(self.data) - self.pos:
            raise BadInput(f"'{self.where}' is truncated: layer '{layer.name}' needs {nbytes} bytes "
                           f"at offset {self.pos}, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw_f32(self, count: int, layer: Layer) -> np.ndarray:
        return np.frombuffer(self.take(4 * count, layer), "<f4").astype(np.float32)

    def tagged(self, count: int, layer: Layer) -> np.ndarray:
        tag = int.from_bytes(self.take(4, layer), "little")
        if tag == TAG_FLOAT16:
            values = np.frombuffer(self.take(2 * count, layer), "<f2").astype(np.float32)
            self.take((-2 * count) % 4, layer)  # ncnn pads float16 data to 4 bytes
            return values
        if tag == TAG_FLOAT32:
            return self.raw_f32(count, layer)
        raise BadInput(f"'{self.where}': layer '{layer.name}' stores weights with tag 0x{tag:08X} "
                       "(int8 or table-quantised); srjs reads float16 and float32 only")


def _max_bin_bytes(owners: list[Layer]) -> int:
    total = 0
    for layer in owners:
        if layer.type == "Convolution":
            total += 4 + 4 * layer.p(6) + 4 * layer.p(0) * bool(layer.p(5))
        elif layer.type == "PReLU":
            total += 4 * layer.p(0)
    return total


def read_weights(graph: _Graph, owners: list[Layer], bin_path: Path, where: str) -> dict[str, np.ndarray]:
    """BasicSR-named weights (OIHW kernels) from the .bin, in layer order."""
    size = bin_path.stat().st_size
    limit = _max_bin_bytes(owners)
    if size > limit:
        raise BadInput(f"'{bin_path}' is {size} bytes, more than the {limit} its .param can use (over-long)")
    reader = _Bin(bin_path.read_bytes(), str(bin_path))
    weights: dict[str, np.ndarray] = {}
    for layer, name, op in zip(owners, graph.names, graph.ops):
        if layer.type == "Convolution":
            out, kw, kh = layer.p(0), layer.p(1), layer.p(11, layer.p(1))
            count = layer.p(6)
            in_ch = _in_channels(graph, op)
            if count != out * in_ch * kh * kw:
                raise BadInput(f"'{where}': layer '{layer.name}' declares {count} weights, but "
                               f"{out}x{in_ch}x{kh}x{kw} = {out * in_ch * kh * kw} fit its input")
            weights[f"{name}.weight"] = reader.tagged(count, layer).reshape(out, in_ch, kh, kw)
            if layer.p(5):
                weights[f"{name}.bias"] = reader.raw_f32(out, layer)
        elif layer.type == "PReLU":
            weights[f"{name}.weight"] = reader.raw_f32(layer.p(0), layer)
    if reader.pos != size:
        raise BadInput(f"'{bin_path}' has {size - reader.pos} bytes after the last weight (over-long)")
    for key, value in weights.items():
        if not np.isfinite(value).all():
            raise BadInput(f"'{bin_path}': weight {key} holds NaN or infinite values")
    return weights


def _in_channels(graph: _Graph, op: tuple) -> int:
    """Channels reaching a conv: 3 from the input, else its producer's output channels."""
    def channels(i: int) -> int:
        if i == -1:
            return 3
        kind, attrs, inputs = graph.ops[i]
        if kind == "Convolution":
            return attrs[0]
        if kind == "Concat":
            return sum(channels(j) for j in inputs)
        return channels(inputs[0] if kind != "Add" else inputs[0][0])
    return channels(op[2][0])


# --- the reader -------------------------------------------------------------------------

def read_ncnn(param_path: Path, bin_path: Path | None = None):
    """Checkpoint (format 'ncnn') from a .param and its .bin (default: beside it)."""
    from srjs.convert.sources import Checkpoint

    param_path = Path(param_path)
    bin_path = Path(bin_path) if bin_path is not None else param_path.with_suffix(".bin")
    where = str(param_path)
    if not param_path.is_file():
        raise BadInput(f"'{where}' does not exist or is not a file")
    if param_path.stat().st_size > MAX_PARAM_BYTES:
        raise BadInput(f"'{where}' is larger than {MAX_PARAM_BYTES} bytes; not an ncnn .param")
    if not bin_path.is_file():
        raise BadInput(f"'{where}' has no weights file: '{bin_path}' does not exist (use --bin)")
    try:
        text = param_path.read_text("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"'{where}' is not text; binary .param.bin files are not supported") from None
    except OSError as err:
        raise BadInput(f"cannot read '{where}': {err.strerror or err}") from None
    ops, owners = normal_form(parse_param(text, where), where)
    arch, params, graph = match_graph(ops, owners, where)
    weights = read_weights(graph, owners, bin_path, where)
    return Checkpoint("ncnn", weights, hints={"arch": arch, "arch_params": params})
