// Speed page: window.srjsSpeed(job) times `new Upscaler({model}).execute(image, options)` end to end
// (image decode, tiling, every patch, stitching, reading the result back) the way a page runs it.
// job: {definition_url (ESM module, default export) | definition_script + definition_global (UMD),
//       path (optional: a self-hosted model.json URL, as UpscalerJS's docs say to set it),
//       backend ('wasm' | 'webgl' | 'cpu'), threads (wasm: 0 = TF.js's default), image_url,
//       patch_size (null: whole image), padding, runs (timed runs after the first)}
// Returns {first_ms, runs_ms, backend, threads, tfjs, shape, checksum}.
import { fetchWhole } from './http.mjs';
import { loadScript } from './script.mjs';

const tf = window.tf;
// Whole bodies: 7+ large shards deadlock on srjs's HTTP/1.1 server (see http.mjs); a CDN speaks HTTP/2.
tf.env().platform.fetch = fetchWhole;
tf.wasm.setWasmPaths(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).href);

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`GET ${url} failed`));
    img.src = url;
  });
}

window.srjsSpeed = async (job) => {
  // The thread count is fixed when the wasm backend starts: set it first (a fresh page per job).
  // TF.js 4.22's wasm caps threads at navigator.hardwareConcurrency / 2 (it assumes two
  // hyperthreads per core), so on a machine without SMT asking for every core needs the page
  // to report twice its cores before the backend starts; job.report_cores does that.
  if (job.report_cores) {
    Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => job.report_cores });
  }
  if (job.backend === 'wasm' && job.threads) tf.wasm.setThreadsCount(job.threads);
  if (!(await tf.setBackend(job.backend))) throw new Error(`backend '${job.backend}' is unavailable`);
  await tf.ready();
  const definition = job.definition_url ? (await import(job.definition_url)).default
    : await loadScript(job.definition_script, job.definition_global);
  const model = job.path ? { ...definition, path: job.path } : definition;
  const upscaler = new window.Upscaler({ model });
  const image = await loadImage(job.image_url);
  const options = { output: 'tensor' };
  if (job.patch_size) {
    options.patchSize = job.patch_size;
    options.padding = job.padding || 0;
  }
  const once = async () => {
    const t0 = performance.now();
    const tensor = await upscaler.execute(image, options);
    const data = await tensor.data();
    const ms = performance.now() - t0;
    const shape = tensor.shape;
    tensor.dispose();
    let sum = 0;
    for (let i = 0; i < data.length; i += 97) sum += data[i];
    return { ms, shape, checksum: sum };
  };
  const first = await once();
  const runs = [];
  for (let i = 0; i < (job.runs ?? 3); i++) runs.push((await once()).ms);
  await upscaler.dispose();
  const threads = job.backend === 'wasm' && tf.wasm.getThreadsCount ? tf.wasm.getThreadsCount() : null;
  return { first_ms: first.ms, runs_ms: runs, backend: tf.getBackend(), threads, tfjs: tf.version.tfjs,
           shape: first.shape, checksum: first.checksum, cross_origin_isolated: globalThis.crossOriginIsolated,
           cores: navigator.hardwareConcurrency };
};
window.srjsReady = true;
