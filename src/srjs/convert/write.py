"""Write a model dir (DESIGN.md layout) from a tf_keras model: Keras, SavedModel, TF.js."""
from __future__ import annotations

from pathlib import Path

from srjs import modeldir
from srjs.modeldir import Manifest


def write_model_dir(model, out: Path, manifest: Manifest, *, export_tfjs: bool = True,
                    tfjs_options=None, step=lambda name: None, finish=lambda tmp: None) -> Manifest:
    """Atomically write `out` with every format of `model` and its manifest.

    step(name) is called before each format is written (progress reporting); finish(tmp) runs
    on the temporary folder once every format is written, before the manifest indexes the
    files (optimize re-encodes the TF.js shards there).
    """
    from srjs.convert import export
    from srjs.tf import quiet_fds

    with modeldir.atomic_dir(out) as tmp, modeldir.FileIndex(tmp) as index:
        # each format is indexed (sha256, gzip size) in the background while the next one is written
        step("keras")
        save_keras(model, tmp / modeldir.KERAS_FILE)
        index.start(tmp / modeldir.KERAS_FILE)
        step("saved_model")
        export.export_saved_model(model, tmp / modeldir.SAVED_MODEL_DIR)
        index.start(tmp / modeldir.SAVED_MODEL_DIR)
        if export_tfjs:

            options = tfjs_options or export.ExportOptions()
            with quiet_fds():  # grappler logs every optimisation pass to fd 2
                step("tfjs_layers")
                export.export_layers(model, tmp / modeldir.TFJS_LAYERS_DIR, manifest.scale, options)
                index.start(tmp / modeldir.TFJS_LAYERS_DIR)
                step("tfjs_graph")
                export.export_graph(model, tmp / modeldir.TFJS_GRAPH_DIR, options)
                index.start(tmp / modeldir.TFJS_GRAPH_DIR)
        finish(tmp)  # files it rewrites are indexed again (their size or mtime changed)
        step("manifest")
        manifest.cost = model_cost(model)
        modeldir.write_manifest(tmp, manifest, index)
    return manifest


def model_cost(model) -> dict:
    """{'params': weights in the model, 'conv_macs_per_pixel': conv multiply-accumulates per
    input pixel} (the fixed resize convs of ncnn x2/x3 included: they run too)."""
    from srjs.optimize.channels import conv_macs, params

    return {"params": params(model), "conv_macs_per_pixel": round(sum(conv_macs(model).values()), 1)}


def save_keras(model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, save_format="keras")
