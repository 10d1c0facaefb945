// Node harness: node run-node.mjs JOB.json
// JOB: {models: [{path: model.json, format: 'layers'|'graph'}], backends: ['cpu','wasm'],
//       inputs: [float32 NHWC .npy paths], out_dir, warm_runs}
// Writes outputs and one result JSON per model x backend into out_dir (see core.mjs); exit 0
// even when some model x backend failed (its JSON carries the error), 1 when the job is unusable.
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { parseNpy } from './npy.mjs';
import { registerCustomLayers } from './layers.mjs';
import { runJob } from './core.mjs';

const require = createRequire(import.meta.url);

function toArrayBuffer(buf) {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

// tfjs's file:// handler lives in tfjs-node (a native binary we do not use), so read
// model.json and its shards with fs and hand TF.js the same artifacts an HTTP load gives.
function diskHandler(modelJsonPath) {
  const dir = path.dirname(modelJsonPath);
  return {
    load: async () => {
      const modelJSON = JSON.parse(await fs.readFile(modelJsonPath, 'utf8'));
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs = [];
        const buffers = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) buffers.push(await fs.readFile(path.join(dir, p)));
        }
        return [specs, toArrayBuffer(Buffer.concat(buffers))];
      });
    },
  };
}

async function main() {
  const jobPath = process.argv[2];
  if (!jobPath) throw new Error('usage: node run-node.mjs JOB.json');
  const job = JSON.parse(await fs.readFile(jobPath, 'utf8'));
  const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  setWasmPaths(wasmDir + path.sep);
  registerCustomLayers(tf);
  await fs.mkdir(job.out_dir, { recursive: true });
  const env = {
    modelSource: async (model) => diskHandler(path.resolve(model.path)),
    readInput: async (i) => parseNpy(await fs.readFile(job.inputs[i])),
    write: (name, data) => fs.writeFile(path.join(job.out_dir, name), data),
  };
  const results = await runJob(tf, job, env);
  const failed = results.filter((r) => r.error).length;
  process.stdout.write(`srjs-node: ${results.length - failed} ok, ${failed} failed\n`);
}

main().catch((err) => {
  process.stderr.write(`srjs-node: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
