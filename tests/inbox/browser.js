// Drives a real Chromium through the inbox for tests/inbox.rs. One scenario per run, named by
// the first argument, configured by the JSON second argument. It reports progress as lines
// "WORD {json}" on stdout, which the Rust test waits for; a failed check exits non-zero with
// the reason on stderr.
'use strict';

const { chromium } = require('playwright-core');

const [scenario, json] = process.argv.slice(2);
const args = JSON.parse(json);
const base = args.base; // the server's URL, ending in '/'
const TIMEOUT = 15000;

function say(word, value = {}) {
  process.stdout.write(word + ' ' + JSON.stringify(value) + '\n');
}

// Lines "WORD {json}" the Rust test sends on stdin, for scenarios that wait for it.
let told = null;
function listen() {
  const lines = require('readline').createInterface({ input: process.stdin });
  told = { lines, heard: [], waiting: [] };
  lines.on('line', (line) => {
    const at = line.indexOf(' ');
    const message = { word: line.slice(0, at), value: JSON.parse(line.slice(at + 1)) };
    const i = told.waiting.findIndex((w) => w.word === message.word);
    if (i >= 0) told.waiting.splice(i, 1)[0].resolve(message.value);
    else told.heard.push(message);
  });
}

/** The value of the next `word` line from the test. */
function hear(word) {
  const i = told.heard.findIndex((m) => m.word === word);
  if (i >= 0) return Promise.resolve(told.heard.splice(i, 1)[0].value);
  return new Promise((resolve) => told.waiting.push({ word, resolve }));
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function launch() {
  return chromium.launch({
    executablePath: args.chromium,
    args: [
      '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
}

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = {
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
};

/** A page that records what must never happen: dialogs (alert) and script errors. */
async function watchedPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.incidents = [];
  // A dialog is accepted when the scenario expects one (page.expectDialog), else an incident.
  page.on('dialog', (d) => {
    if (page.expectDialog) { page.expectDialog = false; d.accept(); return; }
    page.incidents.push('dialog: ' + d.message());
    d.dismiss();
  });
  page.on('pageerror', (e) => page.incidents.push('page error: ' + e.message));
  // The Content-Security-Policy allows no inline script or style: a violation is a defect.
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (apply|execute|load)/i.test(m.text())) {
      page.incidents.push('CSP: ' + m.text());
    }
  });
  return page;
}

function calm(page) {
  check(page.incidents.length === 0, 'unexpected: ' + page.incidents.join('; '));
}

async function signIn(context, link) {
  const page = await watchedPage(context);
  await page.goto(link);
  await page.waitForURL(base);
  await page.waitForSelector('#sessions');
  return page;
}

/** A screenshot for the README; `whole` grows the window to show the whole page. */
async function screenshot(page, name, whole) {
  if (!args.screenshots) return;
  // New items arrive with an animation; settle it.
  await page.evaluate(() => document.querySelectorAll('.fresh').forEach((e) => e.classList.remove('fresh')));
  if (whole) {
    // A taller window rather than a full-page capture, which would paint the sticky reply
    // box in the middle of the page.
    const size = page.viewportSize();
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: size.width, height: Math.min(height, 2400) });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: args.screenshots + '/' + name + '.png' });
    await page.setViewportSize(size);
  } else {
    await page.screenshot({ path: args.screenshots + '/' + name + '.png' });
  }
}

/** Bytes the browser transferred (headers and compressed bodies) while loading `url`. */
async function firstLoad(page, url) {
  const responses = [];
  const listener = (r) => responses.push(r);
  page.on('response', listener);
  await page.goto(url);
  await page.waitForLoadState('networkidle').catch(() => {});
  page.off('response', listener);
  let bytes = 0;
  const files = [];
  for (const r of responses) {
    if ((r.headers()['content-type'] || '').startsWith('text/event-stream')) continue;
    const sizes = await r.request().sizes();
    bytes += sizes.responseHeadersSize + sizes.responseBodySize;
    files.push(new URL(r.url()).pathname);
  }
  return { bytes, files };
}

const scenarios = {
  /** Sign in with a link; a question asked over MCP appears live; answer it by keyboard. */
  async answer() {
    const browser = await launch();
    const context = await browser.newContext(DESKTOP);
    const page = await watchedPage(context);
    await page.goto(args.link);
    await page.waitForURL(base);
    await page.waitForSelector('#sessions');
    // Everything loaded from a cold cache: what a first visit costs.
    const cold = await browser.newContext(DESKTOP);
    const coldPage = await watchedPage(cold);
    await cold.addCookies(await context.cookies());
    const load = await firstLoad(coldPage, base);
    await cold.close();
    await page.evaluate(() => { window.stayed = true; });
    say('READY', { load });

    // The question arrives without a reload.
    const row = page.locator('.row.waiting', { hasText: args.question });
    await row.waitFor();
    check(await page.evaluate(() => window.stayed === true), 'the page reloaded');
    await page.waitForFunction((prefix) => document.title.startsWith(prefix), args.title_asked);
    say('SEEN', { title: await page.title() });
    await screenshot(page, 'inbox-desktop');

    await row.locator('a').click();
    await page.waitForURL(base + 'sessions/' + args.session);
    const reply = page.getByRole('textbox', { name: 'Reply' });
    const send = page.getByRole('button', { name: 'Send' });
    check(await send.isVisible(), 'no Send button');

    // Every control is reachable by keyboard: Tab gets to the reply box and on to Send.
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement && document.activeElement.id === 'reply');
    }
    check(reached, 'Tab never reached the reply box');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.textContent.trim() === 'Send'),
      'Tab from the reply box does not reach Send');
    await reply.focus();

    // Shift+Enter breaks the line, Enter sends.
    await page.keyboard.type(args.answer_lines[0]);
    await page.keyboard.press('Shift+Enter');
    check((await reply.inputValue()).endsWith('\n'), 'Shift+Enter did not break the line');
    await page.keyboard.type(args.answer_lines[1]);
    await page.keyboard.press('Enter');
    await page.locator('#timeline .item.user', { hasText: args.answer_lines[1] }).waitFor();
    check((await reply.inputValue()) === '', 'the reply box was not cleared');
    await page.waitForFunction((prefix) => document.title.startsWith(prefix), args.title_answered);
    await page.locator('#session-head .pill.active').waitFor();
    await page.locator('#changes > details > summary').click();
    await screenshot(page, 'session-desktop', true);
    const title = await page.title();

    // End the session: the page asks first (no dialog), then it says so, and the reply box
    // gives way.
    await page.getByRole('button', { name: 'End session' }).click();
    await page.getByRole('button', { name: 'Cancel' }).click();
    check(await page.locator('#end-confirm').isHidden(), 'Cancel did not close the question');
    await page.getByRole('button', { name: 'End session' }).click();
    await page.getByRole('button', { name: 'Yes, end it' }).click();
    await page.locator('#session-head .pill.ended').waitFor();
    await page.locator('p#composer.ended-note').waitFor();
    check(!(await page.getByRole('button', { name: 'End session' }).count()), 'still an End session button');
    calm(page);
    say('DONE', { title });
    await browser.close();
  },

  /** The same on a phone-sized screen. */
  async phone() {
    const browser = await launch();
    const context = await browser.newContext(PHONE);
    const page = await signIn(context, args.link);
    await page.locator('.row.waiting', { hasText: args.question }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(overflow <= 390, 'the inbox is wider than the phone: ' + overflow);
    await screenshot(page, 'inbox-phone');
    await page.locator('.row.waiting a').first().tap();
    await page.waitForURL(base + 'sessions/' + args.session);
    const reply = page.getByRole('textbox', { name: 'Reply' });
    const box = await reply.boundingBox();
    check(box && box.x >= 0 && box.x + box.width <= 390 && box.y >= 0 && box.y + box.height <= 844,
      'the reply box is not on screen: ' + JSON.stringify(box));
    // Below 16px, phones zoom in on focus.
    const size = await reply.evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
    check(size >= 16, 'the reply box text is ' + size + 'px; phones zoom in below 16px');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 390, 'the session page is wider than the phone: ' + wide);
    await screenshot(page, 'session-phone');
    await reply.tap();
    await reply.fill(args.answer);
    await page.getByRole('button', { name: 'Send' }).tap();
    await page.locator('#timeline .item.user', { hasText: args.answer }).waitFor();
    calm(page);
    say('DONE');
    await browser.close();
  },

  /** Sign out; sign out everywhere ends another browser's open page. */
  async sign_out() {
    const browser = await launch();
    const first = await browser.newContext(DESKTOP);
    const second = await browser.newContext(DESKTOP);
    const a = await signIn(first, args.links[0]);
    const b = await signIn(second, args.links[1]);
    const cookie = (await first.cookies()).find((c) => c.name === 'switchboard_session');
    check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', 'cookie: ' + JSON.stringify(cookie));
    await a.locator('summary', { hasText: 'Account' }).click();
    await a.getByRole('button', { name: 'Sign out', exact: true }).click();
    await a.waitForURL(base + 'login');
    await a.goto(base);
    await a.waitForURL(base + 'login');
    check(await b.evaluate(() => !!document.getElementById('sessions')), 'the other browser lost its page');
    say('SIGNED_OUT', { cookie: cookie.value });

    const c = await signIn(first, args.links[2]);
    await c.locator('summary', { hasText: 'Account' }).click();
    await c.getByRole('button', { name: 'Sign out everywhere' }).click();
    await c.waitForURL(base + 'login');
    // The other browser's open page notices at once (its event stream ends) and leaves.
    await b.waitForURL((url) => url.pathname.endsWith('/login'), { timeout: 10000 });
    say('DONE');
    await browser.close();
  },

  /** Links that do not work: expired, used, unknown. Nobody is signed in by them. */
  async bad_links() {
    const browser = await launch();
    const context = await browser.newContext(DESKTOP);
    const page = await watchedPage(context);
    const seen = {};
    for (const [name, link] of Object.entries(args.links)) {
      const response = await page.goto(link);
      seen[name] = { status: response.status(), text: await page.locator('main').innerText() };
      await page.goto(base);
      check(page.url().startsWith(base + 'login'), name + ' link signed someone in');
    }
    calm(page);
    say('DONE', seen);
    await browser.close();
  },

  /** Another tenant's session URL is a plain 404, like a session that does not exist. */
  async other_tenant() {
    const browser = await launch();
    const context = await browser.newContext(DESKTOP);
    const page = await signIn(context, args.link);
    const theirs = await page.goto(base + 'sessions/' + args.theirs);
    const theirsText = await page.locator('main').innerText();
    const missing = await page.goto(base + 'sessions/' + args.missing);
    const missingText = await page.locator('main').innerText();
    say('DONE', {
      theirs: theirs.status(), missing: missing.status(), same: theirsText === missingText,
      text: theirsText,
    });
    await browser.close();
  },

  /** Agent text that tries to be markup stays text, in the list and in the session. */
  async xss() {
    const browser = await launch();
    const context = await browser.newContext(DESKTOP);
    const page = await signIn(context, args.link);
    await page.evaluate(() => { window.xss = 0; });
    say('READY');
    await page.locator('.row', { hasText: args.marker }).waitFor();
    await page.goto(base + 'sessions/' + args.session);
    await page.locator('#timeline .item.agent', { hasText: args.marker }).last().waitFor();
    await page.waitForTimeout(500);
    const found = await page.evaluate(() => ({
      images: document.querySelectorAll('#timeline img').length,
      scripts: document.querySelectorAll('#timeline script, #timeline iframe').length,
      javascriptLinks: [...document.querySelectorAll('a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') || '')).length,
      flag: window.xss || 0,
      text: document.getElementById('timeline').innerText,
    }));
    calm(page);
    say('DONE', found);
    await browser.close();
  },

  /** A question while the tab is in the background shows a notification about its session. */
  async notification() {
    const browser = await launch();
    const context = await browser.newContext(DESKTOP);
    await context.grantPermissions(['notifications'], { origin: base.replace(/\/$/, '') });
    // Headless Chromium has no window focus to lose (every tab counts as focused), so the
    // tab says it is in the background the way a browser says so: document.hasFocus().
    await context.addInitScript(() => { document.hasFocus = () => false; });
    const page = await signIn(context, args.link);
    await page.evaluate(() => navigator.serviceWorker.ready);
    // Only what happens once the page follows the stream is notified: wait for it.
    await page.waitForFunction(() => document.documentElement.dataset.stream === 'open');
    say('READY');
    let shown = [];
    for (const until = Date.now() + TIMEOUT; !shown.length && Date.now() < until;) {
      await page.waitForTimeout(100);
      shown = await page.evaluate(async () => {
        const registration = await navigator.serviceWorker.ready;
        const list = await registration.getNotifications();
        return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url }));
      });
    }
    calm(page);
    say('DONE', shown);
    await browser.close();
  },

  /** An email's answer link: it shows the question and asks first; its button answers; the
   * other answer's link then says the question closed. No sign-in. */
  async answer_link() {
    const browser = await launch();
    // The email as a mail app shows it: its "Wait" link opens the page that asks first.
    const phone = await watchedPage(await browser.newContext(PHONE));
    await phone.setContent(args.email);
    await screenshot(phone, 'email-phone');
    await phone.getByRole('link', { name: 'Wait', exact: true }).click();
    await phone.getByRole('button', { name: 'Answer “Wait”' }).waitFor();
    await screenshot(phone, 'answer-link-phone');
    const desktop = await watchedPage(await browser.newContext(DESKTOP));
    await desktop.setContent(args.email);
    check(await desktop.getByRole('link', { name: 'Reply in the inbox' }).count() === 1,
      'the email has no way to the inbox');
    await screenshot(desktop, 'email-desktop');
    await desktop.getByRole('link', { name: 'Ship it', exact: true }).click();
    await desktop.getByRole('button', { name: 'Answer “Ship it”' }).waitFor();
    check((await desktop.locator('blockquote').innerText()).includes('Ship release 2.0'),
      'the question is not shown');
    await screenshot(desktop, 'answer-link-desktop');
    await desktop.getByRole('button', { name: 'Answer “Ship it”' }).click();
    await desktop.getByRole('heading', { name: 'Answered “Ship it”' }).waitFor();
    await screenshot(desktop, 'answer-link-answered-desktop');
    await phone.getByRole('button', { name: 'Answer “Wait”' }).click();
    await phone.getByRole('heading', { name: 'This question is closed' }).waitFor();
    check((await phone.locator('main').innerText()).includes('It was already answered on'),
      'the closed question does not say how');
    await screenshot(phone, 'answer-link-closed-phone');
    calm(phone);
    calm(desktop);
    say('DONE');
    await browser.close();
  },

  /** The settings page: a webhook added (its secret shown once), tested, failing deliveries
   * shown here and announced in the inbox, push on this device, a channel removed. */
  async settings() {
    listen();
    const browser = await launch();
    const context = await browser.newContext(DESKTOP);
    const origin = base.replace(/\/$/, '');
    await context.grantPermissions(['notifications', 'clipboard-read', 'clipboard-write'], { origin });
    // Headless Chromium cannot reach a push service, so the browser's subscription is the
    // test's push receiver's: the page's own code registers it; the server pushes to it.
    await context.addInitScript((subscription) => {
      let current = null;
      PushManager.prototype.getSubscription = async () => current;
      PushManager.prototype.subscribe = async (options) => {
        window.subscribedWith = btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey)))
          .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        current = {
          endpoint: subscription.endpoint,
          toJSON: () => subscription,
          unsubscribe: async () => { current = null; return true; },
        };
        return current;
      };
    }, args.subscription);
    const page = await signIn(context, args.link);
    await page.getByRole('link', { name: 'Settings', exact: true }).click();
    await page.waitForURL(base + 'settings');
    await page.getByText('No channels yet').waitFor();
    check((await page.locator('#device-state').innerText()) === 'Off.', 'push is not off at first');

    // Keyboard: Tab reaches the webhook field and its button.
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement && document.activeElement.id === 'webhook-url');
    }
    check(reached, 'Tab never reached the webhook URL field');
    await page.keyboard.type(args.webhook);
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.textContent.trim() === 'Add webhook'),
      'Tab from the webhook URL does not reach Add webhook');
    await page.keyboard.press('Enter');
    const secret = page.locator('#secret-value');
    await secret.waitFor();
    const shown = await secret.innerText();
    check(shown.startsWith('whsec_'), 'no secret shown: ' + shown);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.locator('#secret-copied', { hasText: 'Copied.' }).waitFor();
    check(await page.evaluate(() => navigator.clipboard.readText()) === shown, 'the secret was not copied');
    // Connecting Claude Code, Codex, Gemini CLI: the setup commands, copied with a press.
    for (const [name, word] of [['Claude Code', 'claude-code'], ['Codex', 'codex'], ['Gemini CLI', 'gemini']]) {
      await page.evaluate(() => { document.querySelector('#agents .copied').textContent = ''; });
      await page.getByRole('button', { name: 'Copy the ' + name + ' setup commands' }).click();
      await page.locator('#agents .copied', { hasText: 'Copied.' }).waitFor();
      const setup = await page.evaluate(() => navigator.clipboard.readText());
      check(new RegExp('^export SWITCHBOARD_API_KEY=.*\\nswitchboard setup ' + word + ' --url http').test(setup),
        'the ' + name + ' setup commands were not copied: ' + setup);
    }
    say('SECRET', { secret: shown });
    await hear('TOLD');

    const webhook = 'Webhook ' + new URL(args.webhook).origin;
    await page.getByRole('button', { name: 'Send a test to ' + webhook, exact: true }).click();
    await page.locator('#channels-status', { hasText: 'The test reached ' + webhook }).waitFor();
    await page.locator('.delivery.delivered', { hasText: 'Test' }).waitFor();

    // A receiver that refuses: the test says so, retries follow, then the delivery fails.
    await page.getByLabel('Webhook URL').fill(args.refusing);
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const refusing = 'Webhook ' + new URL(args.refusing).origin;
    const refusingTest = page.getByRole('button', { name: 'Send a test to ' + refusing, exact: true });
    await refusingTest.waitFor();
    await refusingTest.click();
    await page.locator('#channels-status', { hasText: 'it will be tried again' }).waitFor();
    // No reload: the page follows the pending delivery until it ends.
    await page.locator('.delivery.failed', { hasText: 'Test' }).waitFor();
    await page.locator('.channel.failing', { hasText: new URL(args.refusing).origin }).waitFor();
    const failure = await page.locator('.delivery.failed .delivery-error').first().innerText();
    await page.locator('.delivery.failed details.attempts summary').first().click();
    const attempts = await page.locator('.delivery.failed details.attempts li').count();

    // The inbox announces it, and links here.
    await page.getByRole('link', { name: 'Inbox', exact: true }).click();
    await page.waitForURL(base);
    const notice = await page.locator('#failing-notice').innerText();
    await page.getByRole('link', { name: 'See what went wrong' }).click();
    await page.waitForURL(base + 'settings#deliveries');

    // Notifications on this device: the page subscribes and registers the subscription.
    await page.getByRole('button', { name: 'Turn on notifications on this device' }).click();
    const thisDevice = page.locator('.channel[data-kind="web_push"] .this-device:not([hidden])');
    await thisDevice.waitFor();
    await page.locator('#device-state', { hasText: 'On:' }).waitFor();
    const key = await page.evaluate(() => window.subscribedWith);
    // The reloaded page no longer has the secret anywhere.
    await page.reload();
    await thisDevice.waitFor();
    check(!(await page.content()).includes(shown), 'the secret is shown again');

    // The notification policy: failed tools by email, email only after 10 minutes, quiet
    // hours, and push even while this inbox is in front of the person (the test's push must
    // get through a focused page).
    await page.getByLabel('A tool failed: Email').check();
    await page.locator('input[name="escalate.email"]').fill('10');
    await page.getByLabel('Quiet hours').check();
    await page.locator('input[name="quiet.from"]').fill('23:00');
    await page.locator('input[name="quiet.until"]').fill('23:01');
    check((await page.locator('input[name="quiet.time_zone"]').inputValue()) !== '',
      'the time zone is not the browser\'s');
    await page.locator('input[name="quiet.time_zone"]').fill('UTC');
    await page.getByLabel('No browser push while the inbox is open and in front of me on any device').uncheck();
    await page.locator('input[name="coalesce"]').fill('-5');
    await page.getByRole('button', { name: 'Save notification settings' }).click();
    await page.locator('#policy-error', { hasText: 'whole number' }).waitFor();
    await page.locator('input[name="coalesce"]').fill('60');
    await page.locator('input[name="quiet.time_zone"]').fill('Mars/Olympus');
    await page.getByRole('button', { name: 'Save notification settings' }).click();
    await page.locator('#policy-error', { hasText: 'not a time zone' }).waitFor();
    await page.locator('input[name="quiet.time_zone"]').fill('UTC');
    await page.getByLabel('Quiet hours').uncheck();
    await page.getByRole('button', { name: 'Save notification settings' }).click();
    await page.locator('#policy-status', { hasText: 'Saved.' }).waitFor();
    check((await page.locator('#policy-error').innerText()) === '', 'an error stayed');
    await page.reload();
    check(await page.getByLabel('A tool failed: Email').isChecked(), 'the policy was not kept');
    check((await page.locator('input[name="escalate.email"]').inputValue()) === '10', 'the escalation was not kept');
    await screenshot(page, 'settings-desktop', true);
    say('PUSH_ON', { key, notice, failure, attempts });

    // The push the server sent to the subscription, handed to the service worker as the
    // browser's push service would: it shows the notification.
    const payload = await hear('PUSH');
    const cdp = await context.newCDPSession(page);
    const registrations = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
    await cdp.send('ServiceWorker.enable');
    for (let i = 0; i < 50 && !registrations.some((r) => !r.isDeleted); i++) await page.waitForTimeout(100);
    const registration = registrations.find((r) => !r.isDeleted);
    check(registration, 'no service worker registration');
    await cdp.send('ServiceWorker.deliverPushMessage', {
      origin, registrationId: registration.registrationId, data: JSON.stringify(payload),
    });
    let notifications = [];
    for (const until = Date.now() + TIMEOUT; !notifications.length && Date.now() < until;) {
      await page.waitForTimeout(100);
      notifications = await page.evaluate(async () => {
        const ready = await navigator.serviceWorker.ready;
        return (await ready.getNotifications()).map((n) => ({
          title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url,
        }));
      });
    }

    say('SHOWN', { notifications });

    // An approval's push: its Allow and Deny are the notification's buttons; pressing Allow
    // (the worker's notificationclick, driven with the notification the real payload made)
    // answers it without opening a page.
    const approval = await hear('PUSH');
    await cdp.send('ServiceWorker.deliverPushMessage', {
      origin, registrationId: registration.registrationId, data: JSON.stringify(approval),
    });
    const [worker] = context.serviceWorkers();
    check(worker, 'no service worker to drive');
    let buttons = [];
    for (const until = Date.now() + TIMEOUT; !buttons.length && Date.now() < until;) {
      await page.waitForTimeout(100);
      buttons = await worker.evaluate(async (id) => {
        const list = await self.registration.getNotifications();
        const n = list.find((x) => x.body === id);
        return n ? n.actions.map((a) => a.title) : [];
      }, approval.body);
    }
    const pressed = await worker.evaluate(async (id) => {
      const n = (await self.registration.getNotifications()).find((x) => x.body === id);
      const before = (await self.clients.matchAll({ type: 'window' })).length;
      try {
        self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n, action: '0' }));
      } catch (e) { /* a synthetic event's waitUntil throws after the handler started */ }
      await new Promise((r) => setTimeout(r, 500));
      const after = (await self.clients.matchAll({ type: 'window' })).length;
      return { before, after, left: (await self.registration.getNotifications()).length };
    }, approval.body);
    say('PRESSED', { buttons, pressed });

    // On a phone.
    const phone = await browser.newContext(PHONE);
    await phone.addCookies(await context.cookies());
    const small = await watchedPage(phone);
    await small.goto(base);
    // No room in a phone's top bar: Settings is in the Account menu.
    check(!(await small.locator('.nav-settings').isVisible()), 'the Settings nav link crowds the phone');
    await small.locator('summary', { hasText: 'Account' }).click();
    await small.getByRole('link', { name: 'Settings', exact: true }).click();
    await small.waitForURL(base + 'settings');
    await small.locator('.channel').first().waitFor();
    const wide = await small.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 390, 'the settings page is wider than the phone: ' + wide);
    await screenshot(small, 'settings-phone');
    calm(small);
    await phone.close();

    // Off again, and a channel removed.
    await page.getByRole('button', { name: 'Turn off on this device' }).click();
    await page.locator('#device-state', { hasText: 'Off.' }).waitFor();
    check(!(await page.locator('.channel[data-kind="web_push"]').count()), 'the device channel stayed');
    page.expectDialog = true;
    await page.getByRole('button', { name: 'Remove ' + webhook, exact: true }).click();
    await page.locator('#channels-status', { hasText: 'Removed ' + webhook }).waitFor();
    check(!(await page.getByRole('button', { name: 'Remove ' + webhook, exact: true }).count()), 'the webhook stayed');
    calm(page);
    told.lines.close();
    say('DONE', {});
    await browser.close();
  },

  /**
   * Decisions on the session page, on a desktop or (args.phone) a phone: options are buttons;
   * approvals show the tool call and are allowed after an edit, denied with a reason, allowed.
   */
  async decide() {
    const browser = await launch();
    const screen = args.phone ? PHONE : DESKTOP;
    const suffix = args.phone ? '-phone' : '-desktop';
    const page = await signIn(await browser.newContext(screen), args.link);
    await page.goto(base + 'sessions/' + args.session);
    const fits = async (what) => {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= screen.viewport.width, what + ' is wider than the screen: ' + wide);
    };
    const button = (name) => page.getByRole('button', { name, exact: true });

    // Options: one press answers.
    await button(args.option).waitFor();
    await fits('a question with options');
    await screenshot(page, 'options' + suffix);
    await (args.phone ? button(args.option).tap() : button(args.option).click());
    await page.locator('#timeline .item.user .tag', { hasText: 'Chose ' + args.option }).waitFor();
    await page.waitForFunction(() => !document.querySelector('#timeline .choices'));

    // A command to run: shown as a command; edited (invalid JSON first), then allowed.
    await page.locator('#timeline pre.command', { hasText: args.command }).waitFor();
    await fits('an approval');
    await screenshot(page, 'approval' + suffix);
    await button('Edit…').click();
    const input = page.getByRole('textbox', { name: 'Tool input (JSON)' });
    check(JSON.parse(await input.inputValue()).command === args.command, 'the editor holds the input');
    await input.fill('{"command": ');
    await button('Allow edited').click();
    await page.locator('.decide .error', { hasText: 'JSON object' }).waitFor();
    await input.fill(JSON.stringify({ command: args.edited_command }));
    await button('Allow edited').click();
    await page.locator('#timeline .edited', { hasText: args.edited_command }).waitFor();

    // A file edit: shown as a diff; denied with a reason.
    await page.locator('#timeline pre.diff .del', { hasText: args.old_line }).waitFor();
    await page.locator('#timeline pre.diff .add', { hasText: args.new_line }).waitFor();
    await fits('a file edit');
    await screenshot(page, 'approval-diff' + suffix, true);
    await button('Deny…').click();
    await page.getByRole('textbox', { name: 'Reason (optional)' }).fill(args.reason);
    await button('Deny').click();
    await page.locator('#timeline .item.user', { hasText: args.reason }).waitFor();
    await page.locator('#timeline .item.user .tag.denied', { hasText: 'Denied' }).waitFor();

    // Anything else: formatted JSON; allowed by keyboard.
    await page.locator('#timeline .approval', { hasText: args.other_tool_text }).waitFor();
    await button('Allow').focus();
    await page.keyboard.press('Enter');
    await page.locator('#timeline .item.user .tag.allowed', { hasText: 'Allowed' }).nth(1).waitFor();
    calm(page);
    say('DONE');
    await browser.close();
  },
};

/** The card of question `id` on `page`. */
const card = (page, id) => page.locator('#timeline > li[data-question-id="' + id + '"]');

/** Wait until question `id` shows `status` on `page`, without a control that answers it. */
async function closed(page, id, status) {
  await page.locator('#timeline > li[data-question-id="' + id + '"][data-question-status="' + status + '"]').waitFor();
  const controls = await card(page, id).locator('.decide, .choices').count();
  check(controls === 0, 'question ' + id + ' is ' + status + ' but still offers answers');
}

scenarios.questions = async function questions() {
  listen();
  const browser = await launch();
  const screen = args.phone ? PHONE : DESKTOP;
  const suffix = args.phone ? '-phone' : '-desktop';
  const context = await browser.newContext(screen);
  const page = await signIn(context, args.link);
  await page.goto(base + 'sessions/' + args.session);
  const fits = async (what) => {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= screen.viewport.width, what + ' is wider than the screen: ' + wide);
  };
  const { older, newer, withdrawn, options, plain } = args.questions;
  // Both approvals are open, each with its own Allow; the newer one's flags are badges.
  for (const id of [older, newer, withdrawn]) {
    await card(page, id).getByRole('button', { name: 'Allow', exact: true }).waitFor();
  }
  await card(page, newer).locator('.badge.flag.danger', { hasText: 'sandbox off' }).waitFor();
  await card(page, newer).locator('.other-input', { hasText: 'ticket' }).waitFor();
  await page.locator('.count-pill', { hasText: 'questions open' }).waitFor();
  await fits('two open approvals');
  await screenshot(page, 'questions' + suffix, true);

  // The older one first: allowed. The newer one stays open.
  await card(page, older).getByRole('button', { name: 'Allow', exact: true }).click();
  await closed(page, older, 'answered');
  await card(page, older).locator('.badge.allowed').waitFor();
  check(await card(page, newer).getByRole('button', { name: 'Allow', exact: true }).isVisible(),
    'the newer approval lost its buttons');
  say('ALLOWED_OLDER');
  await hear('DENY_NEWER');
  await card(page, newer).getByRole('button', { name: 'Deny…' }).click();
  await card(page, newer).getByRole('textbox', { name: 'Reason (optional)' }).fill(args.reason);
  await card(page, newer).getByRole('button', { name: 'Deny', exact: true }).click();
  await closed(page, newer, 'answered');
  await card(page, newer).locator('.badge.denied').waitFor();
  await page.locator('#timeline .item.user .tag.denied', { hasText: 'Denied' }).waitFor();
  say('DENIED_NEWER');

  // The agent gives up on one: it shows withdrawn, live, with the reason, and no buttons.
  await hear('WITHDRAWN');
  await closed(page, withdrawn, 'withdrawn');
  await card(page, withdrawn).locator('.q-status', { hasText: args.withdraw_reason }).waitFor();

  // Two tabs press different options at once: one wins, the other says it was answered.
  const other = await watchedPage(context);
  await other.goto(base + 'sessions/' + args.session);
  await card(other, options).getByRole('button', { name: 'Green', exact: true }).waitFor();
  // Both presses at one instant (the tabs share a clock), before either hears of the other.
  const at = Date.now() + 400;
  const press = (p, option) => p.evaluate(([id, option, at]) => new Promise((done) => {
    setTimeout(() => {
      document.querySelector('#timeline > li[data-question-id="' + id + '"] button[data-answer="' + option + '"]').click();
      done();
    }, Math.max(0, at - Date.now()));
  }), [options, option, at]);
  await Promise.all([press(page, 'Red'), press(other, 'Green')]);
  await closed(page, options, 'answered');
  await closed(other, options, 'answered');
  // The tab whose press lost is told (its answer was refused), and keeps saying so.
  let errors = [];
  for (const until = Date.now() + TIMEOUT; Date.now() < until;) {
    errors = [];
    for (const p of [page, other]) {
      errors.push(await card(p, options).evaluate((li) => [...li.querySelectorAll('.error')].map((e) => e.textContent).join('')));
    }
    if (errors.some((e) => e)) break;
    await page.waitForTimeout(100);
  }
  say('RACED', { errors });
  await other.close();
  await hear('COMPOSE');

  // The reply box answers the newest open question in words, and says so; "Answer" on
  // another question makes the reply box answer that one.
  const reply = page.getByRole('textbox', { name: 'Reply' });
  await page.locator('#reply-target-text', { hasText: args.newest_text }).waitFor();
  await card(page, plain).getByRole('button', { name: 'Answer', exact: true }).click();
  await page.locator('#reply-target-text', { hasText: args.plain_text }).waitFor();
  await reply.fill(args.draft);
  // A typed reply survives a reload.
  await page.reload();
  await page.locator('#reply-target-text', { hasText: args.plain_text }).waitFor();
  check((await reply.inputValue()) === args.draft, 'the draft was lost: ' + await reply.inputValue());
  // A long message folds, and unfolds.
  const unfold = page.getByRole('button', { name: 'Show all' });
  await unfold.click();
  await page.getByRole('button', { name: 'Show less' }).waitFor();
  // A dropped stream says so, and recovers.
  say('OFFLINE');
  await page.locator('#connection').waitFor({ state: 'visible' });
  await page.locator('#connection').waitFor({ state: 'hidden', timeout: 20000 });
  await reply.focus();
  await page.keyboard.press('Enter');
  await page.locator('#timeline .item.user', { hasText: args.draft }).waitFor();
  await closed(page, plain, 'answered');
  await fits('the answered questions');
  say('COMPOSED');

  // The person renames the session, in place.
  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByRole('textbox', { name: 'Title' }).fill(args.new_title);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#session-title', { hasText: args.new_title }).waitFor();
  say('RENAMED');

  // The session ends: what it still asked is withdrawn, and the reply box gives way.
  await hear('ENDED');
  await closed(page, args.questions.last, 'withdrawn');
  await page.locator('p#composer.ended-note').waitFor();
  // Nothing waits any more: the tab's title and the badge say so.
  await page.locator('#waiting-badge').waitFor({ state: 'hidden' });
  check(!(await page.title()).startsWith('('), 'the title still counts waiting sessions');
  await screenshot(page, 'questions-closed' + suffix, true);
  calm(page);
  say('DONE');
  told.lines.close();
  await browser.close();
};

/**
 * A real Claude Code run, live: the session appears with its title; what the person typed in
 * the terminal, the tool calls (folded when many), the approval (allowed here), Claude's
 * final message and "what next?" (answered from the reply box); then it exits.
 */
scenarios.claude_code = async function claudeCode() {
  listen();
  const browser = await launch();
  const screen = args.phone ? PHONE : DESKTOP;
  const suffix = args.phone ? '-phone' : '-desktop';
  const context = await browser.newContext(screen);
  const page = await signIn(context, args.link);
  const fits = async (what) => {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= screen.viewport.width, what + ' is wider than the screen: ' + wide);
  };
  // The session appears in the open inbox, named after the prompt.
  const row = page.locator('#rows li', { hasText: args.title });
  await row.waitFor({ timeout: 60000 });
  await row.locator('a').first().click();
  await page.waitForSelector('#timeline');
  await page.locator('#timeline .item.user .via.terminal').waitFor();
  // The approval: allowed here, and the tool runs.
  const approval = page.locator('#timeline > li[data-question-kind="approval"][data-question-status="open"]');
  await approval.getByRole('button', { name: 'Allow', exact: true }).waitFor({ timeout: 60000 });
  await fits('the approval');
  await screenshot(page, 'claude-code-approval' + suffix);
  await approval.getByRole('button', { name: 'Allow', exact: true }).click();
  say('ALLOWED');
  // Claude finished: "what next?", answered from the reply box.
  const next = page.locator('#timeline > li[data-question-kind="next_instruction"][data-question-status="open"]');
  await next.waitFor({ timeout: 60000 });
  await page.locator('#reply-target-text', { hasText: args.final_text }).waitFor();
  await fits('the question what next');
  await screenshot(page, 'claude-code-what-next' + suffix);
  const reply = page.getByRole('textbox', { name: 'Reply' });
  await reply.fill(args.instruction);
  await page.keyboard.press('Enter');
  await page.locator('#timeline .item.user', { hasText: args.instruction }).waitFor();
  say('INSTRUCTED');
  // It exits: the page says it is not running, and that messages wait for its next run.
  await hear('EXITED');
  await page.locator('#not-running').waitFor({ timeout: 20000 });
  await page.locator('.pill', { hasText: 'Not running' }).waitFor();
  // Many tool calls in a row fold to the last few; they unfold on demand.
  const fold = page.locator('.fold-run button');
  await fold.waitFor();
  const shownBefore = await page.locator('#timeline .item.activity:visible').count();
  const failed = await page.locator('#timeline .item.activity[data-ok="false"]').count();
  check(failed >= 1, 'a failed tool call is not marked');
  const tall = await page.evaluate(() => Math.max(...[...document.querySelectorAll('.item.activity .tool-line')].map((c) => c.getBoundingClientRect().height)));
  check(tall < 30, 'a tool call takes more than a line: ' + tall + ' px');
  await fits('the session');
  await screenshot(page, 'claude-code-session' + suffix, true);
  await fold.click();
  const shownAfter = await page.locator('#timeline .item.activity:visible').count();
  check(shownAfter > shownBefore, 'unfolding showed nothing: ' + shownBefore + ' → ' + shownAfter);
  calm(page);
  say('DONE', { activity: shownAfter });
  told.lines.close();
  await browser.close();
};

// Connecting an app by OAuth: signed in by a link, the person opens the authorization URL the
// app's SDK made, sees the consent page (desktop and phone), allows; Settings then lists the
// app, and Disconnect ends it.
scenarios['connect-app'] = async () => {
  listen();
  const browser = await launch();
  const context = await browser.newContext(DESKTOP);
  const page = await signIn(context, args.link);
  const { url } = await hear('AUTHORIZE');
  await page.goto(url);
  await page.waitForSelector('body[data-page="connect"]');
  const heading = await page.textContent('h1');
  check(heading.includes(args.app), 'the consent page names the app: ' + heading);
  const facts = await page.textContent('.facts');
  check(facts.includes(args.vouched_by), 'the page says who vouches for the app: ' + facts);
  await screenshot(page, 'connect-app' + args.suffix);
  const phone = await browser.newContext({ ...PHONE, storageState: await context.storageState() });
  const small = await watchedPage(phone);
  await small.goto(url);
  await small.waitForSelector('body[data-page="connect"]');
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  check(overflow <= 0, 'the consent page fits a phone (' + overflow + ' px too wide)');
  await screenshot(small, 'connect-app' + args.suffix + '-phone');
  calm(small);
  await phone.close();
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(args.redirect)),
    page.click('button[value="allow"]'),
  ]);
  say('ALLOWED', { url: page.url() });
  await hear('CONNECTED');
  await page.goto(base + 'settings');
  await page.waitForSelector('#app-list li');
  const listed = await page.textContent('#app-list');
  check(listed.includes(args.app), 'Settings lists the app: ' + listed);
  await page.locator('#apps').scrollIntoViewIfNeeded();
  await screenshot(page, 'settings-connected-apps' + args.suffix);
  page.expectDialog = true;
  await page.click('button[data-action="disconnect-app"]');
  await page.waitForSelector('#apps-none:not([hidden])');
  const said = await page.textContent('#apps-status');
  check(said.includes('Disconnected'), 'the page says the app was disconnected: ' + said);
  calm(page);
  say('DISCONNECTED', {});
  told.lines.close();
  await browser.close();
};

(async () => {
  const run = scenarios[scenario];
  check(run, 'no scenario ' + scenario);
  await run();
})().catch((e) => {
  process.stderr.write((e && e.stack) || String(e));
  process.stderr.write('\n');
  process.exit(1);
});
