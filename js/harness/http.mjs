// fetch helpers for the browser pages: every failure is an error naming the method and URL, and
// every body is read whole before the helper returns.
//
// Why whole bodies: srjs's server speaks HTTP/1.1, where Chromium opens at most 6 connections
// per host. TF.js's weight loader awaits the responses of *all* shards before reading any body;
// a body larger than what Chromium buffers (measured: 1 MiB shards load, 2 MiB ones do not)
// holds its connection, so with 7+ such shards the 7th request never gets a connection and the
// load hangs forever. Reading each body as its response arrives frees the connection.

// Requests not finished yet, so a timed-out call can say what it was waiting for.
const open = new Map();
let nextId = 0;

export function openRequests() {
  const now = performance.now();
  return [...open.values()].map((r) => `${r.what} (${r.stage} for ${Math.round(now - r.t0)} ms)`);
}

async function request(url, init, what) {
  const id = nextId++;
  const entry = { what, stage: 'waiting for a response', t0: performance.now() };
  open.set(id, entry);
  try {
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new Error(`${what}: ${err && err.message ? err.message : err}`);
    }
    if (!response.ok) throw new Error(`${what}: HTTP ${response.status}`);
    entry.stage = 'reading the body';
    try {
      return { response, body: await response.arrayBuffer() };
    } catch (err) {
      throw new Error(`${what}: reading the body failed: ${err && err.message ? err.message : err}`);
    }
  } finally {
    open.delete(id);
  }
}

export async function fetchBytes(url) {
  return new Uint8Array((await request(url, undefined, `GET ${url}`)).body);
}

// A fetch for TF.js (LoadOptions.fetchFunc, or the platform's fetch): the same Response, its
// body already read. TF.js's own loader would read a 404 page as weight bytes; this throws.
export async function fetchWhole(url, init) {
  const method = (init && init.method) || 'GET';
  const { response, body } = await request(url, init, `${method} ${url}`);
  return new Response(body, {
    status: response.status, statusText: response.statusText, headers: response.headers,
  });
}

// Outputs go back to srjs's server as raw bytes (a PUT per file): no base64 or JSON bloat.
export async function putBytes(url, data) {
  await request(url, { method: 'PUT', body: data }, `PUT ${url}`);
}
