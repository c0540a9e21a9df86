// Browse the OGC API HTML pages in Debian's headless Chromium (playwright-core, never a downloaded browser) with
// the network cut to 127.0.0.1: any request to another host is aborted and reported. Then log in through the
// form and open a page behind it. Prints one JSON report: per page its status, title, table rows, the page's own
// failed resources (status >= 400 or not loaded), console errors; the requests that tried to leave; the cookie.
// Usage: node html_pages.mjs '{"base": "http://127.0.0.1:PORT", "pages": ["/", ...],
//                               "login": {"username": "...", "password": "...", "next": "/..."}, "shots": "DIR"}'
import { chromium } from 'playwright-core';

const plan = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-gl=angle', '--use-angle=swiftshader',
    '--enable-unsafe-swiftshader'],
});
const outside = [];
const report = { pages: [], outside, login: null };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    outside.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  let current = null;
  page.on('console', (msg) => { if (current && msg.type() === 'error') current.errors.push(msg.text()); });
  page.on('pageerror', (err) => { if (current) current.errors.push(String(err)); });
  page.on('response', (res) => {
    if (current && res.status() >= 400) current.failed.push(`${res.status()} ${res.url()}`);
  });
  page.on('requestfailed', (req) => {
    if (current && new URL(req.url()).hostname === '127.0.0.1') current.failed.push(`failed ${req.url()}`);
  });

  const visit = async (path, name) => {
    current = { path, name, errors: [], failed: [] };
    const res = await page.goto(plan.base + path, { waitUntil: 'networkidle' });
    await inspect(res, name);
  };
  const inspect = async (res, name) => {
    current.status = res ? res.status() : null;
    current.url = page.url();
    current.title = await page.title();
    current.rows = await page.locator('table tbody tr').count();
    current.crumbs = (await page.locator('.breadcrumb').allInnerTexts()).join(' ').replace(/\s+/g, ' ').trim();
    current.links = await page.$$eval('a[href]', (as) => as.map((a) => a.href));
    current.map = await page.evaluate(() => window.__ready === true);
    if (plan.shots) await page.screenshot({ path: `${plan.shots}/${name}.png`, fullPage: true });
    report.pages.push(current);
    current = null;
  };

  for (const [i, path] of plan.pages.entries()) await visit(path, `page${i}`);

  if (plan.login) {
    await visit(`/login?next=${encodeURIComponent(plan.login.next)}`, 'login-form');
    current = { path: 'after-login', name: 'after-login', errors: [], failed: [] };
    await page.fill('input[name="username"][autocomplete="username"]', plan.login.username);
    await page.fill('input[name="password"][autocomplete="current-password"]', plan.login.password);
    const [res] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'networkidle' }),
      page.click('#login-form button[type="submit"]'),
    ]);
    await inspect(res, 'after-login');
    report.login = {
      cookies: (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite,
        secure: c.secure })),
      who: await page.locator('#who').allInnerTexts(),
    };
  }
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
}
