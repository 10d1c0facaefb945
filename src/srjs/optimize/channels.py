"""Structured channel pruning: remove whole conv output channels so the convolutions shrink.

tfmot's magnitude pruning leaves the tensor shapes (and the work) as they are; removing an
output channel of a conv removes a slice of its kernel, the matching input slice of every
conv that reads it, and every copy of it along the way. This module does that surgery on any
tf_keras functional model built from the layers the ESRGAN family uses.

Channel bookkeeping: every conv's output channels form a *group*. A tensor's channel axis is a
list of (group, index) pairs: an activation passes its input's list on, a Concatenate joins
lists, and an Add ties the groups it sums (they must keep the same indices: a residual trunk
is one group however many convs write into it). A group is *fixed* (never pruned) when it
reaches the model output, a layer this module does not know (PixelShuffle mixes channels into
pixels), or an Add of unequal lists.

Removing channels whose kernel slices and biases are all zero changes no output (tested); the
channels `plan` picks are the least important ones by how much they feed their readers, and
the pruned model is then fine-tuned against the original (optimize.distill).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from srjs.errors import BadInput

# Layers that act on each channel alone: a channel's list passes through them unchanged.
PER_CHANNEL = {"Activation", "ReLU", "LeakyReLU", "PReLU", "MultiplyBeta", "UpSampling2D", "ZeroPadding2D"}
CONV = "Conv2D"
INPUT_GROUP = "<input>"


@dataclass
class ChannelGraph:
    """The model's config, each layer's inbound layer names, each output's channel list, groups."""

    config: dict
    inbound: dict[str, list[str]]
    channels: dict[str, list[tuple[str, int]]]
    group_size: dict[str, int]
    parent: dict[str, str] = field(default_factory=dict)  # union-find over groups (Add ties)
    fixed: set[str] = field(default_factory=set)  # roots that must keep every channel

    def root(self, group: str) -> str:
        while self.parent.get(group, group) != group:
            group = self.parent[group]
        return group

    def tie(self, a: str, b: str) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[rb] = ra
            if rb in self.fixed:
                self.fixed.add(ra)

    def fix(self, group: str) -> None:
        self.fixed.add(self.root(group))

    def prunable(self) -> dict[str, list[str]]:
        """Root group -> its member conv groups, for every group that may lose channels."""
        out: dict[str, list[str]] = {}
        for group in self.group_size:
            root = self.root(group)
            if group != INPUT_GROUP and root not in self.fixed:
                out.setdefault(root, []).append(group)
        return out


def channel_graph(model) -> ChannelGraph:
    """Parse a tf_keras functional model's config into channel lists and groups."""
    config = model.get_config()
    if "layers" not in config or "output_layers" not in config:
        raise BadInput("channel pruning needs a functional Keras model")
    graph = ChannelGraph(config=config, inbound={}, channels={}, group_size={})
    for layer in config["layers"]:
        name, kind = layer["name"], layer["class_name"]
        nodes = layer["inbound_nodes"]
        if len(nodes) > 1:
            raise BadInput(f"channel pruning: layer '{name}' is called more than once")
        sources = [entry[0] for entry in nodes[0]] if nodes else []
        graph.inbound[name] = sources
        lists = [graph.channels[s] for s in sources]
        if kind == "InputLayer":
            width = layer["config"]["batch_input_shape"][-1]
            graph.group_size[INPUT_GROUP] = width
            graph.fixed.add(INPUT_GROUP)
            graph.channels[name] = [(INPUT_GROUP, i) for i in range(width)]
        elif kind == CONV:
            if layer["config"].get("groups", 1) != 1:
                raise BadInput(f"channel pruning: grouped conv '{name}' is not supported")
            width = int(layer["config"]["filters"])
            graph.group_size[name] = width
            graph.channels[name] = [(name, i) for i in range(width)]
        elif kind in PER_CHANNEL and layer["config"].get("activation") != "softmax":
            graph.channels[name] = list(lists[0])
        elif kind == "Concatenate" and layer["config"].get("axis") in (-1, 3):
            graph.channels[name] = [c for part in lists for c in part]
        elif kind == "Add" and _whole_groups(lists):
            for other in lists[1:]:
                graph.tie(lists[0][0][0], other[0][0])
            graph.channels[name] = list(lists[0])
        else:  # unknown, or channel-mixing: keep every channel that reaches it, in any order
            for part in lists:
                for group, _ in part:
                    graph.fix(group)
            graph.channels[name] = [(f"<{name}>", i) for i in range(_width(model, name))]
            graph.fixed.add(f"<{name}>")  # a conv added to this output must keep its channels too
    for out in config["output_layers"]:
        for group, _ in graph.channels[out[0]]:
            graph.fix(group)
    return graph


def _whole_groups(lists: list[list[tuple[str, int]]]) -> bool:
    """True if each list is one whole group in index order (what an Add may tie)."""
    def whole(part):
        return bool(part) and all(c == (part[0][0], i) for i, c in enumerate(part))

    return all(whole(p) for p in lists) and len({len(p) for p in lists}) == 1


def _width(model, name: str) -> int:
    return int(model.get_layer(name).output_shape[-1])


# --- choosing channels ---------------------------------------------------------------------

def importance(model, graph: ChannelGraph, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Root group -> per-channel importance: how much each channel feeds the convs reading it.

    For channel k read by conv c: rms(activation_k) * ||c.kernel[..., k, :]|| summed over readers
    and over the tied groups. One forward pass over `batch`; it ranks, it is not a loss.
    """
    from srjs.tf import keras

    groups = graph.prunable()
    readers = [layer for layer in graph.config["layers"] if layer["class_name"] == CONV]
    sources = sorted({s for r in readers for s in graph.inbound[r["name"]]})
    probe = keras.Model(model.inputs, [model.get_layer(s).output for s in sources])
    outputs = probe(batch, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    rms = {s: np.sqrt(np.mean(np.square(o.numpy()), axis=(0, 1, 2))) for s, o in zip(sources, outputs)}
    scores = {root: np.zeros(graph.group_size[members[0]]) for root, members in groups.items()}
    for reader in readers:
        (source,) = graph.inbound[reader["name"]]
        kernel = model.get_layer(reader["name"]).get_weights()[0]  # kh, kw, cin, cout
        strength = np.sqrt(np.sum(np.square(kernel), axis=(0, 1, 3))) * rms[source]
        for pos, (group, index) in enumerate(graph.channels[source]):
            root = graph.root(group)
            if root in scores:
                scores[root][index] += strength[pos]
    return scores


def plan(graph: ChannelGraph, scores: dict[str, np.ndarray], ratio: float, multiple: int = 4) -> dict[str, np.ndarray]:
    """Root group -> sorted channel indices to keep: the top (1 - ratio) of each group by score.

    Kept counts are rounded to a multiple of `multiple` (WASM SIMD and WebGL work in fours),
    never below `multiple` and never above the group's width.
    """
    if not 0 < ratio < 1:
        raise BadInput(f"--prune-channels must be a fraction in (0, 1), got {ratio}")
    keep: dict[str, np.ndarray] = {}
    for root, score in scores.items():
        width = len(score)
        count = int(round(width * (1 - ratio) / multiple)) * multiple
        count = min(width, max(count, min(multiple, width)))
        if count < width:
            keep[root] = np.sort(np.argsort(-score, kind="stable")[:count])
    return keep


def all_zero_channels(model, graph: ChannelGraph) -> dict[str, np.ndarray]:
    """Root group -> channels to keep when dropping the ones that are exactly zero in every
    member conv (kernel slice and bias): removing them changes no output."""
    keep = {}
    for root, members in graph.prunable().items():
        nonzero = np.zeros(graph.group_size[members[0]], bool)
        for conv in members:
            weights = model.get_layer(conv).get_weights()
            nonzero |= np.any(weights[0] != 0, axis=(0, 1, 2))
            if len(weights) > 1:
                nonzero |= weights[1] != 0
        if not nonzero.all():
            keep[root] = np.flatnonzero(nonzero)
    return keep


# --- the surgery ---------------------------------------------------------------------------

def apply(model, graph: ChannelGraph, keep: dict[str, np.ndarray]):
    """A new model with only the `keep` channels of each pruned group (others untouched)."""
    from srjs.archs import custom_objects
    from srjs.tf import keras

    def kept(group: str, index: int) -> bool:
        return _kept(graph, keep, group, index)

    config = copy.deepcopy(graph.config)
    new_weights: dict[str, list[np.ndarray]] = {}
    for layer in config["layers"]:
        name, kind = layer["name"], layer["class_name"]
        weights = model.get_layer(name).get_weights()
        if kind == CONV:
            (source,) = graph.inbound[name]
            in_pos = [p for p, c in enumerate(graph.channels[source]) if kept(*c)]
            out_pos = [i for i in range(graph.group_size[name]) if kept(name, i)]
            kernel = weights[0][:, :, in_pos][..., out_pos]
            weights = [kernel] + ([weights[1][out_pos]] if len(weights) > 1 else [])
            layer["config"]["filters"] = len(out_pos)
        elif kind == "PReLU" and weights:
            pos = [p for p, c in enumerate(graph.channels[name]) if kept(*c)]
            weights = [w[..., pos] if w.shape[-1] == len(graph.channels[name]) else w for w in weights]
        new_weights[name] = weights
    pruned = keras.Model.from_config(config, custom_objects=custom_objects())
    for name, weights in new_weights.items():
        if weights:
            pruned.get_layer(name).set_weights(weights)
    return pruned


def refit(original, pruned, graph: ChannelGraph, keep: dict[str, np.ndarray], batch: np.ndarray,
          ridge: float = 1e-3, max_samples: int = 20000, seed: int = 0, only: list[str] | None = None) -> None:
    """Re-solve each conv of `pruned` (in place, in graph order) by least squares so its output
    on the pruned model's own inputs matches the original conv's output (kept channels).

    Layer-wise reconstruction (He et al. 2017, "Channel Pruning"): what a removed channel
    carried is re-expressed through the channels that stay, before any fine-tune. `ridge` is
    relative to the mean diagonal of X^T X; `max_samples` output pixels are drawn at random.
    `only`: re-solve just these convs (depth pruning's), in graph order.
    """
    from srjs.tf import keras, tf

    rng = np.random.default_rng(seed)
    convs = [layer["name"] for layer in graph.config["layers"] if layer["class_name"] == CONV
             and (only is None or layer["name"] in only)]
    if not convs:
        return
    # The original's conv outputs in one pass. The pruned model runs once, layer by layer:
    # each conv is re-solved on its input just before it runs, so later convs see the
    # re-solved earlier ones (a sub-model per conv cost a forward pass each: 4.6 min of
    # x4plus's 5-minute cut).
    outputs = keras.Model(original.inputs, [original.get_layer(n).output for n in convs])(batch, training=False)
    # A one-output model returns a tensor, not a list: zip would walk its batch axis.
    targets = dict(zip(convs, outputs if len(convs) > 1 else [outputs]))

    def resolve(name: str, x) -> None:
        if name not in targets:
            return
        layer = pruned.get_layer(name)
        kh, kw, cin, cout = layer.kernel.shape
        out_pos = [i for i in range(graph.group_size[name]) if _kept(graph, keep, name, i)]
        target = targets.pop(name).numpy()[..., out_pos]
        patches = tf.image.extract_patches(x, [1, kh, kw, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME").numpy()
        # extract_patches orders a patch (row, col, channel): the kernel's (kh, kw, cin) order.
        if target.shape[1:3] != patches.shape[1:3]:
            return  # strided or resizing conv: leave it to the fine-tune
        rows = patches.reshape(-1, kh * kw * cin)
        ys = target.reshape(-1, cout)
        pick = rng.choice(len(rows), min(max_samples, len(rows)), replace=False)
        xs = np.concatenate([rows[pick], np.ones((len(pick), 1), np.float32)], axis=1).astype(np.float64)
        gram = xs.T @ xs
        gram[np.diag_indices_from(gram)] += ridge * np.mean(np.diag(gram))
        solved = np.linalg.solve(gram, xs.T @ ys[pick].astype(np.float64))
        weights = [solved[:-1].reshape(kh, kw, cin, cout).astype(np.float32)]
        if layer.use_bias:
            weights.append(solved[-1].astype(np.float32))
        layer.set_weights(weights)

    run_layers(pruned, graph.config, batch, before=resolve)


def run_layers(model, config: dict, batch: np.ndarray, before=None) -> list:
    """The outputs of `config`'s output layers, computed by running `model`'s layers (looked up
    by name) one by one in config order; `config` may differ from the model's own (depth
    pruning's forward without some blocks). before(name, x): called with each layer's input
    just before the layer runs, so weights it changes are the ones used. A value is freed once
    its last reader has run (x4plus's tail at 4x resolution: 67 MB per layer for 16 patches of 32 px)."""
    readers: dict[str, int] = {}
    for layer in config["layers"]:
        for node in layer.get("inbound_nodes") or []:
            for entry in node:
                if entry[2] != 0 or (len(entry) > 3 and entry[3]):
                    raise BadInput(f"layer '{layer['name']}' reads a multi-output layer or passes call "
                                   "arguments: srjs does not build such models")
                readers[entry[0]] = readers.get(entry[0], 0) + 1
    for entry in config["output_layers"]:
        readers[entry[0]] = readers.get(entry[0], 0) + 1  # kept to the end
    values = {entry[0]: batch for entry in config["input_layers"]}
    for layer in config["layers"]:
        name = layer["name"]
        if name in values:
            continue
        sources = [entry[0] for node in layer.get("inbound_nodes") or [] for entry in node]
        x = values[sources[0]] if len(sources) == 1 else [values[s] for s in sources]
        if before is not None:
            before(name, x)
        values[name] = model.get_layer(name)(x, training=False)
        for source in sources:
            readers[source] -= 1
            if readers[source] == 0:
                del values[source]
    return [np.asarray(values[entry[0]]) for entry in config["output_layers"]]


def _kept(graph: ChannelGraph, keep: dict[str, np.ndarray], group: str, index: int) -> bool:
    chosen = keep.get(graph.root(group))
    return chosen is None or index in chosen


# --- cost ----------------------------------------------------------------------------------

def conv_macs(model, size: int = 8) -> dict[str, float]:
    """Conv name -> multiply-accumulates per input pixel (layers after an upsample count s*s).

    Probed on a size x size input; a model that needs larger inputs (Real-CUGAN reflect-pads
    by up to 38 px) is probed at `_LARGE_PROBE` px, where its unpadded convs' border work is
    included. A transposed conv does its kernel's work once per input pixel.
    """
    from srjs.tf import keras, tf

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.inputs, [layer.output for layer in convs])
    channels = model.input_shape[-1]
    try:
        outputs = probe(tf.zeros([1, size, size, channels]), training=False)
    except (tf.errors.InvalidArgumentError, ValueError):
        size = _LARGE_PROBE
        outputs = probe(tf.zeros([1, size, size, channels]), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    macs = {}
    for layer, out in zip(convs, outputs):
        kh, kw, cin, cout = layer.kernel.shape
        h, w = out.shape[1], out.shape[2]
        if isinstance(layer, keras.layers.Conv2DTranspose):  # 'valid': out = (in - 1) * stride + k
            h, w = (h - kh) // layer.strides[0] + 1, (w - kw) // layer.strides[1] + 1
        macs[layer.name] = float(kh * kw * cin * cout) * h * w / (size * size)
    return macs


_LARGE_PROBE = 128


def params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights))


# --- the whole step: choose, cut, re-solve, fine-tune -----------------------------------------

def prune_channels(model, teacher, images, *, ratio: float, value_max: float, steps: int | None = None,
                   time_budget_s: float | None = None, progress: bool = False, seed: int = 0,
                   learning_rate: float = 2e-4):
    """Remove `ratio` of every prunable group's channels from `model`, then repair by distillation.

    images: LR calibration images in [0, 1] (optimize.distill.calibration_images). The channels
    kept are chosen and re-solved on 16 random 32 px patches of them; the fine-tune then runs
    for `steps` / `time_budget_s` with a cosine learning-rate decay. Returns (pruned model,
    report dict: per-group widths, params and conv MACs per input pixel before and after).
    """
    from srjs.optimize.distill import PatchSampler, distill

    graph = channel_graph(model)
    batch = PatchSampler(images, 32, value_max, seed=seed + 1).batch(16)
    keep = plan(graph, importance(model, graph, batch), ratio)
    if not keep:
        raise BadInput(f"--prune-channels {ratio}: no group of this model can lose a channel")
    pruned = apply(model, graph, keep)
    refit(model, pruned, graph, keep, batch, seed=seed)
    pruned, fit = distill(pruned, teacher, images, value_max=value_max, steps=steps,
                          time_budget_s=time_budget_s, learning_rate=learning_rate,
                          cosine_decay=True, progress=progress, seed=seed)
    macs_before, macs_after = sum(conv_macs(model).values()), sum(conv_macs(pruned).values())
    groups = {root: {"width": graph.group_size[members[0]],
                     "kept": int(len(keep[root])) if root in keep else graph.group_size[members[0]],
                     "convs": members}
              for root, members in graph.prunable().items()}
    return pruned, {
        "ratio": ratio,
        "groups": groups,
        "params": {"before": params(model), "after": params(pruned)},
        "macs_per_pixel": {"before": macs_before, "after": macs_after},
        "speedup_macs": round(macs_before / macs_after, 3),
        "fine_tune": fit.to_dict(),
    }
