// A tiny remote control for Debian's chromium, driven by tests/e2e/test_ohif.py.
//
// Usage: node driver.mjs <chromium executable> <artifacts dir>
// Reads one JSON command per line on stdin, answers one JSON line on stdout per command:
//   {"id": 1, "op": "goto", "url": "...", "timeout": 30000}
//   -> {"id": 1, "ok": true, "value": ...} or {"id": 1, "ok": false, "error": "..."}
// Every operation has its own timeout; the browser never downloads anything of its own
// (playwright-core only, launched with executablePath). Requests to /dicom-web/ are recorded
// (the "requests" op returns them), as are console errors and page errors ("events").
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [executablePath, artifacts] = process.argv.slice(2);
if (!executablePath || !artifacts) {
  process.stderr.write('usage: node driver.mjs <chromium> <artifacts dir>\n');
  process.exit(2);
}

const DEFAULT_TIMEOUT = 30000;
const requests = [];
const events = [];
const started = Date.now();

function record(request, fields) {
  const url = request.url();
  if (!url.includes('/dicom-web/')) return;
  const timing = request.timing();
  requests.push({
    method: request.method(),
    url,
    accept: request.headers()['accept'] ?? null,
    at_ms: Date.now() - started,
    duration_ms: timing.responseEnd >= 0 ? Math.round(timing.responseEnd) : null,
    ...fields,
  });
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  timeout: 60000,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--no-first-run',
    '--disable-dev-shm-usage',
    // WebGL through SwiftShader (software), which cornerstone renders with when there is no GPU.
    '--enable-unsafe-swiftshader',
    '--use-angle=swiftshader',
  ],
});
const context = await browser.newContext({
  viewport: { width: 1600, height: 1000 },
  serviceWorkers: 'block', // OHIF registers one; it would hide requests from the log
  acceptDownloads: false,
});
const page = await context.newPage();
page.setDefaultTimeout(DEFAULT_TIMEOUT);
const inflight = new Set();
let lastActivity = Date.now();
page.on('request', request => {
  if (request.url().includes('/dicom-web/')) {
    inflight.add(request);
    lastActivity = Date.now();
  }
});
function settle(request) {
  if (inflight.delete(request)) lastActivity = Date.now();
}
page.on('requestfinished', async request => {
  settle(request);
  const response = await request.response().catch(() => null);
  record(request, {
    status: response ? response.status() : null,
    content_type: response ? (response.headers()['content-type'] ?? null) : null,
    failure: null,
  });
});
page.on('requestfailed', request => {
  settle(request);
  record(request, { status: null, content_type: null, failure: request.failure()?.errorText ?? 'failed' });
});
page.on('console', message => {
  if (message.type() === 'error' || message.type() === 'warning') {
    events.push({ kind: `console.${message.type()}`, text: message.text().slice(0, 2000) });
  }
});
page.on('pageerror', error => events.push({ kind: 'pageerror', text: String(error).slice(0, 2000) }));
page.on('crash', () => events.push({ kind: 'crash', text: 'the page crashed' }));
// A dialog (confirm) is dismissed unless the "dialogs" op said to accept them; each is an event.
let acceptDialogs = false;
page.on('dialog', async dialog => {
  events.push({ kind: 'dialog', text: dialog.message().slice(0, 2000) });
  await (acceptDialogs ? dialog.accept() : dialog.dismiss());
});

const ops = {
  async goto({ url, timeout }) {
    const response = await page.goto(url, { waitUntil: 'domcontentloaded', timeout });
    return response ? response.status() : null;
  },
  // Wait until a JavaScript expression (a function body returning a value) is truthy; its value.
  async waitFor({ expression, arg, timeout, polling }) {
    const handle = await page.waitForFunction(new Function('arg', expression), arg ?? null, {
      timeout,
      polling: polling ?? 250,
    });
    const value = await handle.jsonValue();
    await handle.dispose();
    return value;
  },
  async evaluate({ expression, arg }) {
    return page.evaluate(new Function('arg', expression), arg ?? null);
  },
  async fill({ selector, value, timeout }) {
    await page.locator(selector).first().fill(value, { timeout });
    return null;
  },
  async press({ selector, key, timeout }) {
    await page.locator(selector).first().press(key, { timeout });
    return null;
  },
  async click({ selector, timeout }) {
    await page.locator(selector).first().click({ timeout });
    return null;
  },
  // Choose files for an <input type="file"> (the console's upload).
  async setFiles({ selector, files, timeout }) {
    await page.locator(selector).first().setInputFiles(files, { timeout });
    return null;
  },
  // A key pressed on whatever has the focus (keyboard navigation).
  async key({ key }) {
    await page.keyboard.press(key);
    return null;
  },
  async dialogs({ accept }) {
    acceptDialogs = Boolean(accept);
    return null;
  },
  async viewport({ width, height }) {
    await page.setViewportSize({ width, height });
    return null;
  },
  async screenshot({ path, timeout }) {
    await page.screenshot({ path, fullPage: false, timeout });
    return path;
  },
  // Wait until no DICOMweb request has been in flight for quietMs; the number still in flight.
  async idle({ quietMs, timeout }) {
    const deadline = Date.now() + timeout;
    const quiet = quietMs ?? 1000;
    while (Date.now() < deadline) {
      if (inflight.size === 0 && Date.now() - lastActivity >= quiet) return 0;
      await new Promise(resolve => setTimeout(resolve, 100));
    }
    throw new Error(`${inflight.size} DICOMweb requests still in flight after ${timeout} ms: ${[
      ...inflight,
    ]
      .map(r => r.url())
      .slice(0, 10)
      .join(' ')}`);
  },
  async inflight() {
    return inflight.size;
  },
  async requests() {
    return requests;
  },
  async events() {
    return events;
  },
  async url() {
    return page.url();
  },
};

let closing = false;
async function close(code) {
  if (closing) return;
  closing = true;
  await browser.close().catch(() => {});
  process.exit(code);
}
process.on('SIGTERM', () => close(0));
process.on('SIGINT', () => close(0));

function answer(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

answer({ id: 0, ok: true, value: { version: browser.version(), artifacts } });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    answer({ id: null, ok: false, error: `bad command: ${error}` });
    continue;
  }
  if (command.op === 'close') {
    answer({ id: command.id, ok: true, value: null });
    break;
  }
  const op = ops[command.op];
  if (!op) {
    answer({ id: command.id, ok: false, error: `unknown op ${command.op}` });
    continue;
  }
  try {
    const value = await op({ timeout: DEFAULT_TIMEOUT, ...command });
    answer({ id: command.id, ok: true, value: value ?? null });
  } catch (error) {
    answer({ id: command.id, ok: false, error: String(error?.message ?? error).slice(0, 4000) });
  }
}
await close(0);
