// Browser harness: window.srjsRun(job) runs core.mjs's loop with models, inputs and outputs
// fetched from / sent to srjs's local server. job is run-node.mjs's job with URLs for paths,
// plus out_url (a writable folder URL ending in '/').
import { parseNpy } from './npy.mjs';
import { registerCustomLayers } from './layers.mjs';
import { runJob } from './core.mjs';
import { fetchBytes, fetchWhole, openRequests, putBytes } from './http.mjs';

const tf = window.tf;
tf.wasm.setWasmPaths(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).href);
registerCustomLayers(tf);

window.srjsRun = async (job) => runJob(tf, job, {
  modelSource: async (model) => model.path,
  // Whole bodies, or 7+ large shards deadlock on HTTP/1.1's 6 connections (see http.mjs).
  loadOptions: { fetchFunc: fetchWhole },
  readInput: async (i) => parseNpy(await fetchBytes(job.inputs[i])),
  write: (name, data) => putBytes(job.out_url + name, data),
});
window.srjsOpenRequests = openRequests;
window.srjsReady = true;
