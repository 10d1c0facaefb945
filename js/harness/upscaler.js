// UpscalerJS page: window.srjsUpscale(job) upscales one image with `new Upscaler({model})` the
// way a user's page does, and PUTs the float32 HxWx3 result tensor (clipped to [0, 255] by
// UpscalerJS, not rounded) back as .npy.
// job: {model_url | definition_url | definition_script + definition_global, scale, input_range, output_range, image_url, patch_size, padding,
//       backend (null: tfjs's default), out_url, channels (the model's image channels; default 3)}
import { encodeNpy } from './npy.mjs';
import { registerCustomLayers } from './layers.mjs';
import { channelAdapters } from './channels.mjs';
import { fetchWhole, openRequests, putBytes } from './http.mjs';
import { loadScript } from './script.mjs';

const tf = window.tf;
// UpscalerJS loads through tf.loadLayersModel(url), i.e. the platform's fetch. Served over
// srjs's HTTP/1.1 server, 7+ large shards would deadlock there (see http.mjs); a user's CDN
// speaks HTTP/2 and never hits that, so reading bodies whole changes transport, not results.
tf.env().platform.fetch = fetchWhole;

window.srjsUpscale = async (job) => {
  if (job.backend && !(await tf.setBackend(job.backend))) {
    throw new Error(`backend '${job.backend}' is unavailable (in use: ${tf.getBackend()})`);
  }
  await tf.ready();
  // definition_url: a model package's own ESM definition module (srjs package output), used
  // as an UpscalerJS user imports it; definition_script + definition_global: its UMD build
  // added as a <script> tag; otherwise a definition built here from model_url.
  let tfOfUpscaler;
  const model = job.definition_url ? (await import(job.definition_url)).default
    : job.definition_script ? await loadScript(job.definition_script, job.definition_global) : {
    path: job.model_url,
    scale: job.scale,
    modelType: 'layers',
    inputRange: job.input_range,
    outputRange: job.output_range,
    // UpscalerJS model packages register their custom layers in setup(tf); so does this.
    setup: (tfArg) => { tfOfUpscaler = tfArg; registerCustomLayers(tfArg); },
    // grayscale / RGBA models: the same adapters srjs's package definitions carry
    ...channelAdapters(() => tfOfUpscaler, job.channels || 3),
  };
  const upscaler = new window.Upscaler({ model });
  const options = { output: 'tensor' };
  if (job.patch_size) {
    options.patchSize = job.patch_size;
    options.padding = job.padding || 0;
  }
  const t0 = performance.now();
  const tensor = await upscaler.execute(job.image_url, options);
  const data = await tensor.data();
  const ms = performance.now() - t0;
  const shape = tensor.shape;
  tensor.dispose();
  await upscaler.dispose();
  await putBytes(job.out_url, encodeNpy(data, shape));
  return { shape, ms, backend: tf.getBackend(), tfjs: tf.version.tfjs };
};
window.srjsOpenRequests = openRequests;
window.srjsReady = true;
