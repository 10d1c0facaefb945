// Old-runtime check: node run-legacy.mjs MODEL_JSON INPUT.npy OUTPUT.npy
// Loads a layers model with TF.js 1.7 (npm alias tfjs-1.7), which predates the 'Functional'
// class name: the runtime that `srjs patch --upscalerjs-compat` output must still load in.
// Prints one JSON line {ok, error, shape}; exit 0 either way (the caller reads the JSON).
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseNpy, encodeNpy } from './npy.mjs';

const require = createRequire(import.meta.url);
const tf = require('tfjs-1.7');

function diskHandler(modelJsonPath) {
  const dir = path.dirname(modelJsonPath);
  return {
    load: async () => {
      const model = JSON.parse(await fs.readFile(modelJsonPath, 'utf8'));
      const specs = model.weightsManifest.flatMap((group) => group.weights);
      const shards = [];
      for (const group of model.weightsManifest) {
        for (const p of group.paths) shards.push(await fs.readFile(path.join(dir, p)));
      }
      const data = Buffer.concat(shards);
      return {
        modelTopology: model.modelTopology,
        weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      };
    },
  };
}

const [modelJson, inputPath, outputPath] = process.argv.slice(2);
try {
  await tf.setBackend('cpu');
  const model = await tf.loadLayersModel(diskHandler(modelJson));
  const input = parseNpy(await fs.readFile(inputPath));
  const output = model.predict(tf.tensor(input.data, input.shape, 'float32'));
  await fs.writeFile(outputPath, encodeNpy(await output.data(), output.shape));
  console.log(JSON.stringify({ ok: true, error: null, shape: output.shape, version: tf.version_core }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err).split('\n')[0], shape: null }));
}
