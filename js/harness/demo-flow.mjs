// Drives a package's demo page the way a person does, for srjs's tests (tests/package):
//   node demo-flow.mjs --chromium PATH --url URL --image FILE --download FILE [--file-url URL]
//     [--screenshot PNG]
// Opens URL, picks FILE in the file input, presses Upscale, waits for "Done", presses the
// download link and saves what the browser downloads to --download. With --file-url, also
// opens the page as a file:// URL and reads the notice it shows there.
// Prints one JSON line: {ok, error?, status, entries, backends, timings, viewerHiddenAtStart,
// downloaded, log, file: {notice, noticeVisible, controlsVisible}}.
import { chromium } from 'playwright-core';

const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const TIMEOUT_MS = 120000;

function option(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function servedFlow(browser, out) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (msg) => out.log.push(`${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => out.log.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (req) => out.log.push(`requestfailed: ${req.url()} ${req.failure()?.errorText}`));
  await page.goto(option('--url'), { timeout: TIMEOUT_MS });
  await page.waitForFunction(() => window.srjsReady === true, null, { timeout: TIMEOUT_MS });
  out.viewerHiddenAtStart = await page.locator('#viewer').evaluate((el) => getComputedStyle(el).display === 'none');
  out.entries = await page.locator('#entry option').allTextContents();
  out.backends = await page.locator('#backend option').evaluateAll((els) => els.map((e) => e.value));
  await page.setInputFiles('#file', option('--image'));
  await page.waitForFunction(() => !document.getElementById('run').disabled, null, { timeout: TIMEOUT_MS });
  await page.click('#run');
  await page.waitForFunction(() => /^(Done|Failed)/.test(document.getElementById('status').textContent),
    null, { timeout: TIMEOUT_MS });
  out.status = await page.locator('#status').textContent();
  out.timings = await page.locator('#timings tr').evaluateAll(
    (rows) => rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent]));
  if (option('--screenshot')) await page.screenshot({ path: option('--screenshot'), fullPage: true });
  if (out.status.startsWith('Done')) {
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: TIMEOUT_MS }),
      page.click('#download')]);
    out.downloadName = download.suggestedFilename();
    await download.saveAs(option('--download'));
    out.downloaded = true;
  }
  await context.close();
}

async function fileFlow(browser, out) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(option('--file-url'), { timeout: TIMEOUT_MS, waitUntil: 'load' });
  out.file = {
    notice: await page.locator('#notice').textContent(),
    noticeVisible: await page.locator('#notice').isVisible(),
    controlsVisible: await page.locator('#controls').isVisible(),
  };
  await context.close();
}

async function main() {
  const out = { ok: false, log: [], downloaded: false };
  const browser = await chromium.launch({ executablePath: option('--chromium'), headless: true, args: ARGS });
  try {
    await servedFlow(browser, out);
    if (option('--file-url')) await fileFlow(browser, out);
    out.ok = true;
  } catch (err) {
    out.error = String(err && err.message ? err.message : err).split('\n')[0];
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`demo-flow: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
