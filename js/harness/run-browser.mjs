// Browser driver: node run-browser.mjs --chromium PATH
// Launches headless Chromium once, then serves calls read as JSON lines on stdin:
//   {"id": 1, "url": "http://127.0.0.1:PORT/js/harness/page.html", "fn": "srjsRun",
//    "arg": {...}, "timeout_ms": 300000}
// Each call gets a fresh browser context (fresh TF.js and WebGL state), waits for
// window.srjsReady, awaits window[fn](arg) and answers one JSON line on stdout:
//   {"id": 1, "ok": true, "result": ...} or {"id": 1, "ok": false, "error": "...", "log": [...]}
// The first line out is {"ready": true, "version": "..."}; stdin closing ends the browser.
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  // WebGL without a GPU: ANGLE on SwiftShader (a float32-capable software rasterizer).
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  // WebGPU without a GPU: Dawn on SwiftShader (no shader-f16); pages are on 127.0.0.1, a secure context.
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
];

function option(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function send(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function openRequests(page) {
  try {
    const pending = await withTimeout(
      page.evaluate(() => (window.srjsOpenRequests ? window.srjsOpenRequests() : [])), 5000, 'listing requests');
    return Array.isArray(pending) ? pending.slice(0, 10) : [];
  } catch (err) {
    return [];
  }
}

async function call(browser, request) {
  const timeoutMs = request.timeout_ms || 300000;
  const log = [];
  const context = await browser.newContext();
  let page = null;
  try {
    page = await context.newPage();
    page.on('console', (msg) => log.push(`${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => log.push(`pageerror: ${err.message}`));
    page.on('requestfailed', (req) => log.push(`requestfailed: ${req.url()} ${req.failure()?.errorText}`));
    await page.goto(request.url, { timeout: timeoutMs });
    await page.waitForFunction(() => window.srjsReady === true, null, { timeout: timeoutMs });
    const result = await withTimeout(
      page.evaluate(([fn, arg]) => window[fn](arg), [request.fn, request.arg]),
      timeoutMs, `${request.fn}`,
    );
    return { id: request.id, ok: true, result, log: log.slice(-50) };
  } catch (err) {
    // Page errors carry the minified stack; the first lines say what went wrong.
    const text = String(err && err.message ? err.message : err);
    let error = text.split('\n').filter((l) => !/^\s+at /.test(l)).join(' ').trim();
    // A call that timed out was usually waiting on the network: name what never finished.
    const pending = page ? await openRequests(page) : [];
    if (pending.length) error += `; unfinished requests: ${pending.join(', ')}`;
    return { id: request.id, ok: false, error, log: log.slice(-50) };
  } finally {
    await context.close().catch(() => {});
  }
}

async function main() {
  const executablePath = option('--chromium');
  if (!executablePath) throw new Error('usage: node run-browser.mjs --chromium PATH');
  const browser = await chromium.launch({ executablePath, headless: true, args: ARGS });
  send({ ready: true, version: browser.version() });
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  // One call at a time: TF.js timings must not share the CPU with another page.
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request;
    try {
      request = JSON.parse(line);
    } catch (err) {
      send({ id: null, ok: false, error: `bad request line: ${err.message}` });
      continue;
    }
    send(await call(browser, request));
  }
  await browser.close();
}

main().catch((err) => {
  process.stderr.write(`srjs-browser: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
