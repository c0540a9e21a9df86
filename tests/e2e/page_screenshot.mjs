// Open a page in Debian's headless Chromium (playwright-core, never a downloaded browser), wait until the
// page sets window.__ready (and, if given, until a further JS condition holds, e.g. Cesium's tiles loaded),
// screenshot it. Prints JSON: ready, console errors, requests that left this machine, failed responses.
import { chromium } from 'playwright-core';

const [url, out, settled] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-gl=angle', '--use-angle=swiftshader',
    '--enable-unsafe-swiftshader'],
});
const errors = [];
const outside = [];
const failed = [];
try {
  const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('response', (res) => { if (res.status() >= 400) failed.push(`${res.status()} ${res.url()}`); });
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (!['127.0.0.1', 'localhost'].includes(u.hostname) && !['data:', 'blob:'].includes(u.protocol)) {
      outside.push(req.url());
    }
  });
  await page.goto(url);
  let ready = null;
  try {
    await page.waitForFunction(() => window.__ready !== undefined, null, { timeout: 90000 });
    ready = await page.evaluate(() => window.__ready);
    if (settled) {
      await page.waitForFunction(settled, null, { timeout: 60000 });
      await page.waitForTimeout(1500);  // a few more frames drawn
    } else {
      await page.waitForTimeout(500);
    }
  } catch (err) {
    errors.push('timeout: ' + String(err));
  }
  const layers = await page.evaluate(
    () => (window.__map ? window.__map.getStyle().layers.map((l) => l.id) : []));
  await page.screenshot({ path: out });
  console.log(JSON.stringify({ ready, errors, outside, failed, layers }));
} finally {
  await browser.close();
}
