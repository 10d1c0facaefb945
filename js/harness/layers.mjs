// Custom layers a srjs or UpscalerJS layers model may name, registered on a given tf namespace
// (Node's @tensorflow/tfjs, the browser UMD, or UpscalerJS's tfjs 4.11 all pass their own).
//
// UpscalerJS's esrgan definition registers MultiplyBeta (beta fixed at 0.2) and
// PixelShuffle{scale}x (tf.depthToSpace with a fixed scale). srjs writes the same class names
// with `scale`/`beta` in the config, plus a generic PixelShuffle and PixelUnshuffle; reading
// those config keys, with UpscalerJS's constants as defaults, serves both.

const registered = new WeakSet();

function firstInput(inputs) {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

function baseConfig(config) {
  // Layer's constructor only needs the standard keys; ours live on the instance.
  const { scale, beta, ...rest } = config || {};
  return rest;
}

export function registerCustomLayers(tf) {
  if (registered.has(tf)) return;
  const Layer = tf.layers.Layer;

  class MultiplyBeta extends Layer {
    constructor(config) {
      super(baseConfig(config));
      this.beta = config && config.beta !== undefined ? config.beta : 0.2;
    }
    call(inputs) {
      return tf.mul(firstInput(inputs), this.beta);
    }
    getConfig() {
      return { ...super.getConfig(), beta: this.beta };
    }
  }
  MultiplyBeta.className = 'MultiplyBeta';

  const pixelShuffle = (className, defaultScale) => {
    const cls = class extends Layer {
      constructor(config) {
        super(baseConfig(config));
        this.scale = config && config.scale !== undefined ? config.scale : defaultScale;
        if (!this.scale) throw new Error(`${className} needs a 'scale' in its config`);
      }
      computeOutputShape(inputShape) {
        const [b, h, w, c] = inputShape;
        const s = this.scale;
        return [b, h == null ? null : h * s, w == null ? null : w * s, c == null ? null : c / (s * s)];
      }
      call(inputs) {
        return tf.depthToSpace(firstInput(inputs), this.scale, 'NHWC');
      }
      getConfig() {
        return { ...super.getConfig(), scale: this.scale };
      }
    };
    cls.className = className;
    return cls;
  };

  // tf.spaceToDepth does not exist in TF.js; this reshape/transpose is TF's
  // space_to_depth channel order: out channel = (dy * s + dx) * C + c.
  class PixelUnshuffle extends Layer {
    constructor(config) {
      super(baseConfig(config));
      this.scale = config && config.scale;
      if (!this.scale) throw new Error("PixelUnshuffle needs a 'scale' in its config");
    }
    computeOutputShape(inputShape) {
      const [b, h, w, c] = inputShape;
      const s = this.scale;
      return [b, h == null ? null : h / s, w == null ? null : w / s, c == null ? null : c * s * s];
    }
    call(inputs) {
      return tf.tidy(() => {
        const x = firstInput(inputs);
        const [b, h, w, c] = x.shape;
        const s = this.scale;
        const split = tf.reshape(x, [b, h / s, s, w / s, s, c]);
        return tf.reshape(tf.transpose(split, [0, 1, 3, 2, 4, 5]), [b, h / s, w / s, s * s * c]);
      });
    }
    getConfig() {
      return { ...super.getConfig(), scale: this.scale };
    }
  }
  PixelUnshuffle.className = 'PixelUnshuffle';

  // Real-CUGAN's input padding: reflect by `pad`, plus bottom/right up to a multiple of `multiple`.
  class ReflectPad extends Layer {
    constructor(config) {
      const { pad, multiple, ...rest } = config || {};
      super(rest);
      this.pad = pad || 0;
      this.multiple = multiple || 1;
    }
    computeOutputShape(inputShape) {
      const [b, h, w, c] = inputShape;
      const grow = (n) => (n == null ? null : Math.ceil(n / this.multiple) * this.multiple + 2 * this.pad);
      return [b, grow(h), grow(w), c];
    }
    call(inputs) {
      const x = firstInput(inputs);
      const [, h, w] = x.shape;
      const m = this.multiple;
      const p = this.pad;
      const extra = (n) => Math.ceil(n / m) * m - n;
      return tf.mirrorPad(x, [[0, 0], [p, p + extra(h)], [p, p + extra(w)], [0, 0]], 'reflect');
    }
    getConfig() {
      return { ...super.getConfig(), pad: this.pad, multiple: this.multiple };
    }
  }
  ReflectPad.className = 'ReflectPad';

  // [x, image] -> x cropped to the image's H, W times `scale` (undoes ReflectPad's rounding up).
  class CropToInput extends Layer {
    constructor(config) {
      super(baseConfig(config));
      this.scale = config && config.scale !== undefined ? config.scale : 1;
    }
    computeOutputShape(inputShape) {
      const [x, image] = inputShape;
      const s = this.scale;
      return [x[0], image[1] == null ? null : image[1] * s, image[2] == null ? null : image[2] * s, x[3]];
    }
    call(inputs) {
      const [x, image] = inputs;
      const s = this.scale;
      return tf.slice(x, [0, 0, 0, 0], [-1, image.shape[1] * s, image.shape[2] * s, -1]);
    }
    getConfig() {
      return { ...super.getConfig(), scale: this.scale };
    }
  }
  CropToInput.className = 'CropToInput';

  const classes = [
    MultiplyBeta,
    PixelUnshuffle,
    ReflectPad,
    CropToInput,
    pixelShuffle('PixelShuffle', undefined),
    ...[2, 3, 4, 8].map((s) => pixelShuffle(`PixelShuffle${s}x`, s)),
  ];
  for (const cls of classes) tf.serialization.registerClass(cls);
  registerGelu(tf);
  registered.add(tf);
}

// tfjs-layers knows the 'gelu' activation (exact, erf) only from 4.14 on; UpscalerJS 1.0.0 runs
// tfjs 4.11. Where it is missing, register the same formula under the same name (PLKSR's mixer).
function registerGelu(tf) {
  if (tf.serialization.SerializationMap.getMap().classNameMap.gelu) return;
  class Gelu extends tf.serialization.Serializable {
    apply(x) {
      return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
    }
    getConfig() {
      return {};
    }
  }
  Gelu.className = 'gelu';
  tf.serialization.registerClass(Gelu);
}
