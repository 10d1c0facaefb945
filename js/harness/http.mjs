// fetch helpers for the browser pages: every non-2xx response is an error naming the URL.

export async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// Outputs go back to srjs's server as raw bytes (a PUT per file): no base64 or JSON bloat.
export async function putBytes(url, data) {
  const response = await fetch(url, { method: 'PUT', body: data });
  if (!response.ok) throw new Error(`PUT ${url}: HTTP ${response.status}`);
}
