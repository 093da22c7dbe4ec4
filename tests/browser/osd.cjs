// OpenSeadragon in headless Chromium, driven by playwright-core: opens PAGE_URL (a page whose
// OpenSeadragon viewer is `window.viewer`, with tile counters in `window.osdEvents`), waits
// until the home view is fully drawn, zooms to the deepest level and waits again, then prints
// one JSON object: the IIIF responses the page received, the counters, and the mean colour of
// the left and right quarters of the drawn canvas.
//
// Usage: node tests/browser/osd.cjs PAGE_URL
// Env:   TOWER_IIIF_PLAYWRIGHT  the playwright-core package directory
//        TOWER_IIIF_CHROMIUM    the Chromium binary (default /usr/bin/chromium)
'use strict';
const { chromium } = require(process.env.TOWER_IIIF_PLAYWRIGHT || 'playwright-core');

async function fullyLoaded(page) {
  await page.waitForFunction(() => {
    const item = window.viewer && window.viewer.world.getItemAt(0);
    return item && item.getFullyLoaded();
  }, null, { timeout: 60000 });
}

// Mean red, green and blue of the left and right quarters of the viewer's canvas.
function canvasColours() {
  const canvas = document.querySelector('#osd canvas');
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const mean = (x0, x1) => {
    const d = ctx.getImageData(x0, 0, x1 - x0, height).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
    const n = d.length / 4;
    return sum.map(v => v / n);
  };
  return { width, height, left: mean(0, width >> 2), right: mean(width - (width >> 2), width) };
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.TOWER_IIIF_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
    const iiif = [];
    page.on('response', r => {
      if (r.url().includes('/cantaloupe/iiif/')) {
        iiif.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] || '' });
      }
    });
    const errors = [];
    page.on('pageerror', e => errors.push(String(e)));
    await page.goto(process.argv[2]);
    await fullyLoaded(page);
    const home = await page.evaluate(canvasColours);
    const homeTiles = await page.evaluate(() => window.osdEvents.loaded);
    await page.evaluate(() => {
      const vp = window.viewer.viewport;
      vp.zoomTo(vp.getMaxZoom(), vp.getCenter(), true);
    });
    await page.waitForFunction(n => window.osdEvents.loaded > n, homeTiles, { timeout: 60000 });
    await fullyLoaded(page);
    const events = await page.evaluate(() => window.osdEvents);
    console.log(JSON.stringify({ iiif, events, homeTiles, home, errors }));
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
