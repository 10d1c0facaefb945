// The package's demo: load an entry's model with TF.js through its own definition module,
// upscale a picked image tile by tile (srjs's seam-free plan), yielding a frame between tiles.
// Backend 'auto' (the default) times one warm tile on each backend worth trying on this device
// and keeps the fastest; a software-rendered WebGL is never tried when wasm is there.
// window.srjsDemoUpscale(job) runs the same code for scripts: job {image_url, entry, backend,
// tile, pad} -> {png (data URL of the result), timings, backend, tiles}.
import entries from './entries.mjs';
import { planTiles } from './tiling.mjs';
import { upscaleOnnx } from './ort-demo.mjs'; // ONNX entries: onnxruntime-web (its own module)

const tf = window.tf;
const $ = (id) => document.getElementById(id);
const DEFAULT_TILE = 64;
const DEFAULT_PAD = 8; // srjs's default when evaluate has not measured a seam-free padding

tf.wasm.setWasmPaths(new URL('vendor/', import.meta.url).href);
// Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (srjs serve sends COOP/COEP).
// TF.js 4.22's wasm backend caps the count at hardwareConcurrency / 2 (it assumes two hyperthreads
// per core), so this asks for every core and gets half the logical ones (benchmarks/speed.py).
if (window.crossOriginIsolated && navigator.hardwareConcurrency) {
  tf.wasm.setThreadsCount(navigator.hardwareConcurrency);
}

// webgpu only where the browser has an adapter (navigator.gpu alone is not enough: headless
// and blocklisted GPUs expose it and then fail).
let webgpuAdapter = null;
async function backends() {
  const list = ['webgl', 'wasm', 'cpu'];
  if (navigator.gpu && tf.findBackendFactory('webgpu')) {
    try {
      webgpuAdapter = await navigator.gpu.requestAdapter();
      if (webgpuAdapter) list.unshift('webgpu');
    } catch (err) { /* no usable GPU */ }
  }
  return list;
}

// The WebGPU adapter's name when it is a software one (SwiftShader's Vulkan here), else null.
function softwareWebgpu() {
  if (!webgpuAdapter) return 'no WebGPU';
  const info = webgpuAdapter.info || {};
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  return webgpuAdapter.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software/i.test(text)
    ? (text || 'fallback adapter') : null;
}

// The WebGL renderer's name when it is a software rasterizer (no GPU), else null. Software
// WebGL runs TF.js an order of magnitude slower than wasm (esrgan-slim x4, one warm 32 px
// tile in headless Chromium on 2 busy cores: SwiftShader WebGL 1.46 s, WebGPU 11.9 s, wasm 0.11 s).
function softwareWebgl() {
  try {
    const gl = document.createElement('canvas').getContext('webgl2') || document.createElement('canvas').getContext('webgl');
    if (!gl) return 'no WebGL';
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    return /swiftshader|llvmpipe|softpipe|software|microsoft basic render/i.test(renderer) ? renderer : null;
  } catch (err) {
    return 'no WebGL';
  }
}

const WARMUP_SIDE = 32; // input px of the tile each candidate backend is timed on
const chosen = new Map(); // entry -> {backend, why}

// Pick the fastest backend for `item` on this device: every candidate loads the model, runs
// one tile to compile, then one timed tile; cpu is a candidate only when nothing else is.
async function chooseBackend(item, available, onStatus = () => {}) {
  if (chosen.has(item.entry)) return chosen.get(item.entry);
  const skipped = [];
  let candidates = available.filter((b) => b !== 'cpu');
  // A GPU backend on a software rasterizer is tens of times slower than wasm: not even timed.
  // (srjs's tests set srjsAllowSoftwareWebgl to run the timed choice where only SwiftShader exists.)
  const software = { webgl: window.srjsAllowSoftwareWebgl ? null : softwareWebgl(), webgpu: softwareWebgpu() };
  for (const gpu of ['webgpu', 'webgl']) {
    if (candidates.includes(gpu) && software[gpu] && candidates.includes('wasm')) {
      candidates = candidates.filter((b) => b !== gpu);
      skipped.push(`${gpu} skipped: software renderer (${software[gpu]})`);
    }
  }
  if (!candidates.length) candidates = ['cpu'];
  const times = [];
  if (candidates.length > 1) {
    for (const backend of candidates) {
      onStatus(`Choosing a backend: timing ${backend}…`);
      try {
        await useBackend(backend);
        const model = await loadModel(item, backend);
        const x = tf.zeros([1, WARMUP_SIDE, WARMUP_SIDE, item.definition.meta.channels || 3]); // 1 / 3 / 4
        for (let run = 0; run < 2; run++) { // the first run compiles; the second is timed
          const t0 = performance.now();
          const y = model.predict(x);
          await y.data();
          y.dispose();
          if (run === 1) times.push({ backend, ms: performance.now() - t0 });
        }
        x.dispose();
      } catch (err) {
        skipped.push(`${backend} failed: ${err.message}`);
      }
    }
    times.sort((a, b) => a.ms - b.ms);
  }
  const backend = times.length ? times[0].backend : candidates[0];
  for (const { backend: other } of times.slice(1)) { // free the losers' weights (GPU memory)
    const key = `${other}/${item.entry}`;
    if (models.has(key)) {
      models.get(key).dispose();
      models.delete(key);
    }
  }
  const timed = times.map((t) => `${t.backend} ${formatMs(t.ms)}`).join(', ');
  const why = (times.length > 1 ? `fastest on this device (one ${WARMUP_SIDE} px tile: ${timed})`
    : `the only fast backend here${timed ? ` (${timed} per ${WARMUP_SIDE} px tile)` : ''}`)
    + (skipped.length ? `; ${skipped.join('; ')}` : '');
  chosen.set(item.entry, { backend, why });
  return chosen.get(item.entry);
}

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

function formatBytes(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

const models = new Map(); // `${backend}/${entry}` -> loaded model (weights live on a backend)

async function loadModel(item, backend) {
  const key = `${backend}/${item.entry}`;
  if (!models.has(key)) {
    const def = item.definition;
    if (def.setup) await def.setup(tf);
    const load = def.modelType === 'graph' ? tf.loadGraphModel : tf.loadLayersModel;
    models.set(key, await load(def.path));
  }
  return models.get(key);
}

async function useBackend(name) {
  if (tf.getBackend() !== name && !(await tf.setBackend(name))) {
    throw new Error(`backend '${name}' is not available in this browser`);
  }
  await tf.ready();
}

// Upscale `source` (img, bitmap or canvas) -> {imageData, timings, tiles}.
export async function upscale(source, { entry, backend, tile, pad, onProgress = () => {} }) {
  const item = entries.find((e) => e.entry === entry);
  if (!item) throw new Error(`no entry '${entry}' in this package`);
  const def = item.definition;
  if (def.modelType === 'onnx') return upscaleOnnx(source, item, { backend, tile, pad, onProgress });
  const scale = def.scale;
  const [lo, hi] = def.outputRange;
  const t0 = performance.now();
  await useBackend(backend);
  const model = await loadModel(item, backend);
  const t1 = performance.now();
  // Image channels: RGB models take the pixels; an RGBA model takes the image's own alpha too
  // (4 channels from the canvas) and gives it back; a grayscale model goes through its
  // definition's pre/postprocess (luminance in, gray RGB out), as in UpscalerJS.
  const channels = def.meta.channels || 3;
  const pixels = tf.tidy(() => {
    let x = tf.browser.fromPixels(source, channels === 4 ? 4 : 3).toFloat();
    if (channels === 1) x = def.preprocess(x);
    return def.inputRange[1] === 1 ? x.div(255) : x;
  });
  const [height, width] = pixels.shape;
  const tiles = planTiles(height, width, tile, pad);
  // Warm up at the tile's shape: the first call compiles shaders / allocates, later ones reuse.
  const warm = tf.tidy(() => model.predict(tf.zeros([1, tiles[0].y.size, tiles[0].x.size, channels])));
  await warm.data();
  warm.dispose();
  const t2 = performance.now();
  const outW = width * scale;
  const rgba = new Uint8ClampedArray(outW * height * scale * 4).fill(255);
  for (let i = 0; i < tiles.length; i++) {
    const { y, x } = tiles[i];
    const kept = tf.tidy(() => {
      const win = pixels.slice([y.start, x.start, 0], [y.size, x.size, channels]).expandDims(0);
      let out = model.predict(win);
      if (channels === 1) out = def.postprocess(out);
      const outChannels = channels === 4 ? 4 : 3;
      out = out.slice([0, (y.keepStart - y.start) * scale, (x.keepStart - x.start) * scale, 0],
        [1, (y.keepStop - y.keepStart) * scale, (x.keepStop - x.keepStart) * scale, outChannels]);
      out = out.clipByValue(lo, hi);
      return hi === 1 ? out.mul(255) : out;
    });
    const [, kh, kw, kc] = kept.shape;
    const data = await kept.data();
    kept.dispose();
    for (let r = 0; r < kh; r++) {
      let src = r * kw * kc;
      let dst = ((y.keepStart * scale + r) * outW + x.keepStart * scale) * 4;
      for (let c = 0; c < kw; c++, src += kc, dst += 4) {
        rgba[dst] = data[src]; // Uint8ClampedArray rounds half to even, like numpy
        rgba[dst + 1] = data[src + 1];
        rgba[dst + 2] = data[src + 2];
        if (kc === 4) rgba[dst + 3] = data[src + 3]; // an RGBA model's own alpha
      }
    }
    onProgress(i + 1, tiles.length);
    await tf.nextFrame(); // let the page paint and stay responsive between tiles
  }
  pixels.dispose();
  const t3 = performance.now();
  return {
    imageData: new ImageData(rgba, outW, height * scale),
    entry: item.entry,
    modelType: def.modelType,
    tiles: tiles.length,
    timings: { load_ms: t1 - t0, warmup_ms: t2 - t1, upscale_ms: t3 - t2, per_tile_ms: (t3 - t2) / tiles.length },
  };
}

const LABELS = { load_ms: 'Model load', warmup_ms: 'Warm-up (compiles the tile shape)', upscale_ms: 'Upscale',
  per_tile_ms: 'Per tile' };

function show(source, result) {
  const { width, height } = result.imageData;
  const after = $('after');
  const before = $('before');
  after.width = before.width = width;
  after.height = before.height = height;
  after.getContext('2d').putImageData(result.imageData, 0, 0);
  const ctx = before.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, width, height);
  $('viewer').hidden = false;
  const body = $('timings').tBodies[0];
  body.textContent = '';
  const row = (label, value) => {
    const tr = body.insertRow();
    tr.appendChild(document.createElement('th')).textContent = label;
    tr.insertCell().textContent = value;
  };
  for (const [key, ms] of Object.entries(result.timings)) row(LABELS[key] || key, formatMs(ms));
  const backend = result.backend || tf.getBackend();
  const threads = backend === 'wasm' ? tf.wasm.getThreadsCount() : 0;
  row('Backend', backend + (threads ? ` (${threads} thread${threads === 1 ? '' : 's'})` : '')
    + (result.why ? ` — ${result.why}` : ''));
  row('Tiles', String(result.tiles));
  $('timings').hidden = false;
  return after;
}

// The download link: the result canvas as a PNG named after the picked file.
async function offerDownload(canvas, name) {
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  const link = $('download');
  if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.hidden = false;
}

function options() {
  return { entry: $('entry').value, backend: $('backend').value, tile: Number($('tile').value), pad: Number($('pad').value) };
}

let available = [];

function defaults() {
  const item = entries.find((e) => e.entry === $('entry').value) || entries[0];
  const { tile, padding } = item.definition.meta;
  $('tile').value = tile ?? DEFAULT_TILE;
  $('pad').value = padding ?? DEFAULT_PAD;
  $('about').textContent = `${item.definition._internals.name}/${item.entry}: x${item.definition.scale}, `
    + `${item.definition.modelType} model` + (padding == null ? ` (seam-free padding not measured; using ${DEFAULT_PAD})` : '');
}

// "esrgan-slim-x4-uint8 (x4, 197 kB gzip, 28.55 dB)": what to choose a model by.
function describe(e) {
  const about = e.about || {};
  const parts = [`x${e.definition.scale}`];
  if (about.gzip_bytes) parts.push(`${formatBytes(about.gzip_bytes)} gzip`);
  if (typeof about.psnr_y === 'number') parts.push(`${about.psnr_y.toFixed(2)} dB Y-PSNR`);
  if (e.definition.modelType === 'graph') parts.push('graph');
  return `${e.entry} (${parts.join(', ')})`;
}

async function run(source, name = 'image') {
  $('run').disabled = true;
  $('bar').value = 0;
  $('download').hidden = true;
  try {
    const opts = options();
    let why = '';
    const onnx = entries.find((e) => e.entry === opts.entry).definition.modelType === 'onnx';
    if (opts.backend === 'auto' && !onnx) { // an ONNX entry's runner chooses its own provider
      const item = entries.find((e) => e.entry === opts.entry);
      ({ backend: opts.backend, why } = await chooseBackend(item, available, (text) => { $('status').textContent = text; }));
    } else {
      why = 'chosen by hand';
    }
    $('status').textContent = `Loading the model on ${opts.backend} and warming up…`;
    const result = await upscale(source, {
      ...opts,
      onProgress: (done, total) => {
        $('bar').value = done / total;
        $('status').textContent = `Tile ${done} of ${total}`;
      },
    });
    result.why = result.why || why;
    $('status').textContent = `Done: ${result.imageData.width}×${result.imageData.height}.`;
    const canvas = show(source, result);
    const scale = result.imageData.width / (source.width || 1);
    await offerDownload(canvas, `${name.replace(/\.[^.]*$/, '')}-x${Math.round(scale)}.png`);
    return { result, canvas };
  } catch (err) {
    $('status').textContent = `Failed: ${err.message}`;
    throw err;
  } finally {
    $('run').disabled = false;
  }
}

let picked = null;
let pickedName = 'image';
for (const e of entries) $('entry').add(new Option(describe(e), e.entry));
available = await backends();
$('backend').add(new Option('auto (fastest here)', 'auto'));
for (const b of available) $('backend').add(new Option(b, b));
$('title').textContent = `${entries[0].definition._internals.name} — super-resolution demo`;
$('entry').onchange = defaults;
defaults();
$('file').onchange = async () => {
  const file = $('file').files[0];
  if (!file) return;
  picked = await createImageBitmap(file);
  pickedName = file.name;
  $('run').disabled = false;
  $('status').textContent = `${file.name}: ${picked.width}×${picked.height}. Press Upscale.`;
};
$('run').onclick = () => picked && run(picked, pickedName).catch(() => {});
$('slider').oninput = () => {
  const at = Number($('slider').value);
  $('before').style.clipPath = `inset(0 ${100 - at}% 0 0)`;
  $('divider').style.left = `${at}%`;
};

// Scripted use (srjs's tests): the same path as the button, with an image URL.
window.srjsDemoUpscale = async (job) => {
  const img = new Image();
  img.src = job.image_url;
  await img.decode();
  if (job.entry) {
    if (!entries.some((e) => e.entry === job.entry)) throw new Error(`no entry '${job.entry}' in this package`);
    $('entry').value = job.entry;
  }
  defaults();
  if (job.backend) $('backend').value = job.backend;
  window.srjsAllowSoftwareWebgl = Boolean(job.allow_software_webgl);
  if (job.tile) $('tile').value = job.tile;
  if (job.pad !== undefined && job.pad !== null) $('pad').value = job.pad;
  picked = img;
  const { result, canvas } = await run(img, 'image.png');
  return { png: canvas.toDataURL('image/png'), timings: result.timings, tiles: result.tiles, backend: tf.getBackend(),
    entry: result.entry, modelType: result.modelType, why: result.why, runtime: result.backend || 'tfjs' };
};
window.srjsReady = true;
