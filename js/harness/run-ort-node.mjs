// Node harness for ONNX: node run-ort-node.mjs JOB.json (onnxruntime-web's wasm backend in Node)
// JOB: {models: [{path: model.onnx, format: 'onnx'}], backends: ['wasm'], inputs: [.npy paths],
//       out_dir, warm_runs, threads}
// Writes outputs and one result JSON per model x backend into out_dir (see ort-core.mjs).
import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { parseNpy } from './npy.mjs';
import { runOrtJob } from './ort-core.mjs';

async function main() {
  const jobPath = process.argv[2];
  if (!jobPath) throw new Error('usage: node run-ort-node.mjs JOB.json');
  const job = JSON.parse(await fs.readFile(jobPath, 'utf8'));
  ort.env.logLevel = 'error';
  await fs.mkdir(job.out_dir, { recursive: true });
  const env = {
    // bytes, not a path: the wasm build has no file system of its own
    modelSource: async (model) => new Uint8Array(await fs.readFile(path.resolve(model.path))),
    readInput: async (i) => parseNpy(await fs.readFile(job.inputs[i])),
    write: (name, data) => fs.writeFile(path.join(job.out_dir, name), data),
  };
  const results = await runOrtJob(ort, job, env);
  const failed = results.filter((r) => r.error).length;
  process.stdout.write(`srjs-ort-node: ${results.length - failed} ok, ${failed} failed\n`);
}

main().then(() => process.exit(0)).catch((err) => {
  process.stderr.write(`srjs-ort-node: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
