"""Write a model dir (DESIGN.md layout) from a tf_keras model: Keras, SavedModel, TF.js."""
from __future__ import annotations

from pathlib import Path

from srjs import modeldir
from srjs.modeldir import Manifest


def write_model_dir(model, out: Path, manifest: Manifest, *, export_tfjs: bool = True,
                    tfjs_options=None, step=lambda name: None) -> Manifest:
    """Atomically write `out` with every format of `model` and its manifest.

    step(name) is called before each format is written (progress reporting).
    """
    with modeldir.atomic_dir(out) as tmp:
        step("keras")
        save_keras(model, tmp / modeldir.KERAS_FILE)
        step("saved_model")
        save_serving_model(model, tmp / modeldir.SAVED_MODEL_DIR)
        if export_tfjs:
            from srjs.convert import export
            from srjs.tf import quiet_fds

            options = tfjs_options or export.ExportOptions()
            with quiet_fds():  # grappler logs every optimisation pass to fd 2
                step("tfjs_layers")
                export.export_layers(model, tmp / modeldir.TFJS_LAYERS_DIR, manifest.scale, options)
                step("tfjs_graph")
                export.export_graph(model, tmp / modeldir.TFJS_GRAPH_DIR, options)
        step("manifest")
        modeldir.write_manifest(tmp, manifest)
    return manifest


def save_keras(model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, save_format="keras")


def save_serving_model(model, path: Path) -> None:
    """SavedModel whose serving_default maps float32 [1,H,W,3] -> [1,H*s,W*s,3], H and W free.

    Saved through Keras so it also carries Keras metadata: `srjs convert saved_model/` (or
    keras.models.load_model) gets the full model back.
    """
    from srjs.tf import tf

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="input")])
    def serve(input):  # noqa: A002 - the argument name becomes the signature's input name
        return {"output": model(input, training=False)}

    model.save(str(path), save_format="tf", signatures={"serving_default": serve}, include_optimizer=False)
