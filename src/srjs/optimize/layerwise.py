"""Quantization search at any size: each conv's own output error, and a first-order harm.

Ranges. For a Conv2D y = conv(x, W) + b, storing W on a grid changes its output by
conv(x, Wq - W). The candidate ranges of a kernel are compared by that error on the conv's
real inputs (taken from the float network on the calibration crops), all candidates in one
conv with their deltas stacked along the output channels; the bias is then picked given the
chosen kernel, from E[(conv(x, dW) + db)^2] per channel (only the mean and mean square of
conv(x, dW) are needed). The cost is a few forward passes to collect inputs plus about
`candidates` forward passes in total, whatever the number of tensors; the whole-network
search ran the network once per candidate per tensor (3,500 passes for RealESRGAN_x4plus).

Harm. The output MSE one tensor alone causes at an encoding is, to first order, |J dw|^2 / n
(J: the output's Jacobian in that tensor, n: output elements). For v ~ N(0, I) over the
output, E[(v . J dw)^2] = |J dw|^2, and v . J is the gradient of v . output, so the mean of
(g_v . dw)^2 over a few random v estimates every tensor's harm from one backward pass each.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from srjs.optimize.quantize import Choice, candidate_encodings, dequantized
from srjs.tfjs_weights import Encoding

MAX_PIXELS = 16384  # output pixels (all crops) that score one conv's candidates: caps the work
CHUNK = 48  # convs whose inputs one forward pass collects (bounds the memory held at once)


def conv_tensors(model, names) -> dict[str, tuple]:
    """{kernel name: (layer, bias name or None)} for the plain Conv2D layers (one call, no
    groups) whose kernel is in `names`; every other tensor needs a whole-network search."""
    from srjs.tf import keras

    found = {}
    for layer in model.layers:
        kernel = f"{layer.name}/kernel"
        if (type(layer) is not keras.layers.Conv2D or kernel not in names or layer.groups != 1
                or len(layer.inbound_nodes) != 1):
            continue
        bias = f"{layer.name}/bias"
        found[kernel] = (layer, bias if layer.use_bias and bias in names else None)
    return found


def _window(x: np.ndarray, layer, max_pixels: int) -> tuple[np.ndarray, str]:
    """`x`, or a centre window of it whose VALID conv outputs are true interior outputs of the
    layer (on its stride grid), with at most about `max_pixels` output pixels over the batch."""
    n, h, w, _ = x.shape
    stride = layer.strides[0]
    if n * -(-h // stride) * -(-w // stride) <= max_pixels:
        return x, layer.padding.upper()
    side = max(1, int(np.sqrt(max_pixels / n)))
    starts, sizes = [], []
    for size, k, d, s in ((h, *layer.kernel_size[:1], layer.dilation_rate[0], stride),
                          (w, layer.kernel_size[1], layer.dilation_rate[1], layer.strides[1])):
        reach = d * (k - 1) + 1
        # SAME pads (out-1)*s + reach - size in total, the smaller half first: output i reads
        # input rows from i*s - pad; a window must start on that grid
        pad = max((-(-size // s) - 1) * s + reach - size, 0) // 2 if layer.padding == "same" else 0
        want = min(size, (side - 1) * s + reach)
        start = (size - want) // 2
        start -= (start + pad) % s
        if start < 0:
            start += s
        starts.append(start)
        sizes.append(min(want, size - start))
    return x[:, starts[0]:starts[0] + sizes[0], starts[1]:starts[1] + sizes[1]], "VALID"


def layer_inputs(model, layers: list, batch: np.ndarray, chunk: int = CHUNK):
    """Yield (layer, its input on `batch` in the float model), `chunk` layers per forward pass."""
    from srjs.tf import keras

    for start in range(0, len(layers), chunk):
        part = layers[start:start + chunk]
        probe = keras.Model(model.inputs, [layer.input for layer in part])
        outputs = probe(batch, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for layer, x in zip(part, outputs):
            yield layer, x.numpy()
        del outputs, probe


SEQUENTIAL_PASSES = 24  # groups of convs calibrated in order, each on inputs from the network quantized so far


def calibrate_convs(weights: dict[str, np.ndarray], dtypes: dict[str, str], model, batch: np.ndarray,
                    progress: Callable[[int], None] = lambda n: None,
                    max_pixels: int = MAX_PIXELS, passes: int = SEQUENTIAL_PASSES) -> dict[str, Choice]:
    """Pick the encodings of every plain conv's kernel and bias by the conv's output error.

    The convs go in order, in at most `passes` groups: a group's candidates are scored on
    its inputs in the network whose earlier convs already hold their chosen values, against
    its float outputs in the float network, so a range may cancel the error that reaches
    it (scoring every conv on float inputs alone lost 6.6 dB of uint8 fidelity on ISR
    psnr-small). weights/dtypes: as `quantize.calibrate`; model: the float model (its conv
    weights are assigned during the search and restored after); batch: the calibration LR
    crops. Returns choices for the conv tensors found (`Choice.output_mse`: that conv's
    output MSE against float); progress(n) counts tensors done.
    """
    from srjs.tf import tf

    convs = conv_tensors(model, set(weights))
    layers = [layer for layer, _ in convs.values()]
    group = max(1, -(-len(layers) // max(1, passes)))
    chosen: dict[str, np.ndarray] = {}  # tensor name -> the values it now holds
    choices: dict[str, Choice] = {}

    by_name = {layer.name: layer for layer in layers}

    def assign(values: dict[str, np.ndarray]) -> None:
        for name, array in values.items():
            layer = by_name[name.split("/")[0]]
            (layer.kernel if name.endswith("/kernel") else layer.bias).assign(array)

    floats = {name: weights[name] for kernel, (_, bias) in convs.items() for name in (kernel, bias) if name}
    try:
        for start in range(0, len(layers), group):
            part = layers[start:start + group]
            assign(floats)
            clean = [x for _, x in layer_inputs(model, part, batch, chunk=len(part))]
            assign(chosen)
            noisy = [x for _, x in layer_inputs(model, part, batch, chunk=len(part))] if chosen else clean
            for layer, x_float, x in zip(part, clean, noisy):
                _choose_conv(layer, convs, weights, dtypes, x_float, x, max_pixels, tf, choices, chosen, progress)
    finally:
        assign(floats)
    return choices


def _choose_conv(layer, convs, weights, dtypes, x_float, x, max_pixels, tf, choices, chosen, progress) -> None:
    kernel_name = f"{layer.name}/kernel"
    bias_name = convs[kernel_name][1]
    kernel = weights[kernel_name]
    candidates = candidate_encodings(kernel, dtypes[kernel_name])
    x_float, padding = _window(x_float, layer, max_pixels)
    x, _ = _window(x, layer, max_pixels)

    def conv(inputs, kernels):
        return tf.nn.convolution(inputs, kernels, strides=layer.strides, padding=padding,
                                 dilations=layer.dilation_rate).numpy().astype(np.float64)

    target = conv(x_float, kernel).reshape(-1, 1, kernel.shape[-1])
    stored = [dequantized(kernel, enc) for enc in candidates]
    y = conv(x, np.concatenate(stored, axis=-1)).reshape(-1, len(candidates), kernel.shape[-1]) - target
    mean, mean_sq = y.mean(axis=0), (y ** 2).mean(axis=0)  # per candidate, per output channel
    errors = mean_sq.mean(axis=1)
    best = int(np.argmin(errors))
    choices[kernel_name] = Choice(kernel_name, candidates[best], len(candidates), float(errors[best]))
    chosen[kernel_name] = stored[best]
    progress(1)
    if bias_name is None:
        return
    bias = weights[bias_name]
    options = candidate_encodings(bias, dtypes[bias_name])
    # E[(y + db)^2] per channel = E[y^2] + 2 db E[y] + db^2, with y the chosen kernel's error
    values = [dequantized(bias, enc) for enc in options]
    scores = [float(np.mean(mean_sq[best] + 2 * db * mean[best] + db ** 2))
              for db in ((v - bias).astype(np.float64) for v in values)]
    pick = int(np.argmin(scores))
    choices[bias_name] = Choice(bias_name, options[pick], len(options), scores[pick])
    chosen[bias_name] = values[pick]
    progress(1)


def projected_harm(model, variables: dict, deltas: dict[str, np.ndarray], batch: np.ndarray,
                   projections: int = 12, seed: int = 0,
                   progress: Callable[[int], None] = lambda n: None) -> dict[str, float]:
    """First-order output MSE each tensor's change `deltas[name]` would cause alone (module doc).

    variables: name -> tf.Variable of `model`; batch: calibration LR crops, one crop per
    projection in turn (a backward pass holds every activation: one crop keeps that small).
    """
    from srjs.tf import tf

    names = list(deltas)
    tensors = [variables[n] for n in names]
    totals = np.zeros(len(names))
    elements = 0
    for k in range(projections):
        x = tf.constant(batch[k % len(batch)][None])
        with tf.GradientTape() as tape:
            y = model(x, training=False)
            v = tf.random.stateless_normal(tf.shape(y), seed=[seed, k], dtype=y.dtype)
            s = tf.reduce_sum(y * v)
        grads = tape.gradient(s, tensors)
        elements += int(np.prod(y.shape))
        for i, (name, g) in enumerate(zip(names, grads)):
            if g is not None:
                totals[i] += float(np.sum(g.numpy().astype(np.float64) * deltas[name])) ** 2
        progress(1)
    # sum of (g.dw)^2 over projections / sum of output elements = mean per-element squared error
    return {n: float(totals[i] / elements) for i, n in enumerate(names)}


def encodings_deltas(weights: dict[str, np.ndarray], encodings: dict[str, Encoding]) -> dict[str, np.ndarray]:
    """name -> (stored value - float value) as float64, for `projected_harm`."""
    return {n: dequantized(v, encodings[n]).astype(np.float64) - v for n, v in weights.items()}
