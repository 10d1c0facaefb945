// srjs's onnxruntime-web runner for a package's ONNX entries (dist/ort/srjs-ort.mjs).
//
//   import * as ort from 'onnxruntime-web/webgpu';   // the WebGPU build also runs wasm
//   import definition from 'my-package/esrgan-x4-onnx';
//   import { createUpscaler } from 'my-package/ort';
//   const up = await createUpscaler(ort, definition);          // provider 'auto'
//   const { imageData } = await up.upscale(img, { tile: 64, pad: 8, onProgress: (done, total) => {} });
//
// Provider 'auto': WebGPU when the browser returns an adapter, else wasm with threads when the
// page is cross-origin isolated (SharedArrayBuffer), else wasm with one thread. On WebGPU the
// float16 file runs when the adapter has 'shader-f16' and the export computes in float16
// (definition.float16Activations); everywhere else the float32 file does.
// Tiling is srjs's seam-free plan (tiling.mjs, the same as the TF.js demo and `srjs upscale`):
// equal windows of tile + 2*pad, the last shifted back to the edge, each window's core kept.
// The ONNX graph takes "input" float32 NHWC in definition.inputRange, gives "output" the same.
import { planTiles } from './tiling.mjs';

async function webgpuAdapter() {
  if (typeof navigator === 'undefined' || !navigator.gpu) return null;
  try {
    return await navigator.gpu.requestAdapter();
  } catch (err) {
    return null; // blocklisted or headless GPUs expose navigator.gpu and then fail
  }
}

// {provider, threads, float16, why}: what `createUpscaler` runs on, and why.
export async function chooseProvider(definition, { provider = 'auto', threads } = {}) {
  const isolated = typeof crossOriginIsolated === 'boolean' && crossOriginIsolated;
  const cores = (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 1;
  const wasmThreads = threads || (isolated ? cores : 1);
  if (provider === 'auto' || provider === 'webgpu') {
    const adapter = await webgpuAdapter();
    if (adapter) {
      const f16 = adapter.features.has('shader-f16') && definition.float16Activations === 'float16';
      return { provider: 'webgpu', threads: null, float16: f16,
               why: `a WebGPU adapter is available${f16 ? ' with shader-f16' : ''}` };
    }
    if (provider === 'webgpu') throw new Error('WebGPU was asked for but this browser returns no adapter');
  }
  if (provider !== 'auto' && provider !== 'wasm') {
    throw new Error(`onnxruntime-web provider '${provider}' is not one srjs runs (auto, webgpu, wasm)`);
  }
  const why = provider === 'wasm' ? 'chosen' : 'no WebGPU adapter';
  return { provider: 'wasm', threads: wasmThreads, float16: false,
           why: `${why}; ${wasmThreads} wasm thread(s)${isolated ? '' : ' (page not cross-origin isolated)'}` };
}

// Pixels of an img / ImageBitmap / canvas / ImageData as {data: Uint8ClampedArray RGBA, width, height}.
function rgbaOf(source) {
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) return source;
  const width = source.naturalWidth || source.videoWidth || source.width;
  const height = source.naturalHeight || source.videoHeight || source.height;
  const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement('canvas'), { width, height });
  const ctx = canvas.getContext('2d');
  ctx.drawImage(source, 0, 0);
  return ctx.getImageData(0, 0, width, height);
}

const nextFrame = () => new Promise((resolve) => setTimeout(resolve, 0));

export async function createUpscaler(ort, definition, options = {}) {
  if (definition.modelType !== 'onnx') throw new Error('createUpscaler takes an ONNX entry (modelType "onnx")');
  const choice = await chooseProvider(definition, options);
  if (options.wasmPaths) ort.env.wasm.wasmPaths = options.wasmPaths;
  if (choice.threads) ort.env.wasm.numThreads = choice.threads; // fixed once the first session starts
  const file = choice.float16 ? definition.pathFloat16 : definition.path;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(file, {
    executionProviders: [choice.provider], graphOptimizationLevel: 'all',
  });
  const loadMs = performance.now() - t0;
  const [lo, hi] = definition.outputRange;
  const toModel = definition.inputRange[1] === 1 ? 1 / 255 : 1;
  const scale = definition.scale;

  async function run(win, h, w) {
    const out = await session.run({ input: new ort.Tensor('float32', win, [1, h, w, 3]) });
    const y = out.output;
    try {
      return await y.getData();
    } finally {
      if (y.dispose) y.dispose();
    }
  }

  // source -> {imageData, tiles, timings}; onProgress(done, total) after each tile.
  async function upscale(source, { tile = 64, pad = 8, onProgress = () => {} } = {}) {
    const t1 = performance.now();
    const { data: rgba, width, height } = rgbaOf(source);
    const tiles = planTiles(height, width, tile, pad);
    const outW = width * scale;
    const result = new Uint8ClampedArray(outW * height * scale * 4).fill(255);
    let firstMs = null;
    for (let i = 0; i < tiles.length; i++) {
      const { y, x } = tiles[i];
      const win = new Float32Array(y.size * x.size * 3);
      for (let r = 0; r < y.size; r++) {
        for (let c = 0; c < x.size; c++) {
          const src = ((y.start + r) * width + x.start + c) * 4;
          const dst = (r * x.size + c) * 3;
          win[dst] = rgba[src] * toModel;
          win[dst + 1] = rgba[src + 1] * toModel;
          win[dst + 2] = rgba[src + 2] * toModel;
        }
      }
      const t = performance.now();
      const out = await run(win, y.size, x.size);
      if (i === 0) firstMs = performance.now() - t;
      const ow = x.size * scale;
      for (let r = (y.keepStart - y.start) * scale; r < (y.keepStop - y.start) * scale; r++) {
        let dst = ((y.start * scale + r) * outW + x.keepStart * scale) * 4;
        for (let c = (x.keepStart - x.start) * scale; c < (x.keepStop - x.start) * scale; c++, dst += 4) {
          const src = (r * ow + c) * 3;
          for (let k = 0; k < 3; k++) {
            const v = Math.min(hi, Math.max(lo, out[src + k])); // clip to the range, then 8-bit
            result[dst + k] = hi === 1 ? v * 255 : v; // Uint8ClampedArray rounds half to even
          }
        }
      }
      onProgress(i + 1, tiles.length);
      await nextFrame(); // let the page paint between tiles
    }
    const imageData = typeof ImageData !== 'undefined' ? new ImageData(result, outW, height * scale)
      : { data: result, width: outW, height: height * scale };
    return { imageData, tiles: tiles.length,
             timings: { load_ms: loadMs, first_tile_ms: firstMs, upscale_ms: performance.now() - t1 } };
  }

  return { ...choice, file, upscale, release: () => session.release() };
}
