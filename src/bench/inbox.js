// `switchboard bench inbox` and `bench hooks`: an inbox page open in a real Chromium (the list,
// or the path given third), reporting when each agent message first appears on the page. Writes "READY <first-load bytes>" once the inbox is open,
// then one line "SEEN <message id> <epoch ms>" per message that appears; stops when stdin closes.
'use strict';

const { chromium } = require('playwright-core');

const [chromiumPath, link, base, open] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  let bytes = 0;
  const counting = async (response) => {
    if ((response.headers()['content-type'] || '').startsWith('text/event-stream')) return;
    const sizes = await response.request().sizes().catch(() => null);
    if (sizes) bytes += sizes.responseHeadersSize + sizes.responseBodySize;
  };
  page.on('response', counting);
  await page.goto(link);
  await page.waitForURL(base);
  await page.waitForSelector('#sessions');
  await page.waitForLoadState('networkidle').catch(() => {});
  page.off('response', counting);
  if (open) {
    await page.goto(base + open);
    await page.waitForSelector('#timeline');
    await page.waitForLoadState('networkidle').catch(() => {});
  }

  await page.exposeFunction('seen', (id, at) => {
    process.stdout.write('SEEN ' + id + ' ' + at + '\n');
  });
  await page.evaluate(() => {
    const known = new Set([...document.querySelectorAll('[data-message-id]')].map((e) => e.dataset.messageId));
    const look = () => {
      const at = performance.timeOrigin + performance.now();
      for (const e of document.querySelectorAll('[data-message-id]')) {
        const id = e.dataset.messageId;
        if (!known.has(id)) { known.add(id); window.seen(id, at); }
      }
    };
    new MutationObserver(look).observe(document.body, { childList: true, subtree: true });
  });
  process.stdout.write('READY ' + bytes + '\n');
  process.stdin.resume();
  process.stdin.on('end', async () => { await browser.close(); process.exit(0); });
})().catch((e) => {
  process.stderr.write(((e && e.stack) || String(e)) + '\n');
  process.exit(1);
});
