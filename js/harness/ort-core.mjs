// onnxruntime-web's job loop, shared by Node (run-ort-node.mjs) and the browser (ort-page.js).
// Same job and result files as core.mjs (TF.js), so srjs reads both the same way.
//
// job: {models: [{path, format: 'onnx', needs_shader_f16}], backends: ['wasm'|'webgpu'], inputs: [...],
//       warm_runs, threads (wasm threads; 0 = onnxruntime's default)}
// env: {modelSource(model) -> URL string or Uint8Array, readInput(i) -> {shape, data},
//       write(name, Uint8Array | string)}
// The graph's input is "input" and its output "output", float32 NHWC (srjs's ONNX export).

import { encodeNpy } from './npy.mjs';

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function describe(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

async function predict(ort, session, input) {
  const feeds = { input: new ort.Tensor('float32', input.data, input.shape) };
  const results = await session.run(feeds);
  const y = results.output;
  try {
    // getData() downloads from the GPU for WebGPU; timings include it, like TF.js's data().
    const data = await y.getData();
    return { shape: [...y.dims], data: data instanceof Float32Array ? data : Float32Array.from(data) };
  } finally {
    if (y.dispose) y.dispose();
  }
}

export async function webgpuInfo() {
  if (typeof navigator === 'undefined' || !navigator.gpu) return { webgpu: false };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { webgpu: false };
  const info = adapter.info || {};
  return {
    webgpu: true, adapter: [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '),
    shader_f16: adapter.features.has('shader-f16'),
  };
}

async function runOne(ort, job, env, mi, backend, inputs) {
  const model = job.models[mi];
  const result = {
    model: model.path, format: model.format, backend, backend_used: backend, info: null,
    load_ms: null, first_ms: null, warm_ms: null, warm_runs_ms: [], output_shapes: [],
    outputs: [], error: null,
  };
  let session = null;
  try {
    result.info = {
      onnxruntime: ort.env.versions ? ort.env.versions.web || ort.env.versions.common : null,
      threads: ort.env.wasm.numThreads,
      crossOriginIsolated: typeof globalThis.crossOriginIsolated === 'boolean' ? globalThis.crossOriginIsolated : null,
      ...(backend === 'webgpu' ? await webgpuInfo() : {}),
    };
    if (backend === 'webgpu' && model.needs_shader_f16 && !result.info.shader_f16) {
      // float16 compute on WebGPU needs the adapter's shader-f16 feature (SwiftShader lacks it)
      result.info.skipped = 'the WebGPU adapter has no shader-f16 (float16 compute)';
      await env.write(`result_${mi}_${backend}.json`, JSON.stringify(result, null, 1));
      return result;
    }
    let t0 = performance.now();
    session = await ort.InferenceSession.create(await env.modelSource(model), {
      executionProviders: [backend], graphOptimizationLevel: 'all',
    });
    result.load_ms = performance.now() - t0;
    for (let i = 0; i < inputs.length; i++) {
      t0 = performance.now();
      const out = await predict(ort, session, inputs[i]);
      if (i === 0) result.first_ms = performance.now() - t0;
      const name = `out_${mi}_${backend}_${i}.npy`;
      await env.write(name, encodeNpy(out.data, out.shape));
      result.outputs.push(name);
      result.output_shapes.push(out.shape);
    }
    for (let r = 0; r < (job.warm_runs || 0) && inputs.length; r++) {
      t0 = performance.now();
      await predict(ort, session, inputs[0]);
      result.warm_runs_ms.push(performance.now() - t0);
    }
    result.warm_ms = median(result.warm_runs_ms);
  } catch (err) {
    result.error = describe(err);
  } finally {
    if (session) await session.release();
  }
  await env.write(`result_${mi}_${backend}.json`, JSON.stringify(result, null, 1));
  return result;
}

export async function runOrtJob(ort, job, env) {
  if (job.threads) ort.env.wasm.numThreads = job.threads;
  const inputs = [];
  for (let i = 0; i < job.inputs.length; i++) inputs.push(await env.readInput(i));
  const results = [];
  for (const backend of job.backends) {
    for (let mi = 0; mi < job.models.length; mi++) {
      results.push(await runOne(ort, job, env, mi, backend, inputs));
    }
  }
  return results;
}
