"""Depth pruning: drop whole residual blocks (RRDBs, RDBs) so the network does less work.

A residual block computes `x + f(x)`; without `f` it passes `x` on, and residual nets trained
this deep tolerate losing some blocks (Veit et al. 2016: residual networks behave like
ensembles of shallower paths). This module finds the blocks on the model's config graph, not
by family: an Add whose one input `x` dominates the other (every path from the model input to
the branch passes through `x`), with a branch that nothing outside reads. Blocks that chain
(each one's `x` is the previous one's Add) form the trunk; the longest chain is the one pruned
(RRDBNet's 23 RRDBs, RDN's D blocks, RRDN's T blocks; never the global skip around the trunk).

Which blocks go is measured: each is dropped alone and the change of the model output on
calibration patches is recorded; the ones that change it least go. The convs that read the
trunk right after a dropped block are re-solved by least squares against the original's
outputs (as `channels.refit` does for channel pruning), then the distillation fine-tune
repairs the rest.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from srjs.errors import BadInput


@dataclass(frozen=True)
class Block:
    """One residual block: `add` = skip + f(skip); `branch`: the layers of f (Add excluded)."""

    add: str
    skip: str
    branch: frozenset


def _graph(config: dict) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(inbound, consumers): layer name -> the layer names it reads / that read it."""
    inbound: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {layer["name"]: [] for layer in config["layers"]}
    for layer in config["layers"]:
        nodes = layer.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise BadInput(f"depth pruning: layer '{layer['name']}' is called more than once")
        inbound[layer["name"]] = [entry[0] for entry in nodes[0]] if nodes else []
        for source in inbound[layer["name"]]:
            consumers[source].append(layer["name"])
    return inbound, consumers


def _reachable(starts, edges: dict[str, list[str]], blocked: str | None = None) -> set[str]:
    seen, todo = set(), [s for s in starts if s != blocked]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(n for n in edges.get(node, []) if n != blocked and n not in seen)
    return seen


def residual_blocks(model) -> list[Block]:
    """The longest chain of residual blocks of a functional tf_keras model, in graph order."""
    config = model.get_config()
    inbound, consumers = _graph(config)
    inputs = [entry[0] for entry in config["input_layers"]]
    blocks: dict[str, Block] = {}
    for layer in config["layers"]:
        sources = inbound[layer["name"]]
        if layer["class_name"] != "Add" or len(sources) != 2:
            continue
        for skip, end in (sources, sources[::-1]):
            if end in _reachable(inputs, consumers, blocked=skip):
                continue  # `skip` does not dominate the branch
            branch = _reachable([skip], consumers) & _reachable([end], inbound)
            branch.discard(skip)
            closed = all(set(consumers[n]) <= branch | {layer["name"]} for n in branch) and all(
                set(inbound[n]) <= branch | {skip} for n in branch)
            if branch and closed:
                blocks[layer["name"]] = Block(layer["name"], skip, frozenset(branch))
                break
    follows = {b.skip: b for b in blocks.values()}  # block whose skip is this block's Add
    best: list[Block] = []
    for start in blocks.values():
        if start.skip in blocks:
            continue  # not the head of a chain
        chain = [start]
        while chain[-1].add in follows:
            chain.append(follows[chain[-1].add])
        best = chain if len(chain) > len(best) else best
    return best


def _cut(blocks: list[Block]):
    """(layers that go, name -> the layer that now stands for it) for dropping `blocks`."""
    gone = set().union(*(b.branch | {b.add} for b in blocks)) if blocks else set()
    rename = {b.add: b.skip for b in blocks}

    def resolve(name: str) -> str:
        while name in rename:  # consecutive dropped blocks: back to the first kept tensor
            name = rename[name]
        return name

    return gone, resolve


def _config_without(config: dict, blocks: list[Block]) -> dict:
    """A copy of a functional config in which each block's Add is replaced by its skip input."""
    config = copy.deepcopy(config)
    gone, resolve = _cut(blocks)
    config["layers"] = [layer for layer in config["layers"] if layer["name"] not in gone]
    entries = [entry for layer in config["layers"] for node in layer.get("inbound_nodes") or [] for entry in node]
    for entry in entries + config["output_layers"]:
        if resolve(entry[0]) != entry[0]:
            entry[0], entry[1], entry[2] = resolve(entry[0]), 0, 0
    return config


def drop(model, blocks: list[Block]):
    """A new model without `blocks`: each one's Add is replaced by its skip input."""
    from srjs.archs import custom_objects
    from srjs.tf import keras

    pruned = keras.Model.from_config(_config_without(model.get_config(), blocks), custom_objects=custom_objects())
    for layer in pruned.layers:
        weights = model.get_layer(layer.name).get_weights()
        if weights:
            layer.set_weights(weights)
    return pruned


def forward_without(model, blocks: list[Block], batch: np.ndarray) -> np.ndarray:
    """The model's output on `batch` with `blocks` skipped, computed eagerly with the model's own
    layers (no new model is built: ranking 23 blocks costs 23 forward passes, nothing more)."""
    from srjs.optimize.channels import run_layers

    return run_layers(model, _config_without(model.get_config(), blocks), batch)[0]


def block_errors(model, chain: list[Block], batch: np.ndarray, progress: bool = False) -> list[float]:
    """Mean squared change of the model output when each block of `chain` is dropped alone."""
    from tqdm import tqdm

    reference = model(batch, training=False).numpy()
    errors = []
    for block in tqdm(chain, desc="depth: measuring blocks", disable=not progress, unit="block"):
        out = forward_without(model, [block], batch)
        errors.append(float(np.mean(np.square(out - reference))))
    return errors


def repair_convs(pruned, chain: list[Block], dropped: list[Block]) -> list[str]:
    """The convs of `pruned` to re-solve: those reading the trunk tensor right after a dropped
    block (it lost that block's contribution), e.g. the next RRDB's first conv or conv_body."""
    from srjs.tf import keras

    _, consumers = _graph(pruned.get_config())
    order = [layer.name for layer in pruned.layers]
    adds = {b.add: b for b in chain}
    convs = set()
    for block in dropped:
        start = block.skip
        while start not in order:  # an earlier dropped block's Add: go back to what is kept
            start = adds[start].skip
        convs |= {n for n in consumers.get(start, []) if isinstance(pruned.get_layer(n), keras.layers.Conv2D)}
    return sorted(convs, key=order.index)


def prune_depth(model, teacher, images, *, ratio: float, value_max: float, steps: int | None = None,
                time_budget_s: float | None = None, progress: bool = False, seed: int = 0,
                learning_rate: float = 2e-4, fine_tune: bool = True):
    """Drop `ratio` of the trunk's residual blocks (the least harmful ones), then repair.

    images: LR calibration images in [0, 1] (optimize.distill.calibration_images). Blocks are
    ranked (and the cut re-solved) on 4 random 32 px patches; the fine-tune runs for `steps` / `time_budget_s` with a
    cosine learning-rate decay. Returns (pruned model, report dict: blocks, errors, params and
    conv MACs per input pixel before and after, the fine-tune). fine_tune=False stops after
    the least-squares re-solve (a channel-pruning step that follows fine-tunes both at once).
    """
    from srjs.optimize.channels import channel_graph, conv_macs, params, refit
    from srjs.optimize.distill import PatchSampler, distill

    if not 0 < ratio < 1:
        raise BadInput(f"--prune-depth must be a fraction in (0, 1), got {ratio}")
    chain = residual_blocks(model)
    count = int(round(len(chain) * ratio))
    if len(chain) < 2 or count < 1:
        raise BadInput(f"--prune-depth {ratio}: this model's trunk has {len(chain)} residual blocks; "
                       "nothing to drop")
    count = min(count, len(chain) - 1)
    batch = PatchSampler(images, 32, value_max, seed=seed + 1).batch(4)
    errors = block_errors(model, chain, batch, progress)
    order = np.argsort(errors, kind="stable")
    dropped = [chain[i] for i in sorted(order[:count])]
    pruned = drop(model, dropped)
    resolve = repair_convs(pruned, chain, dropped)
    if resolve:
        refit(model, pruned, channel_graph(pruned), {}, batch, seed=seed, only=resolve)
    fit = None
    if fine_tune:
        pruned, fit = distill(pruned, teacher, images, value_max=value_max, steps=steps,
                              time_budget_s=time_budget_s, learning_rate=learning_rate,
                              cosine_decay=True, progress=progress, seed=seed)
    macs_before, macs_after = sum(conv_macs(model).values()), sum(conv_macs(pruned).values())
    return pruned, {
        "ratio": ratio,
        "blocks": {"total": len(chain), "dropped": [b.add for b in dropped]},
        "drop_error": {b.add: e for b, e in zip(chain, errors)},
        "resolved_convs": resolve,
        "params": {"before": params(model), "after": params(pruned)},
        "macs_per_pixel": {"before": macs_before, "after": macs_after},
        "speedup_macs": round(macs_before / macs_after, 3),
        "fine_tune": fit.to_dict() if fit else None,
    }
