// Switchboard's service worker. Phones show notifications only through a service worker
// (registration.showNotification); clicking one opens the session it is about, in a tab of
// the inbox that is already open when there is one. It shows the web pushes the server sends
// to this browser's subscription (a `web_push` channel; see the settings page). It caches
// nothing.
'use strict';

self.addEventListener('install', () => self.skipWaiting());

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// A push is JSON (`Notification::push_body` on the server): title, body, url, type,
// session_id. A question's notification has the tag the open inbox gives its own, so the two
// never show the same question twice. It opens the session in this inbox (the scope the worker
// serves), whatever public URL the server was told.
self.addEventListener('push', (event) => {
  let push = {};
  try { push = event.data ? event.data.json() : {}; } catch (e) { /* show the default */ }
  const text = (value, fallback) => (typeof value === 'string' && value ? value : fallback);
  const tag = push.type === 'question.asked' && push.session_id
    ? 'question-' + push.session_id : text(push.tag, undefined);
  // A question's answers are buttons (the capability URL each gives its answer with); only
  // this server's URLs are kept.
  const scope = self.registration.scope;
  const answers = (Array.isArray(push.actions) ? push.actions : []).filter((a) => a
    && typeof a.option === 'string' && typeof a.url === 'string' && a.url.startsWith(scope))
    .slice(0, 2);
  event.waitUntil(self.registration.showNotification(text(push.title, 'Switchboard'), {
    body: text(push.body, 'An agent needs you.'),
    tag,
    actions: answers.map((a, i) => ({ action: String(i), title: a.option })),
    data: {
      url: scope + (typeof push.session_id === 'string'
        ? 'sessions/' + encodeURIComponent(push.session_id) : ''),
      answers: answers.map((a) => a.url),
    },
    icon: scope + 'assets/icon-192.png',
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const scope = self.registration.scope;
  const data = event.notification.data || {};
  // An answer button: given here, no page opened. If it is refused (the question closed
  // meanwhile), the question opens, where it says how.
  const answer = event.action && Array.isArray(data.answers) ? data.answers[Number(event.action)] : null;
  if (typeof answer === 'string' && answer.startsWith(scope)) {
    event.waitUntil(fetch(answer, { method: 'POST' }).then((r) => {
      if (!r.ok && typeof data.url === 'string') return self.clients.openWindow(data.url);
      return undefined;
    }));
    return;
  }
  const wanted = data.url;
  // Only pages of this inbox are opened.
  const url = typeof wanted === 'string' && wanted.startsWith(scope) ? wanted : scope;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const same = windows.find((client) => client.url === url);
    if (same) return same.focus();
    const inbox = windows.find((client) => client.url.startsWith(scope) && 'navigate' in client);
    if (inbox) {
      await inbox.focus();
      return inbox.navigate(url);
    }
    return self.clients.openWindow(url);
  })());
});

// The browser renewed or dropped this device's subscription: register the new one, saying
// which it replaces, so that the server removes the old channel instead of failing on it.
self.addEventListener('pushsubscriptionchange', (event) => {
  const scope = self.registration.scope;
  event.waitUntil((async () => {
    const old = event.oldSubscription;
    let subscription = event.newSubscription;
    if (!subscription) {
      const r = await fetch(scope + 'api/v1/notifications/vapid-public-key');
      if (!r.ok) return;
      const text = (await r.json()).public_key;
      const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
      const key = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      subscription = await self.registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: key,
      });
    }
    await fetch(scope + 'api/v1/notifications/channels', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        kind: 'web_push', subscription: subscription.toJSON(),
        replaces: old ? old.endpoint : undefined,
      }),
    });
  })());
});
