// The job loop both harnesses share (Node: run-node.mjs, browser: page.js). What differs is
// passed in as `env`: where models come from, how inputs are read, where outputs go.
//
// job: {models: [{path, format: 'layers'|'graph'}], backends: [...], inputs: [...], warm_runs}
// env: {modelSource(model) -> IOHandler or URL, readInput(i) -> {shape, data: Float32Array},
//       write(name, Uint8Array | string), loadOptions (optional, tf.io.LoadOptions)}
// Writes out_<m>_<backend>_<i>.npy per output and result_<m>_<backend>.json per model x backend.

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

async function predict(tf, model, input) {
  const x = tf.tensor(input.data, input.shape, 'float32');
  try {
    let y = model.predict(x);
    if (Array.isArray(y)) {
      y.forEach((t) => t.dispose());
      throw new Error(`model has ${y.length} outputs; srjs models have one`);
    }
    try {
      // data() waits for the backend to finish, so timings include the whole run.
      const data = await y.data();
      return { shape: y.shape, data };
    } finally {
      y.dispose();
    }
  } finally {
    x.dispose();
  }
}

async function loadModel(tf, model, env) {
  const source = await env.modelSource(model);
  const options = env.loadOptions || {};
  if (model.format === 'graph') return tf.loadGraphModel(source, options);
  if (model.format === 'layers') return tf.loadLayersModel(source, { strict: true, ...options });
  throw new Error(`unknown model format '${model.format}' (layers or graph)`);
}

async function useBackend(tf, backend) {
  let ok = false;
  try {
    ok = await tf.setBackend(backend);
    await tf.ready();
  } catch (err) {
    throw new Error(`backend '${backend}' failed to start: ${describe(err)}`);
  }
  if (!ok || tf.getBackend() !== backend) {
    throw new Error(`backend '${backend}' is unavailable here (in use: ${tf.getBackend()})`);
  }
}

function backendInfo(tf, backend) {
  const info = { tfjs: tf.version.tfjs };
  const flags = backend === 'wasm'
    ? ['WASM_HAS_SIMD_SUPPORT', 'WASM_HAS_MULTITHREAD_SUPPORT']
    : backend === 'webgl' ? ['WEBGL_VERSION', 'WEBGL_RENDER_FLOAT32_ENABLED'] : [];
  for (const flag of flags) {
    try {
      info[flag] = tf.env().get(flag);
    } catch (err) {
      info[flag] = null;
    }
  }
  if (backend === 'wasm' && typeof globalThis.crossOriginIsolated === 'boolean') {
    info.crossOriginIsolated = globalThis.crossOriginIsolated;
  }
  return info;
}

async function runOne(tf, job, env, mi, backend, inputs) {
  const model = job.models[mi];
  const result = {
    model: model.path, format: model.format, backend, backend_used: null, info: null,
    load_ms: null, first_ms: null, warm_ms: null, warm_runs_ms: [], output_shapes: [],
    outputs: [], error: null,
  };
  let loaded = null;
  try {
    await useBackend(tf, backend);
    result.backend_used = tf.getBackend();
    result.info = backendInfo(tf, backend);
    let t0 = performance.now();
    loaded = await loadModel(tf, model, env);
    result.load_ms = performance.now() - t0;
    for (let i = 0; i < inputs.length; i++) {
      t0 = performance.now();
      const out = await predict(tf, loaded, inputs[i]);
      // The first predict compiles shaders / allocates; that is what first_ms reports.
      if (i === 0) result.first_ms = performance.now() - t0;
      const name = `out_${mi}_${backend}_${i}.npy`;
      await env.write(name, encodeNpy(out.data, out.shape));
      result.outputs.push(name);
      result.output_shapes.push(out.shape);
    }
    for (let r = 0; r < (job.warm_runs || 0) && inputs.length; r++) {
      t0 = performance.now();
      await predict(tf, loaded, inputs[0]);
      result.warm_runs_ms.push(performance.now() - t0);
    }
    result.warm_ms = median(result.warm_runs_ms);
  } catch (err) {
    result.error = describe(err);
  } finally {
    if (loaded) loaded.dispose();
  }
  await env.write(`result_${mi}_${backend}.json`, JSON.stringify(result, null, 1));
  return result;
}

export async function runJob(tf, job, env) {
  const inputs = [];
  for (let i = 0; i < job.inputs.length; i++) inputs.push(await env.readInput(i));
  const results = [];
  // Backend outer: a switch re-initialises the backend, and weights live in one backend.
  for (const backend of job.backends) {
    for (let mi = 0; mi < job.models.length; mi++) {
      results.push(await runOne(tf, job, env, mi, backend, inputs));
    }
  }
  return results;
}
