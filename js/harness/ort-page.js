// Browser harness for ONNX: window.srjsOrtRun(job) runs ort-core.mjs's loop with models, inputs
// and outputs fetched from / sent to srjs's local server (job as run-ort-node.mjs's, with URLs,
// plus out_url). The WebGPU build of onnxruntime-web also carries the wasm backend.
import * as ort from '../node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs';
import { parseNpy } from './npy.mjs';
import { runOrtJob, webgpuInfo } from './ort-core.mjs';
import { fetchBytes, openRequests, putBytes } from './http.mjs';

ort.env.wasm.wasmPaths = new URL('../node_modules/onnxruntime-web/dist/', import.meta.url).href;
ort.env.logLevel = 'error';

window.srjsOrtRun = async (job) => runOrtJob(ort, job, {
  modelSource: async (model) => new Uint8Array(await fetchBytes(model.path)),
  readInput: async (i) => parseNpy(await fetchBytes(job.inputs[i])),
  write: (name, data) => putBytes(job.out_url + name, data),
});
window.srjsWebgpuInfo = webgpuInfo;
window.srjsOpenRequests = openRequests;
window.srjsReady = true;
