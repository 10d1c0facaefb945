// The package's demo: load an entry's model with TF.js through its own definition module,
// upscale a picked image tile by tile (srjs's seam-free plan), yielding a frame between tiles.
// window.srjsDemoUpscale(job) runs the same code for scripts: job {image_url, entry, backend,
// tile, pad} -> {png (data URL of the result), timings, backend, tiles}.
import entries from './entries.mjs';
import { planTiles } from './tiling.mjs';

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
async function backends() {
  const list = ['webgl', 'wasm', 'cpu'];
  if (navigator.gpu && tf.findBackendFactory('webgpu')) {
    try {
      if (await navigator.gpu.requestAdapter()) list.unshift('webgpu');
    } catch (err) { /* no usable GPU */ }
  }
  return list;
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
  const scale = def.scale;
  const [lo, hi] = def.outputRange;
  const t0 = performance.now();
  await useBackend(backend);
  const model = await loadModel(item, backend);
  const t1 = performance.now();
  const pixels = tf.tidy(() => {
    const x = tf.browser.fromPixels(source).toFloat();
    return def.inputRange[1] === 1 ? x.div(255) : x;
  });
  const [height, width] = pixels.shape;
  const tiles = planTiles(height, width, tile, pad);
  // Warm up at the tile's shape: the first call compiles shaders / allocates, later ones reuse.
  const warm = tf.tidy(() => model.predict(tf.zeros([1, tiles[0].y.size, tiles[0].x.size, 3])));
  await warm.data();
  warm.dispose();
  const t2 = performance.now();
  const outW = width * scale;
  const rgba = new Uint8ClampedArray(outW * height * scale * 4).fill(255);
  for (let i = 0; i < tiles.length; i++) {
    const { y, x } = tiles[i];
    const kept = tf.tidy(() => {
      const win = pixels.slice([y.start, x.start, 0], [y.size, x.size, 3]).expandDims(0);
      let out = model.predict(win);
      out = out.slice([0, (y.keepStart - y.start) * scale, (x.keepStart - x.start) * scale, 0],
        [1, (y.keepStop - y.keepStart) * scale, (x.keepStop - x.keepStart) * scale, 3]);
      out = out.clipByValue(lo, hi);
      return hi === 1 ? out.mul(255) : out;
    });
    const [, kh, kw] = kept.shape;
    const data = await kept.data();
    kept.dispose();
    for (let r = 0; r < kh; r++) {
      let src = r * kw * 3;
      let dst = ((y.keepStart * scale + r) * outW + x.keepStart * scale) * 4;
      for (let c = 0; c < kw; c++, src += 3, dst += 4) {
        rgba[dst] = data[src]; // Uint8ClampedArray rounds half to even, like numpy
        rgba[dst + 1] = data[src + 1];
        rgba[dst + 2] = data[src + 2];
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
  const rows = Object.entries(result.timings).map(([k, v]) => `<tr><th>${k.replace('_ms', '')}</th><td>${v.toFixed(1)} ms</td></tr>`);
  rows.push(`<tr><th>backend</th><td>${tf.getBackend()}${tf.getBackend() === 'wasm' ? ` (${tf.wasm.getThreadsCount()} threads)` : ''}</td></tr>`);
  rows.push(`<tr><th>tiles</th><td>${result.tiles}</td></tr>`);
  $('timings').tBodies[0].innerHTML = rows.join('');
  $('timings').hidden = false;
  return after;
}

function options() {
  return { entry: $('entry').value, backend: $('backend').value, tile: Number($('tile').value), pad: Number($('pad').value) };
}

function defaults() {
  const item = entries.find((e) => e.entry === $('entry').value) || entries[0];
  const { tile, padding } = item.definition.meta;
  $('tile').value = tile ?? DEFAULT_TILE;
  $('pad').value = padding ?? DEFAULT_PAD;
  $('about').textContent = `${item.definition._internals.name}/${item.entry}: x${item.definition.scale}, `
    + `${item.definition.modelType} model` + (padding == null ? ' (seam-free padding not measured; using 8)' : '');
}

async function run(source) {
  $('run').disabled = true;
  $('bar').value = 0;
  $('status').textContent = 'Loading the model and warming up…';
  try {
    const result = await upscale(source, {
      ...options(),
      onProgress: (done, total) => {
        $('bar').value = done / total;
        $('status').textContent = `Tile ${done} of ${total}`;
      },
    });
    $('status').textContent = `Done: ${result.imageData.width}×${result.imageData.height}.`;
    return { result, canvas: show(source, result) };
  } catch (err) {
    $('status').textContent = `Failed: ${err.message}`;
    throw err;
  } finally {
    $('run').disabled = false;
  }
}

let picked = null;
for (const e of entries) $('entry').add(new Option(`${e.entry} (x${e.definition.scale}, ${e.definition.modelType})`, e.entry));
for (const b of await backends()) $('backend').add(new Option(b, b));
$('title').textContent = `${entries[0].definition._internals.name} — super-resolution demo`;
$('entry').onchange = defaults;
defaults();
$('file').onchange = async () => {
  const file = $('file').files[0];
  if (!file) return;
  picked = await createImageBitmap(file);
  $('run').disabled = false;
  $('status').textContent = `${file.name}: ${picked.width}×${picked.height}. Press Upscale.`;
};
$('run').onclick = () => picked && run(picked).catch(() => {});
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
  if (job.tile) $('tile').value = job.tile;
  if (job.pad !== undefined && job.pad !== null) $('pad').value = job.pad;
  picked = img;
  const { result, canvas } = await run(img);
  return { png: canvas.toDataURL('image/png'), timings: result.timings, tiles: result.tiles, backend: tf.getBackend(),
    entry: result.entry, modelType: result.modelType };
};
window.srjsReady = true;
