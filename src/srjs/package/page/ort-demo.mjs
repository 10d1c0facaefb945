// The demo page's ONNX path: entries whose definition says modelType 'onnx' run in
// onnxruntime-web (demo/vendor/, copied by srjs when the package ships ONNX entries) through the
// package's own runner, dist/ort/srjs-ort.mjs. Imported lazily, so a TF.js-only package never
// loads it. Backend 'auto' lets the runner choose (WebGPU when an adapter exists, wasm threads
// when cross-origin isolated, else wasm); 'webgpu' and 'wasm' ask for one.
const upscalers = new Map(); // `${entry}/${backend}` -> createUpscaler(...) result

export async function upscaleOnnx(source, item, { backend, tile, pad, onProgress }) {
  const key = `${item.entry}/${backend}`;
  if (!upscalers.has(key)) {
    const ort = await import('./vendor/ort.webgpu.min.mjs');
    const { createUpscaler } = await import('../dist/ort/srjs-ort.mjs');
    upscalers.set(key, await createUpscaler(ort, item.definition, {
      provider: backend, wasmPaths: new URL('vendor/', import.meta.url).href,
    }));
  }
  const up = upscalers.get(key);
  const result = await up.upscale(source, { tile, pad, onProgress });
  return {
    ...result, entry: item.entry, modelType: 'onnx', backend: `onnxruntime-web ${up.provider}`,
    why: `${up.why}; ${up.file.split('/').pop()}`,
  };
}
