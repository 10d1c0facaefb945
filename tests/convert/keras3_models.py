"""Build small Keras 3 models and export them through tensorflowjs 4.22, the way users do.

Run in a subprocess with TF_USE_LEGACY_KERAS=0 (srjs itself pins Keras 2 per process):

    python keras3_models.py OUT_DIR

Writes OUT_DIR/input.npy and, per model, OUT_DIR/<model>/expected.npy plus two exports:
  save_keras_model/  tensorflowjs.converters.save_keras_model(model)  (weights 'c1/kernel')
  keras_keras3/      model.save('.keras') -> tensorflowjs_converter --input_format=keras_keras3
                     (weights named by Keras 3's file layout, 'layers/conv2d/vars/0')
Models: 'net' (convs + Concatenate + Add), 'lambdas' (Lambda x*0.2 and a depth_to_space
Lambda; save_keras_model only, as Keras 3 .keras files refuse to load lambdas unsafely).
"""
import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")

import numpy as np  # noqa: E402
import keras  # noqa: E402  (Keras 3)
import tensorflow as tf  # noqa: E402
from tensorflowjs.converters import converter, save_keras_model  # noqa: E402


def net() -> keras.Model:
    inp = keras.Input((None, None, 3), name="LR")
    a = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    b = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(a)
    c = keras.layers.Concatenate(name="cat")([a, b])
    d = keras.layers.Conv2D(8, 1, name="c3")(c)
    e = keras.layers.Add(name="add")([a, d])
    f = keras.layers.PReLU(shared_axes=[1, 2], name="act")(e)
    return keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same", name="SR")(f), name="k3net")


def lambdas() -> keras.Model:
    inp = keras.Input((None, None, 3), name="LR")
    a = keras.layers.Conv2D(12, 3, padding="same", name="pre")(inp)
    b = keras.layers.Lambda(lambda x: x * 0.2, name="scale_res")(a)
    c = keras.layers.Lambda(lambda x: tf.nn.depth_to_space(x, 2), name="shuffle")(b)
    return keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same", name="SR")(c), name="k3lam")


def main(out: Path) -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
    np.save(out / "input.npy", x)
    for name, build in (("net", net), ("lambdas", lambdas)):
        model = build()
        model.set_weights([np.random.default_rng(i).normal(0, 0.3, w.shape).astype("float32")
                           for i, w in enumerate(model.get_weights())])
        root = out / name
        root.mkdir(parents=True)
        np.save(root / "expected.npy", np.asarray(model(x)))
        save_keras_model(model, str(root / "save_keras_model"))
        if name == "net":
            staging = root / "staging"  # the converter unzips the .keras beside itself
            staging.mkdir()
            model.save(staging / "model.keras")
            converter.dispatch_keras_keras_to_tfjs_layers_model_conversion(
                str(staging / "model.keras"), str(root / "keras_keras3"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
