"""`srjs optimize`: make a variant of a model dir (fine-tune steps, then quantization).

A variant is a model dir like any other (DESIGN.md): keras/model.keras and saved_model/
hold exactly the weights the TF.js exports ship (dequantized), tfjs_layers/ and tfjs_graph/
store them with srjs's per-tensor encodings, and the manifest records `parent`, the
`recipe` and the measured `results` (on held-out images the search never saw).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from srjs import modeldir, strict_json, tfjs_weights
from srjs.archs.srvgg import FIXED_PREFIX
from srjs.errors import BadInput
from srjs.optimize.recipe import Recipe  # noqa: F401  (defined there so the CLI checks it before TF loads)
from srjs.optimize import calib as calibration
from srjs.optimize import layerwise, mixed, quantize
from srjs.tfjs_weights import Encoding


class _Runner:
    """The variant's Keras model on fixed inputs: assign weights, measure output error."""

    def __init__(self, model, targets: dict, batch: np.ndarray):
        from srjs.tf import tf

        self.model, self.targets = model, targets
        self.batch = tf.constant(batch)
        self.call = tf.function(lambda x: model(x, training=False))
        self.reference = self.run()

    def run(self, batch=None) -> np.ndarray:
        return self.call(self.batch if batch is None else batch).numpy()

    def assign(self, name: str, values: np.ndarray) -> None:
        self.targets[name].variable.assign(values)

    def output_error(self) -> float:
        return float(np.mean((self.run() - self.reference) ** 2))


def make_variant(parent: Path, out: Path, recipe: Recipe, *, progress: bool = False) -> modeldir.Manifest:
    """Write the variant `out` of model dir `parent` made by `recipe`; returns its manifest."""
    from srjs.progress import Progress

    recipe.check()
    with Progress("optimize", enabled=progress) as prog:  # lines on stderr, terminal or not
        return _make_variant(Path(parent), Path(out), recipe, progress, prog)


def _make_variant(parent: Path, out: Path, recipe: Recipe, progress: bool, prog) -> modeldir.Manifest:
    from srjs.archs import keras_targets
    from srjs.convert.write import write_model_dir
    from srjs.evaluate.shipped import load_shipped

    if out.resolve() == parent.resolve():
        raise BadInput("the variant must go to another folder than its parent")
    manifest = modeldir.read_manifest(parent)
    scale, vmax = manifest.scale, manifest.value_max
    calib_crops, heldout = calibration.calibration_sets(recipe.calib, scale, vmax, manifest.channels)
    start = time.perf_counter()

    prog.phase("load the parent, run it on the calibration and held-out crops", 3, "steps")
    model = load_shipped(parent)
    targets = keras_targets(model)
    prog.update()
    runner = _Runner(model, targets, calib_crops.lr)
    prog.update()
    parent_heldout = runner.run(heldout.lr)
    prog.update()
    results: dict = {}
    if any(v is not None for v in (recipe.prune, recipe.cluster, recipe.prune_channels, recipe.prune_depth)):
        prog.phase("fine-tune (depth / channel pruning, pruning, clustering) by distillation", 1, "runs")
    model = _fine_tune(model, parent, recipe, results, progress)  # prune / cluster (distillation)
    targets = keras_targets(model)
    runner = _Runner(model, targets, calib_crops.lr) if results else runner
    weights = {name: t.variable.numpy() for name, t in targets.items()}

    encodings: dict[str, Encoding] = {name: Encoding() for name in weights}
    if recipe.quantize is not None:
        # constant layers (ncnn x2/x3's exact bicubic resize) stay float32: they are not learned
        learned = {n: v for n, v in weights.items() if not n.startswith(FIXED_PREFIX)}
        chosen, results["quantization"] = _choose_encodings(
            learned, recipe, runner, calib_crops, heldout, parent_heldout, scale, vmax, prog)
        encodings.update(chosen)
        if recipe.prune is not None:  # pruned zeros must ship as zeros (optimize.prune.keep_zeros)
            from srjs.optimize.prune import keep_zeros

            encodings = {n: keep_zeros(weights[n], e) for n, e in encodings.items()}
    for name, values in weights.items():
        runner.assign(name, quantize.dequantized(values, encodings[name]))

    prog.phase("score the variant on the held-out crops", 1, "passes")
    final = calibration.quality(runner.run(heldout.lr), heldout, scale, vmax, parent_heldout)
    prog.update()
    before = calibration.quality(parent_heldout, heldout, scale, vmax)
    results["heldout"] = {"images": sorted({n.split("#")[0] for n in heldout.names}),
                          "psnr_y": round(final.psnr_y, 4), "parent_psnr_y": round(before.psnr_y, 4),
                          "drop_db": round(before.psnr_y - final.psnr_y, 4),
                          "fidelity_psnr_y": round(final.fidelity_psnr_y, 3)}
    results["weight_bytes"] = quantize.shipped_bytes(weights, encodings)
    results["float32_weight_bytes"] = quantize.shipped_bytes(weights, {n: Encoding() for n in weights})
    results["seconds"] = round(time.perf_counter() - start, 1)
    if manifest.results.get("seam_free_padding") is not None:
        # The parent's measured seam-free padding: the variant has the parent's receptive field
        # (or, depth-pruned, a smaller one), so its tiles stay seam-free; upscale --tile and the
        # package use it without a `srjs evaluate --record`, which replaces it with a measurement.
        results["seam_free_padding"] = manifest.results["seam_free_padding"]
        results["seam_patch"] = manifest.results.get("seam_patch")
        results["seam_free_padding_from"] = "parent"

    arch_params = dict(manifest.arch_params)
    if "prune_channels" in results:  # the family's widths no longer describe the net
        arch_params["prune_channels"] = recipe.prune_channels
    if "prune_depth" in results:  # nor its block count
        arch_params["prune_depth"] = recipe.prune_depth
    variant = dataclasses.replace(
        manifest, name=f"{manifest.name}-{_short(recipe)}", parent=str(parent), arch_params=arch_params,
        recipe=recipe.to_dict(), results=results, files={})
    prog.phase("write the variant (keras, saved_model, tfjs_layers, tfjs_graph, manifest)", 5, "steps")
    write_model_dir(model, out, variant, finish=lambda tmp: _encode_exports(tmp, encodings),
                    step=lambda name: prog.update())
    return modeldir.read_manifest(out)


def _short(recipe: Recipe) -> str:
    parts = [f"d{int(round(recipe.prune_depth * 100))}" if recipe.prune_depth else "",
             f"ch{int(round(recipe.prune_channels * 100))}" if recipe.prune_channels else "",
             f"p{int(round(recipe.prune * 100))}" if recipe.prune else "",
             f"c{recipe.cluster}" if recipe.cluster else "",
             (recipe.quantize if recipe.quantize and ":" not in recipe.quantize else "mixed" if recipe.quantize else "")]
    return "-".join(p for p in parts if p)


DEFAULT_FINE_TUNE_STEPS = 500  # optimizer steps of 4 LR patches of 32 px, without --steps/--time-budget


def _fine_tune(model, parent: Path, recipe: Recipe, results: dict, progress: bool):
    """Prune depth / prune channels / prune / cluster by distillation from the parent
    (optimize.depth, optimize.channels, optimize.prune, optimize.cluster), in that order."""
    if all(v is None for v in (recipe.prune, recipe.cluster, recipe.prune_channels, recipe.prune_depth)):
        return model
    from srjs.evaluate.shipped import load_shipped
    from srjs.optimize import channels, cluster, depth, distill, prune

    manifest = modeldir.read_manifest(parent)
    images = distill.calibration_images(recipe.calib, manifest.scale, manifest.channels)
    teacher = load_shipped(parent)
    teacher.trainable = False
    steps, budget = recipe.steps, recipe.time_budget_s
    if steps is None and budget is None:
        steps = DEFAULT_FINE_TUNE_STEPS
    if recipe.prune_depth is not None:  # first: the blocks it keeps are then cheaper to analyse
        # With channel pruning to follow, one fine-tune (the channels') repairs both cuts and
        # gets the whole bound.
        model, results["prune_depth"] = depth.prune_depth(
            model, teacher, images, ratio=recipe.prune_depth, value_max=manifest.value_max,
            steps=steps, time_budget_s=budget, progress=progress,
            fine_tune=recipe.prune_channels is None)
    if recipe.prune_channels is not None:
        model, results["prune_channels"] = channels.prune_channels(
            model, teacher, images, ratio=recipe.prune_channels, value_max=manifest.value_max,
            steps=steps, time_budget_s=budget, progress=progress)
    if recipe.prune is not None:
        model, results["prune"] = prune.prune(
            model, teacher, images, sparsity=recipe.prune, value_max=manifest.value_max,
            steps=steps, time_budget_s=budget, progress=progress)
    if recipe.cluster is not None:
        # After pruning the clustering pass gets a fifth of the bound: it only moves centroids.
        c_steps = max(1, steps // 5) if recipe.prune is not None and steps else steps
        c_budget = budget / 5 if recipe.prune is not None and budget else budget
        model, results["cluster"] = cluster.cluster(
            model, teacher, images, k=recipe.cluster, value_max=manifest.value_max,
            steps=c_steps, time_budget_s=c_budget, progress=progress)
    return model


def _choose_encodings(weights, recipe, runner, calib_crops, heldout, parent_heldout, scale, vmax, prog):
    """Per-tensor encodings for `recipe.quantize`, and the facts of how they were chosen.

    Work grows with the network's size, not with tensors x network: ranges by each conv's
    own output error (optimize.layerwise), the auto mode's ranking by a first-order harm
    from a few backward passes, and whole-network passes only for the budget bisection and
    the held-out checks. A line with an ETA goes to stderr every few seconds (srjs.progress).
    """
    names = list(weights)
    if recipe.quantize != "auto":
        dtypes = quantize.parse_spec(recipe.quantize, names)
        choices = _calibrate(weights, dtypes, runner, calib_crops, prog)
        encodings = {n: c.encoding for n, c in choices.items()}
        prog.phase("held-out check against tensorflowjs' ranges", 2, "passes")
        encodings, kept = _never_worse_than_tfjs(weights, dtypes, encodings, runner, heldout, parent_heldout,
                                                 scale, vmax, prog.update)
        facts = {"mode": "calibrated", "dtypes": _count(dtypes), "kept": kept}
    else:
        uint8 = {n: c.encoding for n, c in _calibrate(
            weights, {n: "uint8" for n in names}, runner, calib_crops, prog).items()}
        uint16 = quantize.tfjs_choices(weights, {n: "uint16" for n in names})
        for name, values in weights.items():
            runner.assign(name, values)
        prog.phase("rank tensors by first-order harm", HARM_PROJECTIONS, "backward passes")
        harm = layerwise.projected_harm(runner.model, {n: runner.targets[n].variable for n in names},
                                        layerwise.encodings_deltas(weights, uint8), calib_crops.lr,
                                        projections=HARM_PROJECTIONS, progress=prog.update)
        calib_parent = runner.reference
        parent_calib_q = calibration.quality(calib_parent, calib_crops, scale, vmax).psnr_y
        parent_held_q = calibration.quality(parent_heldout, heldout, scale, vmax).psnr_y

        def measure(crops, reference):
            def score(assignment):
                for name, values in weights.items():
                    runner.assign(name, quantize.dequantized(values, assignment[name]))
                quality = calibration.quality(runner.run(crops.lr), crops, scale, vmax, reference)
                prog.update()
                return quality
            return score

        prog.phase("budget search", mixed.max_evaluations(len(names)), "network passes (at most)")
        chosen = mixed.choose({n: int(np.size(v)) for n, v in weights.items()}, uint8, uint16, harm,
                              measure(calib_crops, calib_parent), measure(heldout, parent_heldout),
                              parent_calib_q, parent_held_q, recipe.max_drop_db if recipe.max_drop_db is not None
                              else float("inf"), recipe.min_fidelity_db)
        encodings = chosen.encodings
        facts = {"mode": "auto", "dtypes": _count({n: e.dtype for n, e in encodings.items()}),
                 "backed_off": chosen.backed_off, "evaluations": chosen.evaluations}
    facts["tensors"] = {n: e.dtype for n, e in encodings.items()}
    return encodings, facts


HARM_PROJECTIONS = 12  # random output projections for the first-order harm (relative noise ~sqrt(2/12))


# Whole-network search budget: candidate passes x conv MACs per pass, in GMAC (5,000: a few
# minutes on 2 cores). Within it every tensor's range is picked by the network's output error
# (the most faithful search: on ISR psnr-small, 4,342 GMAC, uint8 reached 53.2 dB fidelity
# where per-conv output error reached 47.4); above it (RealESRGAN_x4plus would need about
# 216,000 GMAC) by each conv's own output error, whose work grows with the network only.
WHOLE_NETWORK_GMAC = 5000.0


def whole_network_gmac(weights, dtypes, model, batch) -> float:
    """GMAC the whole-network range search would spend: one pass per candidate per tensor."""
    from srjs.optimize.channels import conv_macs

    passes = sum(n for n in (len(quantize.candidate_encodings(v, dtypes[k])) for k, v in weights.items()) if n > 1)
    pixels = int(np.prod(batch.shape[:3]))
    return passes * sum(conv_macs(model).values()) * pixels / 1e9


def _calibrate(weights, dtypes, runner, calib_crops, prog) -> dict:
    """Calibrated encodings: by the whole network's output error when that search fits in
    WHOLE_NETWORK_GMAC; else plain convs by their own output error and any other tensor
    (PReLU slopes, custom layers) by the whole network's, with the convs already at their choice."""
    convs = {} if whole_network_gmac(weights, dtypes, runner.model, calib_crops.lr) <= WHOLE_NETWORK_GMAC else (
        layerwise.conv_tensors(runner.model, set(weights)))
    choices = {}
    if convs:
        prog.phase("calibrate ranges (conv output error)", sum(1 + (b is not None) for _, b in convs.values()),
                   "tensors")
        choices = layerwise.calibrate_convs(weights, dtypes, runner.model, calib_crops.lr, prog.update)
    rest = {n: v for n, v in weights.items() if n not in choices}
    if rest:
        for name, choice in choices.items():
            runner.assign(name, quantize.dequantized(weights[name], choice.encoding))
        prog.phase("calibrate ranges (whole network)", len(rest), "tensors")
        choices.update(quantize.calibrate(rest, dtypes, runner.assign, runner.output_error,
                                          lambda name: prog.update()))
    return {n: choices[n] for n in weights}


def _never_worse_than_tfjs(weights, dtypes, encodings, runner, heldout, parent_heldout, scale, vmax,
                          tick=lambda: None):
    """Keep srjs's per-tensor choice unless tensorflowjs' own ranges score better on held-out crops."""
    def fidelity(assignment):
        for name, values in weights.items():
            runner.assign(name, quantize.dequantized(values, assignment[name]))
        db = calibration.quality(runner.run(heldout.lr), heldout, scale, vmax, parent_heldout).fidelity_psnr_y
        tick()
        return db

    theirs = quantize.tfjs_choices(weights, dtypes)
    mine_db, theirs_db = fidelity(encodings), fidelity(theirs)
    if theirs_db > mine_db:
        return theirs, {"choice": "tensorflowjs ranges", "srjs_db": mine_db, "tensorflowjs_db": theirs_db}
    return encodings, {"choice": "srjs calibrated ranges", "srjs_db": mine_db, "tensorflowjs_db": theirs_db}


def _count(dtypes: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dtype in dtypes.values():
        counts[dtype] = counts.get(dtype, 0) + 1
    return dict(sorted(counts.items()))


# --- re-encoding the TF.js exports ---------------------------------------------------------

def _encode_exports(root: Path, encodings: dict[str, Encoding]) -> None:
    """Rewrite tfjs_layers/ and tfjs_graph/ shards with the chosen per-tensor encodings.

    The exports were written float32 from the dequantized model, so each layers tensor is
    exactly on its grid and re-encoding it is lossless. Graph tensors carry other names and
    some are folded (a conv kernel times 0.2): each takes the encoding of the layers tensor it
    equals, or is proportional to (scale and min scaled alike); any other stays float32.
    """
    layers_dir, graph_dir = root / modeldir.TFJS_LAYERS_DIR, root / modeldir.TFJS_GRAPH_DIR
    if not (layers_dir / "model.json").is_file():
        return
    layers = tfjs_weights.read_weights(layers_dir / "model.json")
    _rewrite(layers_dir, {n: encodings.get(n, Encoding()) for n in layers})
    if (graph_dir / "model.json").is_file():
        graph = tfjs_weights.read_weights(graph_dir / "model.json")
        _rewrite(graph_dir, {n: _graph_encoding(v, layers, encodings, n) for n, v in graph.items()})


def _graph_encoding(values: np.ndarray, layers: dict[str, np.ndarray], encodings: dict[str, Encoding],
                    graph_name: str = "") -> Encoding:
    if values.dtype != np.float32:
        return Encoding()
    # Tensors of the layer the graph node is named after first (e.g. body__0__rdb1__conv1/Conv2D/
    # ReadVariableOp): same answer, but a 700-tensor model no longer compares all pairs.
    parts = set(graph_name.split("/"))
    ordered = sorted(layers.items(), key=lambda item: item[0].split("/")[0] not in parts)
    for name, source in ordered:
        enc = encodings.get(name, Encoding())
        if enc.dtype == "float32" or source.shape != values.shape:
            continue
        nonzero = source != 0
        if not nonzero.any() or np.any(values[~nonzero] != 0):
            continue
        ratios = values[nonzero].astype(np.float64) / source[nonzero]
        factor = float(np.median(ratios))
        if factor == 0 or np.max(np.abs(ratios - factor)) > 1e-5 * abs(factor):
            continue
        if enc.dtype == "float16":
            return enc if factor == 1 else Encoding()
        return Encoding(enc.dtype, enc.scale * factor, enc.min * factor)
    return Encoding()


def _rewrite(folder: Path, encodings: dict[str, Encoding]) -> None:
    """Replace the shards of the TF.js model in `folder` with `encodings` (same tensors, same order)."""
    path = folder / "model.json"
    data = json.loads(path.read_text())
    shard_bytes = max((folder / p).stat().st_size for g in data["weightsManifest"] for p in g["paths"])
    values = tfjs_weights.read_weights(path, data)
    for group in data["weightsManifest"]:
        for shard in group["paths"]:
            (folder / shard).unlink()
    tensors = [(name, array, encodings[name]) for name, array in values.items()]
    data["weightsManifest"] = tfjs_weights.write_weights(folder, tensors, shard_bytes=max(shard_bytes, 1))
    path.write_text(strict_json.dumps(data))
