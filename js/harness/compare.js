// window.srjsCompare(job): one model, one runtime x backend x thread count, on one input, in a
// page that has loaded both TF.js 4.22 (wasm, webgpu backends) and onnxruntime-web (WebGPU build,
// which also runs wasm). A fresh page per call: thread counts are fixed when a backend starts.
// job: {runtime: 'tfjs' | 'ort', backend: 'wasm' | 'webgpu', threads (wasm; 0 = the library's
//       default), report_cores (TF.js caps wasm threads at hardwareConcurrency / 2: the page
//       reports this many cores so that all of them can be asked for), model_url (TF.js graph
//       model.json or .onnx), input_url (.npy float32 NHWC), out_url (writable folder), runs}
// Returns {load_ms, first_ms, runs_ms, threads, backend, info}; writes out.npy (the first output).
import * as ort from '../node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs';
import { parseNpy, encodeNpy } from './npy.mjs';
import { fetchBytes, fetchWhole, putBytes } from './http.mjs';
import { webgpuInfo } from './ort-core.mjs';

const tf = window.tf;

async function tfjsRunner(job) {
  if (job.backend === 'wasm') {
    tf.wasm.setWasmPaths(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).href);
    if (job.threads) tf.wasm.setThreadsCount(job.threads);
  }
  if (!(await tf.setBackend(job.backend))) throw new Error(`TF.js backend '${job.backend}' is unavailable`);
  await tf.ready();
  const model = await tf.loadGraphModel(job.model_url, { fetchFunc: fetchWhole });
  const threads = job.backend === 'wasm' ? tf.wasm.getThreadsCount() : null;
  return {
    threads, info: { tfjs: tf.version.tfjs },
    run: async (input) => {
      const x = tf.tensor(input.data, input.shape, 'float32');
      const y = model.predict(x);
      const data = await y.data();
      const shape = y.shape;
      x.dispose();
      y.dispose();
      return { data, shape };
    },
  };
}

async function ortRunner(job) {
  ort.env.wasm.wasmPaths = new URL('../node_modules/onnxruntime-web/dist/', import.meta.url).href;
  if (job.threads) ort.env.wasm.numThreads = job.threads;
  const bytes = new Uint8Array(await fetchBytes(job.model_url));
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [job.backend], graphOptimizationLevel: 'all',
  });
  return {
    threads: job.backend === 'wasm' ? ort.env.wasm.numThreads : null,
    info: { onnxruntime: ort.env.versions.web, ...(job.backend === 'webgpu' ? await webgpuInfo() : {}) },
    run: async (input) => {
      const out = await session.run({ input: new ort.Tensor('float32', input.data, input.shape) });
      const data = await out.output.getData();
      const shape = [...out.output.dims];
      if (out.output.dispose) out.output.dispose();
      return { data, shape };
    },
  };
}

window.srjsCompare = async (job) => {
  if (job.report_cores) {
    Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => job.report_cores });
  }
  const input = parseNpy(await fetchBytes(job.input_url));
  let t0 = performance.now();
  const runner = await (job.runtime === 'tfjs' ? tfjsRunner(job) : ortRunner(job));
  const loadMs = performance.now() - t0;
  t0 = performance.now();
  const first = await runner.run(input);
  const firstMs = performance.now() - t0;
  await putBytes(job.out_url + 'out.npy', encodeNpy(first.data, first.shape));
  const runs = [];
  for (let i = 0; i < (job.runs ?? 2); i++) {
    t0 = performance.now();
    await runner.run(input);
    runs.push(performance.now() - t0);
  }
  return { load_ms: loadMs, first_ms: firstMs, runs_ms: runs, threads: runner.threads, backend: job.backend,
           info: { ...runner.info, crossOriginIsolated: globalThis.crossOriginIsolated,
                   cores: navigator.hardwareConcurrency } };
};
window.srjsReady = true;
