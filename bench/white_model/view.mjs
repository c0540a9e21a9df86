// The white model in Debian's headless Chromium: how many content tiles and bytes a view fetches and how long
// until Cesium says every tile it wants is loaded. Prints one JSON line per view.
// usage: node bench/white_model/view.mjs BASE_URL TOKEN NAME=[lon,lat,height] ... (NAME alone: the whole model)
import { chromium } from 'playwright-core';

const [base, token, ...views] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
try {
  for (const view of views) {
    const [name, camera] = view.split('=');
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const tiles = [];
    page.on('response', async (res) => {
      if (res.url().endsWith('.glb')) tiles.push((await res.body()).length);
    });
    const started = Date.now();
    await page.goto(`${base}/viewer/white-model.html#token=${token}${camera ? `&camera=${camera}` : ''}`);
    // initialTilesLoaded (the page's __ready) fires once every tile the first view wants has arrived.
    await page.waitForFunction(() => window.__ready === true && window.__tileset && window.__tileset.tilesLoaded,
      null, { timeout: 300000 });
    const seconds = (Date.now() - started) / 1000;
    if (process.env.SHOTS) await page.screenshot({ path: `${process.env.SHOTS}/${name}.png` });
    console.log(JSON.stringify({ view: name, tiles: tiles.length, bytes: tiles.reduce((a, b) => a + b, 0),
      seconds }));
    await page.close();
  }
} finally {
  await browser.close();
}
