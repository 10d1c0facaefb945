"""tf_keras model -> ONNX (a model dir's onnx/), translated layer by layer with the `onnx` package.

Why not tf2onnx: it converts the TensorFlow graph (NHWC, with a transpose pass to clean up
after itself) and lags TensorFlow releases; srjs models are built from a short allowlist of
Keras layer classes (the convert gate refuses anything else), so a direct translation is
small, exact and keeps the graph in ONNX's native NCHW with one transpose at each end.

Conventions (recorded in the manifest by `write_onnx`): input "input" float32 NHWC
[N, H, W, C] in the model dir's value range, output "output" float32 NHWC [N, H*s, W*s, C],
the same tensors as the SavedModel's serving_default and the TF.js exports; N, H, W dynamic.
A float16 export keeps that float32 interface and casts inside, so callers are the same.

Channel order: srjs's PixelShuffle is TensorFlow's depth_to_space, channel (i*r + j)*C + c,
which is ONNX DepthToSpace mode "DCR" (mode "CRD" is PyTorch's pixel_shuffle order);
PixelUnshuffle is space_to_depth, ONNX SpaceToDepth (DCR's inverse).

A new Keras layer class is supported by registering one function in `LAYERS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from srjs.errors import BadInput
from srjs.registry import Registry

OPSET = 17  # onnxruntime-web 1.30 (wasm and WebGPU) and onnxruntime 1.32 run it fully
IR_VERSION = 8  # the lowest IR that opset 17 allows: the widest range of runtimes load it
INPUT, OUTPUT = "input", "output"
ACTIVATIONS = ("float32", "float16")
# NHWC axis of a Keras layer -> NCHW axis inside the graph
_NCHW_AXIS = {1: 2, 2: 3, 3: 1, -1: 1, -2: 3, -3: 2}


@dataclass
class Graph:
    """The ONNX graph being built: nodes and initializers in `dtype` (the activation type).

    `weight(name, array)` adds a float initializer in the activation dtype (its storage
    dtype may be float16 with float32 activations: a Cast follows, folded by runtimes at load).
    """

    activations: str = "float32"
    weights: str = "float32"
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    _names: set = field(default_factory=set)

    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        from onnx import helper

        out = self.unique(name)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, name: str, array, dtype: str) -> str:
        """An initializer stored exactly as `dtype` (float32, float16 or int64)."""
        from onnx import numpy_helper

        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def weight(self, name: str, array) -> str:
        """A float tensor in the activation dtype, stored as the weights dtype."""
        if self.weights == self.activations:
            return self.const(name, array, self.activations)
        stored = self.const(name + "_" + self.weights, array, self.weights)
        return self.node("Cast", [stored], name, to=_onnx_type(self.activations))


LayerFn = Callable[[Graph, object, list[str]], str]
LAYERS: Registry[LayerFn] = Registry("ONNX layer translation")


def _onnx_type(dtype: str) -> int:
    from onnx import TensorProto

    return {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}[dtype]


def layer_classes() -> list[str]:
    """Keras layer class names the translator covers."""
    return LAYERS.names()


def unsupported(layer, why: str):
    raise BadInput(f"ONNX export: layer '{layer.name}' ({type(layer).__name__}) {why}")


def _activation(g: Graph, layer, name: str, x: str, what) -> str:
    """Keras activation `what` (a name or function) applied to x."""
    key = what if isinstance(what, str) else getattr(what, "__name__", str(what))
    if key == "linear":
        return x
    ops = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    if key in ops:
        return g.node(ops[key], [x], name)
    if key in ("swish", "silu"):
        return g.node("Mul", [x, g.node("Sigmoid", [x], name + "_sigmoid")], name)
    if key == "gelu":  # Keras' default is the exact form, x/2 * (1 + erf(x/sqrt(2))); opset 17 has no Gelu
        erf = g.node("Erf", [g.node("Mul", [x, g.const(name + "/rsqrt2", 2 ** -0.5, g.activations)],
                                    name + "_scaled")], name + "_erf")
        half = g.node("Mul", [x, g.const(name + "/half", 0.5, g.activations)], name + "_half")
        return g.node("Mul", [half, g.node("Add", [erf, g.const(name + "/one", 1.0, g.activations)],
                                           name + "_1p")], name)
    if key == "mish":  # x * tanh(softplus(x))
        soft = g.node("Tanh", [g.node("Softplus", [x], name + "_softplus")], name + "_tanh")
        return g.node("Mul", [x, soft], name)
    unsupported(layer, f"has activation '{key}' (known: linear, {', '.join(ops)}, swish, gelu, mish)")


def _same_pads(layer, kernel: tuple[int, int], strides: tuple[int, int], dilation: tuple[int, int]):
    """ONNX pads [top, left, bottom, right] for Keras padding 'same'/'valid' at stride 1.

    Keras 'same' at stride 1 pads (k_eff - 1) in total, the odd pixel at the bottom/right;
    at larger strides the total depends on the input size, which a dynamic graph does not know.
    """
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    if strides != (1, 1):
        unsupported(layer, "uses padding 'same' with a stride above 1")
    total = [(k - 1) * d for k, d in zip(kernel, dilation)]
    return [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]


def _conv(g: Graph, layer, x: str, kernel_oihw: np.ndarray, bias, group: int) -> str:
    if layer.data_format != "channels_last":
        unsupported(layer, "is not channels_last")
    size = tuple(kernel_oihw.shape[2:])
    strides, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    inputs = [x, g.weight(f"{layer.name}/kernel", kernel_oihw)]
    if bias is not None:
        inputs.append(g.weight(f"{layer.name}/bias", bias))
    y = g.node("Conv", inputs, layer.name, kernel_shape=list(size), strides=list(strides),
               dilations=list(dilation), pads=_same_pads(layer, size, strides, dilation), group=group)
    return _activation(g, layer, f"{layer.name}/activation", y, layer.activation)


@LAYERS.register("Conv2D")
def _conv2d(g: Graph, layer, xs: list[str]) -> str:
    if layer.groups != 1:
        unsupported(layer, f"has groups={layer.groups}")
    kernel = layer.kernel.numpy().transpose(3, 2, 0, 1)  # HWIO -> OIHW
    return _conv(g, layer, xs[0], kernel, layer.bias.numpy() if layer.use_bias else None, 1)


@LAYERS.register("DepthwiseConv2D")
def _depthwise(g: Graph, layer, xs: list[str]) -> str:
    kh, kw, c, mult = layer.depthwise_kernel.shape
    # Keras output channel c*mult + m is ONNX group c's output m: the same order.
    kernel = layer.depthwise_kernel.numpy().transpose(2, 3, 0, 1).reshape(c * mult, 1, kh, kw)
    return _conv(g, layer, xs[0], kernel, layer.bias.numpy() if layer.use_bias else None, int(c))


@LAYERS.register("ReLU")
def _relu(g: Graph, layer, xs: list[str]) -> str:
    if layer.max_value is not None or float(layer.threshold) != 0.0:
        unsupported(layer, "has max_value or threshold (plain ReLU / LeakyReLU only)")
    slope = float(layer.negative_slope)
    if slope:
        return g.node("LeakyRelu", xs, layer.name, alpha=slope)
    return g.node("Relu", xs, layer.name)


@LAYERS.register("LeakyReLU")
def _leaky(g: Graph, layer, xs: list[str]) -> str:
    return g.node("LeakyRelu", xs, layer.name, alpha=float(layer.alpha))


@LAYERS.register("PReLU")
def _prelu(g: Graph, layer, xs: list[str]) -> str:
    alpha = layer.alpha.numpy()
    if alpha.ndim != 3 or alpha.shape[:2] != (1, 1):
        unsupported(layer, f"has alpha of shape {alpha.shape} (per-channel shared over H, W only)")
    return g.node("PRelu", [xs[0], g.weight(f"{layer.name}/alpha", alpha.reshape(-1, 1, 1))], layer.name)


@LAYERS.register("Activation")
def _act(g: Graph, layer, xs: list[str]) -> str:
    out = _activation(g, layer, layer.name, xs[0], layer.activation)
    return out if out != xs[0] else g.node("Identity", xs, layer.name)


@LAYERS.register("Add")
def _add(g: Graph, layer, xs: list[str]) -> str:
    out = xs[0]
    for k, x in enumerate(xs[1:]):
        out = g.node("Add", [out, x], layer.name if k == len(xs) - 2 else f"{layer.name}_{k}")
    return out


@LAYERS.register("Multiply")
def _multiply(g: Graph, layer, xs: list[str]) -> str:
    out = xs[0]
    for k, x in enumerate(xs[1:]):
        out = g.node("Mul", [out, x], layer.name if k == len(xs) - 2 else f"{layer.name}_{k}")
    return out


@LAYERS.register("Concatenate")
def _concat(g: Graph, layer, xs: list[str]) -> str:
    if layer.axis not in _NCHW_AXIS:
        unsupported(layer, f"concatenates on axis {layer.axis}")
    return g.node("Concat", xs, layer.name, axis=_NCHW_AXIS[layer.axis])


@LAYERS.register("UpSampling2D")
def _upsample(g: Graph, layer, xs: list[str]) -> str:
    if layer.interpolation != "nearest":
        unsupported(layer, f"interpolates '{layer.interpolation}' (nearest only)")
    sh, sw = layer.size
    scales = g.const(f"{layer.name}/scales", [1, 1, sh, sw], "float32")
    # asymmetric + floor: output pixel o reads input o // s, exactly Keras' nearest repeat
    return g.node("Resize", [xs[0], "", scales], layer.name, mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@LAYERS.register("ZeroPadding2D")
def _zero_pad(g: Graph, layer, xs: list[str]) -> str:
    (top, bottom), (left, right) = layer.padding
    pads = g.const(f"{layer.name}/pads", [0, 0, top, left, 0, 0, bottom, right], "int64")
    return g.node("Pad", [xs[0], pads], layer.name, mode="constant")


@LAYERS.register("LayerNormalization")
def _layer_norm(g: Graph, layer, xs: list[str]) -> str:
    """(x - mean) / sqrt(var + eps) * gamma + beta over Keras' axes (tf.nn.moments: biased var).

    Built from ReduceMean: ONNX's LayerNormalization normalises trailing axes only, and channels
    are not trailing in NCHW."""
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    if any(a not in _NCHW_AXIS for a in axes):
        unsupported(layer, f"normalises over axes {axes}")
    onnx_axes = sorted({_NCHW_AXIS[a] for a in axes})
    n = layer.name
    mean = g.node("ReduceMean", xs, n + "/mean", axes=onnx_axes, keepdims=1)
    centred = g.node("Sub", [xs[0], mean], n + "/centred")
    var = g.node("ReduceMean", [g.node("Mul", [centred, centred], n + "/sq")], n + "/var", axes=onnx_axes, keepdims=1)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(n + "/epsilon", float(layer.epsilon), g.activations)],
                                 n + "/var_eps")], n + "/std")
    y = g.node("Div", [centred, std], n + ("/normed" if layer.scale or layer.center else ""))
    shape = [1, 1, 1, 1]
    for a in axes:  # gamma/beta span the normalised axes, in NCHW order
        shape[_NCHW_AXIS[a]] = -1
    if layer.scale:
        gamma = layer.gamma.numpy()
        y = g.node("Mul", [y, g.weight(n + "/gamma", _nchw_param(gamma, axes))], n + ("/scaled" if layer.center else ""))
    if layer.center:
        y = g.node("Add", [y, g.weight(n + "/beta", _nchw_param(layer.beta.numpy(), axes))], n)
    return y


def _nchw_param(values: np.ndarray, axes) -> np.ndarray:
    """A LayerNormalization parameter over NHWC `axes` as an NCHW-broadcastable array [1, C, H, W]."""
    if list(axes) in ([-1], [3]):
        return values.reshape(1, -1, 1, 1)
    full = np.ones((1, 1, 1, 1) if values.ndim == 0 else (1,) * (4 - values.ndim) + values.shape, np.float32)
    return (full * values).transpose(0, 3, 1, 2)


@LAYERS.register("Conv2DTranspose")
def _conv_transpose(g: Graph, layer, xs: list[str]) -> str:
    """Keras kernel [kh, kw, out, in] -> ONNX ConvTranspose [in, out, kh, kw] (the same
    gradient-of-conv arithmetic, no flip); 'valid' only: output (in - 1) * stride + kernel."""
    if layer.padding != "valid" or layer.output_padding is not None or tuple(layer.dilation_rate) != (1, 1):
        unsupported(layer, "is not a plain 'valid' transposed conv (no output_padding, no dilation)")
    kernel = layer.kernel.numpy().transpose(3, 2, 0, 1)
    inputs = [xs[0], g.weight(f"{layer.name}/kernel", kernel)]
    if layer.use_bias:
        inputs.append(g.weight(f"{layer.name}/bias", layer.bias.numpy()))
    y = g.node("ConvTranspose", inputs, layer.name, kernel_shape=list(kernel.shape[2:]),
               strides=list(layer.strides), pads=[0, 0, 0, 0])
    return _activation(g, layer, f"{layer.name}/activation", y, layer.activation)


@LAYERS.register("GlobalAveragePooling2D")
def _global_avg(g: Graph, layer, xs: list[str]) -> str:
    """[N, C, 1, 1] with keepdims, else [N, C] (a rank-2 tensor has the same layout in both)."""
    pooled = g.node("GlobalAveragePool", xs, layer.name + ("" if layer.keepdims else "/pool"))
    return pooled if layer.keepdims else g.node("Flatten", [pooled], layer.name, axis=1)


@LAYERS.register("Reshape")
def _reshape(g: Graph, layer, xs: list[str]) -> str:
    """Only [N, C] -> [N, 1, 1, C] (a pooled vector back to an image, e.g. an SE block):
    other reshapes mix the NHWC and NCHW orders."""
    c = layer.input_shape[-1]
    if len(layer.input_shape) != 2 or tuple(layer.target_shape) != (1, 1, c):
        unsupported(layer, f"reshapes {layer.input_shape} to {layer.target_shape} (only [N, C] -> [N, 1, 1, C])")
    return g.node("Unsqueeze", [xs[0], g.const(layer.name + "/axes", [2, 3], "int64")], layer.name)


@LAYERS.register("Cropping2D")
def _crop(g: Graph, layer, xs: list[str]) -> str:
    (top, bottom), (left, right) = layer.cropping
    big = np.iinfo(np.int64).max  # Slice's "to the end"
    starts = g.const(layer.name + "/starts", [top, left], "int64")
    ends = g.const(layer.name + "/ends", [-bottom if bottom else big, -right if right else big], "int64")
    return g.node("Slice", [xs[0], starts, ends, g.const(layer.name + "/axes", [2, 3], "int64")], layer.name)


def _hw(g: Graph, x: str, name: str) -> str:
    """int64 [H, W] of an NCHW tensor, computed in the graph (H and W are dynamic)."""
    shape = g.node("Shape", [x], name + "/shape")
    return g.node("Gather", [shape, g.const(name + "/hw_index", [2, 3], "int64")], name + "/hw", axis=0)


@LAYERS.register("ReflectPad")
def _reflect_pad(g: Graph, layer, xs: list[str]) -> str:
    """Reflect-pad by `pad` plus what rounds H, W up to `multiple`: (m - H % m) % m more at the
    bottom/right, computed from the input's shape."""
    p, m = int(layer.pad), int(layer.multiple)
    n = layer.name
    before = g.const(n + "/before", [0, 0, p, p], "int64")
    extra = g.const(n + "/no_extra", [0, 0], "int64")
    if m > 1:
        mod = g.const(n + "/multiple", [m, m], "int64")
        extra = g.node("Mod", [g.node("Sub", [mod, g.node("Mod", [_hw(g, xs[0], n), mod], n + "/rem")],
                                      n + "/short"), mod], n + "/extra")
    after = g.node("Concat", [g.const(n + "/after_nc", [0, 0], "int64"),
                              g.node("Add", [extra, g.const(n + "/pad", [p, p], "int64")], n + "/after_hw")],
                   n + "/after", axis=0)
    pads = g.node("Concat", [before, after], n + "/pads", axis=0)
    return g.node("Pad", [xs[0], pads], n, mode="reflect")


@LAYERS.register("CropToInput")
def _crop_to_input(g: Graph, layer, xs: list[str]) -> str:
    """[x, image] -> x[:, :, :H*scale, :W*scale] for the image's H, W."""
    n = layer.name
    ends = g.node("Mul", [_hw(g, xs[1], n), g.const(n + "/scale", [layer.scale, layer.scale], "int64")], n + "/ends")
    return g.node("Slice", [xs[0], g.const(n + "/starts", [0, 0], "int64"), ends,
                            g.const(n + "/axes", [2, 3], "int64")], n)


@LAYERS.register("Dropout")
def _dropout(g: Graph, layer, xs: list[str]) -> str:  # identity at inference
    return g.node("Identity", xs, layer.name)


@LAYERS.register("PixelShuffle")
def _pixel_shuffle(g: Graph, layer, xs: list[str]) -> str:
    return g.node("DepthToSpace", xs, layer.name, blocksize=int(layer.scale), mode="DCR")


@LAYERS.register("PixelUnshuffle")
def _pixel_unshuffle(g: Graph, layer, xs: list[str]) -> str:
    return g.node("SpaceToDepth", xs, layer.name, blocksize=int(layer.scale))


@LAYERS.register("MultiplyBeta")
def _beta(g: Graph, layer, xs: list[str]) -> str:
    return g.node("Mul", [xs[0], g.const(f"{layer.name}/beta", float(layer.beta), g.activations)], layer.name)


def _class_key(layer) -> str:
    """Registry key of a layer: its class, or the srjs class it aliases (PixelShuffle4x)."""
    for cls in type(layer).__mro__:
        if cls.__name__ in LAYERS:
            return cls.__name__
    raise BadInput(f"ONNX export: layer '{layer.name}' is a {type(layer).__name__}, which srjs "
                   f"cannot translate (known: {', '.join(layer_classes())})")


def _kt_key(tensor) -> int:
    return id(tensor)


def to_onnx(model, *, activations: str = "float32", weights: str | None = None,
            name: str | None = None):
    """`model` (functional tf_keras) as an onnx.ModelProto with the module doc's conventions.

    activations: the dtype the graph computes in (float32 or float16); weights: how weights are
    stored (default: as the activations; float16 weights with float32 activations halve the
    file and compute in float32). The interface stays float32 NHWC either way.
    """
    from onnx import TensorProto, checker, helper

    weights = weights or activations
    if activations not in ACTIVATIONS or weights not in ACTIVATIONS:
        raise BadInput(f"ONNX export dtypes must be float32 or float16, not {activations}/{weights}")
    if activations == "float16" and weights == "float32":
        raise BadInput("ONNX export: float16 activations need float16 weights")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise BadInput(f"ONNX export: srjs models have one input and one output, not "
                       f"{len(model.inputs)} and {len(model.outputs)}")
    g = Graph(activations=activations, weights=weights)
    g._names.update({INPUT, OUTPUT})
    channels_in = int(model.inputs[0].shape[-1])
    channels_out = int(model.outputs[0].shape[-1])

    x = g.node("Transpose", [INPUT], "input_nchw", perm=[0, 3, 1, 2])
    if activations != "float32":
        x = g.node("Cast", [x], "input_cast", to=_onnx_type(activations))
    names = {_kt_key(model.inputs[0]): x}
    network_nodes = model._network_nodes  # tf_keras: the node keys that belong to this model
    for layer in model.layers:  # tf_keras orders a functional model's layers by depth
        if type(layer).__name__ == "InputLayer":
            continue
        nodes = [n for k, n in enumerate(layer.inbound_nodes)
                 if f"{layer.name}_ib-{k}" in network_nodes]
        if len(nodes) != 1:
            unsupported(layer, f"is called {len(nodes)} times (shared layers are not supported)")
        node = nodes[0]
        translate = LAYERS.get(_class_key(layer))
        inputs = [names[_kt_key(t)] for t in node.keras_inputs]
        names[_kt_key(node.outputs)] = translate(g, layer, inputs)
    y = names[_kt_key(model.outputs[0])]
    if activations != "float32":
        y = g.node("Cast", [y], "output_cast", to=TensorProto.FLOAT)
    g.nodes.append(helper.make_node("Transpose", [y], [OUTPUT], name=OUTPUT, perm=[0, 2, 3, 1]))

    graph = helper.make_graph(
        g.nodes, name or model.name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", "H", "W", channels_in])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", "H_out", "W_out", channels_out])],
        initializer=g.initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="srjs", ir_version=IR_VERSION)
    checker.check_model(proto)
    return proto
