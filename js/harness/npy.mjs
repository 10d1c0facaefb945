// Minimal .npy codec for float32, little-endian, C-order arrays: the only kind srjs exchanges
// with the harnesses. Works on ArrayBuffer/Uint8Array so Node and the browser share it.

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

export function parseNpy(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new Error('not a .npy file (bad magic)');
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // v1 stores the header length in 2 bytes, v2/v3 in 4.
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeText) throw new Error(`unreadable .npy header: ${header}`);
  if (descr[1] !== '<f4') throw new Error(`.npy dtype ${descr[1]} is not float32 little-endian ('<f4')`);
  if (fortran[1] === 'True') throw new Error('.npy array is Fortran-ordered; C order expected');
  const shape = shapeText[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  if (bytes.byteLength - dataStart < count * 4) throw new Error('.npy file is truncated');
  // Copy: the data offset need not be 4-byte aligned inside the caller's buffer (and a Node
  // Buffer's slice() is a view into a shared pool, so never take .buffer of it).
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart, dataStart + count * 4));
  return { shape, data };
}

export function encodeNpy(data, shape) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // v1.0: magic(6) + version(2) + len(2) + header, padded with spaces to a multiple of 64, '\n' last.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - 10 - header.length - 1) + '\n';
  const out = new Uint8Array(total + data.length * 4);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  // Float32Array uses platform byte order; every platform TF.js runs on is little-endian.
  out.set(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength), total);
  return out;
}
