"""Custom Keras layers shared by the architectures, and the channel order they imply.

Each layer is a plain registered class with `get_config` (never a Lambda: tfjs-layers cannot
load Lambda layers), registered under its bare class name so saved configs say
`"class_name": "PixelShuffle"`, the name UpscalerJS and idealo ISR use.

Channel order: PyTorch's pixel_shuffle / pixel_unshuffle number the packed channels
`c*r*r + i*r + j`, TensorFlow's depth_to_space / space_to_depth (NHWC) number them
`(i*r + j)*C + c`. The graphs here stay on the TensorFlow ops (TF.js has them natively, and
UpscalerJS's PixelShuffle{s}x layer is tf.depthToSpace); converted PyTorch weights are permuted
with `torch_to_tf_depth_order` instead. (PixelUnshuffle keeps space_to_depth's order but is
built from reshape/transpose, since TF.js lacks SpaceToDepth.)
"""
from __future__ import annotations

import numpy as np

from srjs.tf import keras, tf


class PixelShuffle(keras.layers.Layer):
    """depth_to_space: [N, H, W, C*s*s] -> [N, H*s, W*s, C] (TensorFlow channel order)."""

    def __init__(self, scale: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.scale, data_format="NHWC")

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        s = self.scale
        return tf.TensorShape([n, h and h * s, w and w * s, c and c // (s * s)])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class PixelUnshuffle(keras.layers.Layer):
    """space_to_depth: [N, H*s, W*s, C] -> [N, H, W, C*s*s] (TensorFlow channel order).

    Written as rank-4 reshape / transpose / reshape rather than tf.nn.space_to_depth: TF.js
    has no SpaceToDepth op, so a graph model using it would not convert.
    """

    def __init__(self, scale: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, inputs):
        s = self.scale
        dynamic = tf.shape(inputs)
        n, h, w = dynamic[0], dynamic[1], dynamic[2]
        c = inputs.shape[-1] if inputs.shape[-1] is not None else dynamic[3]
        # [N*H/s, i, W/s, j*C + c] -> [N*H/s, W/s, i, j*C + c]: channel (i*s + j)*C + c.
        x = tf.reshape(inputs, [n * (h // s), s, w // s, s * c])
        x = tf.transpose(x, [0, 2, 1, 3])
        return tf.reshape(x, [n, h // s, w // s, s * s * c])

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        s = self.scale
        return tf.TensorShape([n, h and h // s, w and w // s, c and c * s * s])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class MultiplyBeta(keras.layers.Layer):
    """x * beta: the residual scaling of ESRGAN's dense blocks (ISR and UpscalerJS name)."""

    def __init__(self, beta: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.beta = float(beta)

    def call(self, inputs):
        return inputs * self.beta

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


class ReflectPad(keras.layers.Layer):
    """Reflect-pad H and W by `pad`, plus the bottom/right pixels that make them multiples of
    `multiple` (Real-CUGAN's input padding): [N, H, W, C] -> [N, H', W', C].

    tf.pad REFLECT is MirrorPad in TF.js (layers: tf.mirrorPad), which no Keras layer offers.
    """

    def __init__(self, pad: int = 0, multiple: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.pad, self.multiple = int(pad), int(multiple)

    def call(self, inputs):
        shape = tf.shape(inputs)
        m, p = self.multiple, self.pad
        extra_h = (shape[1] + m - 1) // m * m - shape[1]
        extra_w = (shape[2] + m - 1) // m * m - shape[2]
        paddings = tf.stack([[0, 0], [p, p + extra_h], [p, p + extra_w], [0, 0]])
        return tf.pad(inputs, paddings, mode="REFLECT")

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        m, p = self.multiple, self.pad
        return tf.TensorShape([n, h and -(-h // m) * m + 2 * p, w and -(-w // m) * m + 2 * p, c])

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "multiple": self.multiple}


class CropToInput(keras.layers.Layer):
    """[x, image] -> x[:, :H*scale, :W*scale] for the image's H, W: drops what ReflectPad's
    rounding up to a multiple added, once upscaled."""

    def __init__(self, scale: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, inputs):
        x, image = inputs
        shape = tf.shape(image)
        return x[:, : shape[1] * self.scale, : shape[2] * self.scale]  # keeps the static channel count

    def compute_output_shape(self, input_shape):
        x, image = (tf.TensorShape(s).as_list() for s in input_shape)
        s = self.scale
        return tf.TensorShape([x[0], image[1] and image[1] * s, image[2] and image[2] * s, x[3]])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _fixed_scale_shuffle(scale: int) -> type:
    """UpscalerJS registers one PixelShuffle class per scale (`PixelShuffle4x`); mirror that."""

    def __init__(self, scale: int = scale, **kwargs):
        PixelShuffle.__init__(self, scale=scale, **kwargs)

    return type(f"PixelShuffle{scale}x", (PixelShuffle,), {"__init__": __init__})


CUSTOM_LAYERS: dict[str, type] = {
    cls.__name__: cls for cls in (PixelShuffle, PixelUnshuffle, MultiplyBeta, ReflectPad, CropToInput)
}
SHUFFLE_ALIASES: dict[str, type] = {
    f"PixelShuffle{s}x": _fixed_scale_shuffle(s) for s in (2, 3, 4, 8)
}

# Bare names (no 'package>' prefix, unlike register_keras_serializable) so configs written by
# srjs are loadable by tfjs-layers with the same class names UpscalerJS registers.
keras.utils.get_custom_objects().update(CUSTOM_LAYERS)


def torch_to_tf_depth_order(channels: int, scale: int) -> np.ndarray:
    """Index array p: TensorFlow packed channel k holds PyTorch packed channel p[k].

    `channels` is the packed count C*scale*scale. Use it on the output axis of the conv feeding
    a PixelShuffle and on the input axis of the conv after a PixelUnshuffle.
    """
    if channels % (scale * scale):
        raise ValueError(f"{channels} channels cannot be packed by a {scale}x{scale} shuffle")
    c = channels // (scale * scale)
    i, j, cc = np.meshgrid(np.arange(scale), np.arange(scale), np.arange(c), indexing="ij")
    return (cc * scale * scale + i * scale + j).reshape(-1)
