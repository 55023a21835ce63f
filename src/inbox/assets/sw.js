// Switchboard's service worker. Phones show notifications only through a service worker
// (registration.showNotification); clicking one opens the session it is about, in a tab of
// the inbox that is already open when there is one. It caches nothing.
'use strict';

self.addEventListener('install', () => self.skipWaiting());

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const scope = self.registration.scope;
  const wanted = event.notification.data && event.notification.data.url;
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
