// Browser harness: window.srjsRun(job) runs core.mjs's loop with models, inputs and outputs
// fetched from / sent to srjs's local server. job is run-node.mjs's job with URLs for paths,
// plus out_url (a writable folder URL ending in '/').
import { parseNpy } from './npy.mjs';
import { registerCustomLayers } from './layers.mjs';
import { runJob } from './core.mjs';
import { fetchBytes, putBytes } from './http.mjs';

const tf = window.tf;
tf.wasm.setWasmPaths(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).href);
registerCustomLayers(tf);

// TF.js's HTTP loader reads a 404 page as weight bytes; failing the fetch names the file.
async function checkedFetch(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response;
}

window.srjsRun = async (job) => runJob(tf, job, {
  modelSource: async (model) => model.path,
  loadOptions: { fetchFunc: checkedFetch },
  readInput: async (i) => parseNpy(await fetchBytes(job.inputs[i])),
  write: (name, data) => putBytes(job.out_url + name, data),
});
window.srjsReady = true;
