// UpscalerJS hands a model RGB pixels in [0, 255] and takes RGB back. Models with other image
// channels get adapters that follow srjs's Python rule (src/srjs/image_channels.py): grayscale
// (1) gets the BT.601 luminance and its output repeated to RGB; RGBA (4) gets an opaque alpha
// (255: UpscalerJS decodes images to RGB) and gives back its colour channels. RGB (3): none.
// getTf() returns the tf that UpscalerJS passed to the definition's setup(tf).
export function channelAdapters(getTf, channels) {
  if (channels === 1) {
    return {
      preprocess: (t) => getTf().sum(getTf().mul(getTf().cast(t, 'float32'),
        getTf().tensor1d([0.299, 0.587, 0.114])), -1, true),
      postprocess: (t) => getTf().tile(t, [1, 1, 1, 3]),
    };
  }
  if (channels === 4) {
    return {
      preprocess: (t) => getTf().concat([getTf().cast(t, 'float32'),
        getTf().fill([...t.shape.slice(0, -1), 1], 255, 'float32')], -1),
      postprocess: (t) => getTf().slice(t, [0, 0, 0, 0], [-1, -1, -1, 3]),
    };
  }
  return {};
}
