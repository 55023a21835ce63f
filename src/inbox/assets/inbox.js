// Switchboard inbox: live updates, the reply box, notifications. No framework, no build step.
//
// Pages are rendered on the server. This script listens to the tenant's event stream and, when
// something changed, fetches the server-rendered fragment and swaps it in. Text from agents
// only ever arrives inside that HTML, escaped by the server; nothing here builds markup from
// event data (notifications get plain text, which browsers never interpret).
(() => {
  'use strict';

  const base = document.documentElement.dataset.base || '/';
  const body = document.body;
  const page = body.dataset.page;
  const heading = body.dataset.heading || 'Inbox';
  const sessionId = body.dataset.session || null;
  const EVENT_TYPES = [
    'session_started', 'agent_message', 'user_message', 'input_requested',
    'messages_read', 'messages_received', 'messages_returned', 'git_diff_updated',
    'session_ended', 'question_withdrawn', 'question_expired', 'session_described',
    'agent_exited',
  ];

  // ---------------------------------------------------------------- signing in

  if (page === 'sign-in-link') {
    // Opening a sign-in link signs in; a link preview that only fetches the page does not.
    const form = document.getElementById('link-sign-in');
    if (form) form.submit();
    return;
  }

  if (page === 'sign-in') {
    // The session cookie is SameSite=Strict, so a page opened from another site (a mail, a
    // chat, a notification) arrives here without it. Ask from this page, which gets it.
    const next = (document.querySelector('input[name="next"]') || {}).value || '';
    const guard = 'switchboard-sign-in-retry';
    const last = Number(sessionStorage.getItem(guard) || 0);
    if (Date.now() - last > 10000) {
      fetch(base + 'api/v1/auth/verify', { credentials: 'same-origin' }).then((r) => {
        if (r.ok) {
          sessionStorage.setItem(guard, String(Date.now()));
          location.replace(base + next);
        }
      }, () => {});
    }
    return;
  }

  if (page !== 'inbox' && page !== 'session' && page !== 'settings') return;

  function toSignIn() {
    const next = sessionId ? 'sessions/' + sessionId : '';
    location.assign(base + 'login' + (next ? '?next=' + encodeURIComponent(next) : ''));
  }

  // ---------------------------------------------------------------- title, badge, times

  function setWaiting(n) {
    if (!Number.isFinite(n)) return;
    document.title = (n > 0 ? '(' + n + ') ' : '') + heading + ' · Switchboard';
    const badge = document.getElementById('waiting-badge');
    if (badge) {
      badge.textContent = String(n);
      badge.setAttribute('aria-label', n + ' waiting');
      badge.hidden = n === 0;
    }
  }

  function relative(at) {
    const ahead = (at - Date.now()) / 1000;
    if (ahead > 0) {
      if (ahead < 45) return 'in a moment';
      if (ahead < 3600) return 'in ' + Math.floor((ahead + 30) / 60) + ' min';
      if (ahead < 86400) return 'in ' + Math.floor(ahead / 3600) + ' h';
      return 'in ' + Math.floor(ahead / 86400) + ' days';
    }
    const s = Math.max(0, (Date.now() - at) / 1000);
    if (s < 45) return 'just now';
    if (s < 3600) return Math.floor((s + 30) / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    if (s < 172800) return 'yesterday';
    if (s < 604800) return Math.floor(s / 86400) + ' days ago';
    return null;
  }

  function updateTimes() {
    for (const t of document.querySelectorAll('time[datetime]')) {
      const text = relative(Date.parse(t.getAttribute('datetime')));
      if (text && t.textContent !== text) t.textContent = text;
    }
  }
  setInterval(updateTimes, 30000);

  // ---------------------------------------------------------------- fragments

  /** Run `work` now, or once more right after the run in progress: never two at a time. */
  function coalesced(work) {
    let running = false;
    let again = false;
    return async function run() {
      if (running) { again = true; return; }
      running = true;
      try {
        do { again = false; await work(); } while (again);
      } catch (e) {
        // The next event or reconnect tries again.
      } finally {
        running = false;
      }
    };
  }

  async function fragment(path) {
    const r = await fetch(base + path, { credentials: 'same-origin' });
    if (r.status === 401) { toSignIn(); return null; }
    if (!r.ok) return null;
    return new DOMParser().parseFromString(await r.text(), 'text/html');
  }

  /** Replace the element with `fresh`'s id, keeping keyboard focus on the same control. */
  function replace(fresh) {
    const current = fresh && document.getElementById(fresh.id);
    if (!current) return;
    const focused = document.activeElement;
    const key = focused && current.contains(focused)
      ? (focused.getAttribute('href') || (focused.id && '#' + focused.id)) : null;
    current.replaceWith(document.adoptNode(fresh));
    if (key) {
      const again = key.startsWith('#')
        ? document.getElementById(key.slice(1))
        : fresh.querySelector('[href="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
  }

  /** The list's query as the page shows it: filter, search, and how many rows it holds. */
  function listQuery(extra) {
    const sessions = document.getElementById('sessions');
    const params = new URLSearchParams();
    if (sessions && sessions.dataset.show) params.set('show', sessions.dataset.show);
    if (sessions && sessions.dataset.q) params.set('q', sessions.dataset.q);
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    return params;
  }

  const refreshList = coalesced(async () => {
    // As many rows as the page shows (it may have asked for more), the first page at least.
    const shown = document.querySelectorAll('#rows > li').length;
    const params = listQuery({ limit: String(Math.min(500, Math.max(50, shown))) });
    const doc = await fragment('inbox/list?' + params);
    const fresh = doc && doc.getElementById('sessions');
    if (!fresh) return;
    replace(fresh);
    setWaiting(Number(fresh.dataset.waiting));
    updateTimes();
  });

  /** "Show more": the next page of the list, appended. */
  async function showMore(button) {
    button.disabled = true;
    try {
      const params = listQuery({
        after_waiting: button.dataset.afterWaiting,
        after_at: button.dataset.afterAt,
        after_id: button.dataset.afterId,
      });
      const doc = await fragment('inbox/list?' + params);
      const fresh = doc && doc.getElementById('sessions');
      if (!fresh) { button.disabled = false; return; }
      const rows = document.getElementById('rows');
      for (const li of fresh.querySelectorAll('#rows > li')) rows.append(document.adoptNode(li));
      const next = fresh.querySelector('#more');
      if (next) button.replaceWith(document.adoptNode(next)); else button.remove();
      updateTimes();
    } catch (e) {
      button.disabled = false;
    }
  }

  if (page === 'inbox') {
    const filter = document.getElementById('list-filter');
    const applyFilter = async () => {
      const params = new URLSearchParams(new FormData(filter));
      for (const [k, v] of [...params]) if (!v) params.delete(k);
      const doc = await fragment('inbox/list?' + params);
      const fresh = doc && doc.getElementById('sessions');
      if (!fresh) return;
      replace(fresh);
      history.replaceState(null, '', base + (params.toString() ? '?' + params : ''));
      updateTimes();
    };
    if (filter) {
      filter.addEventListener('submit', (e) => { e.preventDefault(); applyFilter(); });
      filter.querySelector('select').addEventListener('change', applyFilter);
      let typing = null;
      filter.querySelector('input[type="search"]').addEventListener('input', () => {
        clearTimeout(typing);
        typing = setTimeout(applyFilter, 250);
      });
    }
    document.addEventListener('click', (e) => {
      const more = e.target.closest && e.target.closest('#more');
      if (more) showMore(more);
    });
  }

  function lastSeq() {
    let seq = 0;
    for (const li of document.querySelectorAll('#timeline > li[data-seq]')) {
      seq = Math.max(seq, Number(li.dataset.seq));
    }
    return seq;
  }

  const refreshSession = coalesced(async () => {
    for (;;) {
      const doc = await fragment('inbox/sessions/' + sessionId + '?after=' + lastSeq());
      const update = doc && doc.getElementById('update');
      if (!update) return;
      // A title being edited is not replaced under the person's fingers.
      const renaming = document.getElementById('rename-form');
      if (!renaming || renaming.hidden) replace(doc.getElementById('session-head'));
      replace(doc.getElementById('changes'));
      const timeline = document.getElementById('timeline');
      const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 160;
      const known = lastSeq();
      const items = [...doc.querySelectorAll('#new-items > li')];
      for (const li of items) {
        if (Number(li.dataset.seq) <= known) continue;
        li.classList.add('fresh');
        timeline.append(document.adoptNode(li));
      }
      // Question cards whose state changed (answered elsewhere, withdrawn, nobody waiting):
      // replaced, unless the page already shows that state (a half-typed reason stays).
      for (const card of doc.querySelectorAll('#cards > li[id]')) {
        const current = document.getElementById(card.id);
        if (current && current.dataset.state !== card.dataset.state) {
          // What the person was told about it (answered in another tab, say) stays.
          const told = current.querySelector('.error');
          const fresh = document.adoptNode(card);
          current.replaceWith(fresh);
          if (told && told.textContent) {
            const note = document.createElement('p');
            note.className = 'error';
            note.setAttribute('role', 'alert');
            note.textContent = told.textContent;
            fresh.querySelector('.bubble').append(note);
          }
        }
      }
      markDelivered(update.dataset.unread);
      foldRuns();
      const notRunning = document.getElementById('not-running');
      if (notRunning) notRunning.hidden = update.dataset.liveness !== 'exited';
      setWaiting(Number(update.dataset.waiting));
      if (update.dataset.status === 'ended') endComposer();
      else settleTarget(update.dataset.defaultTarget || '');
      updateTimes();
      if (items.length && nearBottom) window.scrollTo({ top: document.body.scrollHeight });
      if (update.dataset.more !== 'true') return;
    }
  });

  // The person's messages the agent has received since: no longer "not delivered yet".
  function markDelivered(list) {
    if (list === undefined) return;
    const unread = new Set(list.split(' ').filter(Boolean));
    for (const li of document.querySelectorAll('#timeline > li.user[data-pending]')) {
      if (unread.has(li.dataset.messageId)) continue;
      delete li.dataset.pending;
      const said = li.querySelector('.handover');
      if (said) said.textContent = 'Delivered';
    }
  }

  // Copy buttons: the text of the element they name.
  document.addEventListener('click', async (e) => {
    const button = e.target.closest && e.target.closest('button[data-copy]');
    if (!button) return;
    const value = document.getElementById(button.dataset.copy);
    const said = button.closest('.connect') && button.closest('.connect').querySelector('.copied');
    try {
      await navigator.clipboard.writeText(value.textContent);
      if (said) said.textContent = 'Copied.';
    } catch (err) {
      getSelection().selectAllChildren(value);
      if (said) said.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });

  // Runs of tool calls fold to their last few, behind "N more tool calls".
  const RUN_FOLDS_AT = 4;
  const RUN_SHOWS = 2;
  function foldRuns() {
    const timeline = document.getElementById('timeline');
    if (!timeline) return;
    let run = [];
    const flush = () => {
      if (run.length >= RUN_FOLDS_AT && !run[0].dataset.expanded) {
        let fold = run[0].previousElementSibling;
        if (!fold || !fold.classList.contains('fold-run')) {
          fold = document.createElement('li');
          fold.className = 'item fold-run';
          const button = document.createElement('button');
          button.type = 'button';
          button.className = 'ghost';
          button.setAttribute('aria-expanded', 'false');
          fold.append(button);
          run[0].before(fold);
        }
        const folded = run.length - RUN_SHOWS;
        run.forEach((li, i) => li.classList.toggle('folded', i < folded));
        fold.firstChild.textContent = folded + ' earlier tool calls';
      }
      run = [];
    };
    for (const li of timeline.children) {
      if (li.classList.contains('activity')) run.push(li);
      else if (!li.classList.contains('fold-run') && !li.hidden) flush();
    }
    flush();
  }
  document.addEventListener('click', (e) => {
    const button = e.target.closest && e.target.closest('.fold-run button');
    if (!button) return;
    const fold = button.parentElement;
    let next = fold.nextElementSibling;
    if (next) next.dataset.expanded = 'true';
    while (next && (next.classList.contains('activity') || next.hidden)) {
      next.classList.remove('folded');
      next = next.nextElementSibling;
    }
    fold.remove();
  });

  // Who waits for a question changes without an event: look again now and then.
  if (page === 'session') setInterval(() => refreshSession(), 30000);

  const refreshWaiting = coalesced(async () => {
    const r = await fetch(base + 'inbox/waiting', { credentials: 'same-origin' });
    if (r.status === 401) { toSignIn(); return; }
    if (r.ok) setWaiting(Number((await r.json()).waiting));
  });

  function refresh() {
    if (page === 'inbox') refreshList();
    else if (page === 'session') refreshSession();
    else refreshWaiting();
  }

  // ---------------------------------------------------------------- the event stream

  let stream = null;

  function onEvent(message) {
    let event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    if (page === 'inbox') refreshList();
    else if (page === 'session' && event.session_id === sessionId) refreshSession();
    else refreshWaiting();
    // What happens may call for notifications: the settings page shows their deliveries.
    if (page === 'settings') settingsSoon();
    notify(event);
  }

  const connection = document.getElementById('connection');
  function connected(ok) {
    if (connection) connection.hidden = ok;
    // Whether the page follows what happens (what tests and tools can wait for).
    document.documentElement.dataset.stream = ok ? 'open' : 'closed';
  }

  function connect() {
    stream = new EventSource(base + 'api/v1/stream');
    for (const type of EVENT_TYPES) stream.addEventListener(type, onEvent);
    // What committed before the stream began is in a fragment; what after, on the stream.
    stream.addEventListener('open', () => { connected(true); refresh(); });
    stream.addEventListener('error', () => {
      connected(false);
      if (stream.readyState !== EventSource.CLOSED) return;
      // Refused (signed out, or the server is away): which one?
      fetch(base + 'api/v1/auth/verify', { credentials: 'same-origin' }).then((r) => {
        if (r.status === 401) toSignIn();
        else setTimeout(connect, 3000);
      }, () => setTimeout(connect, 3000));
    });
  }
  connect();

  // ---------------------------------------------------------------- notifications

  let worker = null;
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register(base + 'sw.js', { scope: base })
      .then((registration) => { worker = registration; }, () => {});
  }

  // Web push to this device: a push subscription of this browser, registered as one of the
  // tenant's `web_push` channels. The browser keeps the subscription; which channel it made is
  // remembered here, so that it can be turned off again.
  const PUSH_CHANNEL = 'switchboard-push-channel';
  const pushSupported = 'serviceWorker' in navigator && 'PushManager' in window
    && 'Notification' in window;

  /** The bytes of a base64url text (the server's VAPID public key). */
  function base64urlBytes(text) {
    const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function turnOnPush() {
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      throw new Error(permission === 'denied'
        ? 'Notifications are blocked for this site: allow them in the browser\'s site settings.'
        : 'Notifications were not allowed.');
    }
    const registration = await navigator.serviceWorker.ready;
    const r = await fetch(base + 'api/v1/notifications/vapid-public-key', { credentials: 'same-origin' });
    if (!r.ok) throw new Error('The server did not say how to subscribe (' + r.status + ').');
    const key = base64urlBytes((await r.json()).public_key);
    // A subscription this page did not register (another server key, a forgotten channel) is
    // replaced, and its channel removed, so that one browser is one channel.
    const previous = localStorage.getItem(PUSH_CHANNEL);
    if (previous) await removeChannel(previous);
    const old = await registration.pushManager.getSubscription();
    if (old) await old.unsubscribe();
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: key,
    });
    const made = await post('api/v1/notifications/channels', {
      kind: 'web_push', subscription: subscription.toJSON(),
      replaces: old ? old.endpoint : undefined,
    });
    if (made) localStorage.setItem(PUSH_CHANNEL, (await made.json()).id);
  }

  async function turnOffPush() {
    const id = localStorage.getItem(PUSH_CHANNEL);
    if (id) await removeChannel(id);
    localStorage.removeItem(PUSH_CHANNEL);
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.getSubscription();
    if (subscription) await subscription.unsubscribe();
  }

  /** Remove one of the tenant's channels; one that is gone already is fine. */
  async function removeChannel(id) {
    try {
      await send('DELETE', 'api/v1/notifications/channels/' + encodeURIComponent(id));
    } catch (err) {
      if (err.status !== 404) throw err;
    }
  }

  // The top bar's control: notifications on this device, by push where the browser can (the
  // tab may be closed), else while the tab is open. The settings page has its own controls.
  const toggle = document.getElementById('notify-toggle');
  let pushFailed = false;
  function showToggle() {
    if (!toggle || !('Notification' in window) || page === 'settings') return;
    toggle.hidden = !(Notification.permission === 'default'
      || (pushSupported && !pushFailed && Notification.permission === 'granted'
        && !localStorage.getItem(PUSH_CHANNEL)));
  }
  if (toggle) {
    showToggle();
    toggle.addEventListener('click', async () => {
      toggle.disabled = true;
      try {
        if (pushSupported) await turnOnPush();
        else await Notification.requestPermission();
      } catch (err) {
        // Notifications while the tab is open still work if permission was given.
        pushFailed = true;
      } finally {
        toggle.disabled = false;
        showToggle();
      }
    });
  }

  function notify(event) {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    if (document.visibilityState === 'visible' && document.hasFocus()) return;
    const data = event.data || {};
    const asked = (event.type === 'agent_message' && data.requires_user_input === true)
      || event.type === 'input_requested';
    if (!asked) return;
    const url = new URL(base + 'sessions/' + event.session_id, location.href).href;
    const text = typeof data.content === 'string' ? data.content : 'An agent asked for a reply.';
    const options = {
      body: text.length > 180 ? text.slice(0, 179) + '…' : text,
      tag: 'question-' + event.session_id,
      data: { url },
      icon: base + 'assets/icon-192.png',
    };
    const title = 'An agent is waiting for you';
    if (worker) {
      worker.showNotification(title, options);
    } else {
      const shown = new Notification(title, options);
      shown.onclick = () => { window.focus(); location.assign(url); };
    }
  }

  // ---------------------------------------------------------------- replying, ending

  function randomKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** A REST call with the cookie: the response, null when signed out, else an error that
   * carries the API's `detail` and the status. */
  async function send(method, path, payload, idempotencyKey) {
    const headers = {};
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const r = await fetch(base + path, {
      method, credentials: 'same-origin', headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    if (r.status === 401) { toSignIn(); return null; }
    if (r.ok) return r;
    let detail = 'Something went wrong (' + r.status + ').';
    try { detail = (await r.json()).detail || detail; } catch (e) { /* keep the status */ }
    const error = new Error(detail);
    error.status = r.status;
    throw error;
  }

  function post(path, payload, idempotencyKey) {
    return send('POST', path, payload, idempotencyKey);
  }

  function endComposer() {
    const composer = document.getElementById('composer');
    if (!composer || composer.tagName !== 'FORM') return;
    const note = document.createElement('p');
    note.id = 'composer';
    note.className = 'ended-note';
    note.textContent = 'This session has ended.';
    composer.replaceWith(note);
  }

  // The reply box answers one question (shown as "Answering: …"), or none. It never leaves the
  // server to guess: it sends the question's id, or null for a message that answers nothing.
  const form = document.getElementById('composer');
  const reply = document.getElementById('reply');
  const targetInput = document.getElementById('reply-question');
  const DRAFT = 'switchboard-draft:' + sessionId;
  // The person chose "Not an answer" (so a newly open question does not become the target).
  let plainChosen = false;

  /** The question card of `id` on the page, when it can still be answered. */
  function answerable(id) {
    const card = id && document.querySelector('#timeline > li[data-question-id="' + CSS.escape(id) + '"]');
    return card && card.dataset.questionStatus === 'open' && (card.dataset.state || '').endsWith(':a')
      ? card : null;
  }

  /** Answer `id` with the reply box (or nothing, for ''), saying so above it. */
  function setTarget(id) {
    const box = document.getElementById('reply-target');
    const text = document.getElementById('reply-target-text');
    // No reply box (the session ended): nothing to aim.
    if (!targetInput || !box || !text) return;
    const card = answerable(id);
    if (!card) id = '';
    targetInput.value = id;
    box.hidden = !id;
    if (id) {
      const said = card.querySelector('.md');
      const words = (said ? said.textContent : '').replace(/\s+/g, ' ').trim();
      text.textContent = words.length > 120 ? words.slice(0, 119) + '…' : words;
    }
  }

  /** After an update: keep the target while it is open, else take the server's default. */
  function settleTarget(fallback) {
    if (!targetInput || !document.getElementById('reply-target')) return;
    if (answerable(targetInput.value)) return;
    setTarget(plainChosen ? '' : fallback);
  }

  if (form && reply && form.tagName === 'FORM') {
    const error = document.getElementById('composer-error');
    const send = form.querySelector('button[type="submit"]');
    // One key per draft: sending it again (a double press, a retry) appends it once.
    let draftKey = randomKey();
    const grow = () => {
      reply.style.height = 'auto';
      reply.style.height = reply.scrollHeight + 2 + 'px';
    };
    // A typed reply survives a reload, with the question it answers (while that is open).
    const keep = () => {
      try {
        if (reply.value) {
          localStorage.setItem(DRAFT, JSON.stringify({ text: reply.value, question: targetInput.value }));
        } else {
          localStorage.removeItem(DRAFT);
        }
      } catch (e) { /* storage unavailable */ }
    };
    try {
      const kept = JSON.parse(localStorage.getItem(DRAFT) || 'null');
      if (kept && typeof kept.text === 'string') {
        reply.value = kept.text;
        grow();
        if (kept.question && answerable(kept.question)) setTarget(kept.question);
        else if (kept.question === '') { plainChosen = true; setTarget(''); }
      }
    } catch (e) { /* storage unavailable, or an old draft: none */ }
    reply.addEventListener('input', () => { grow(); keep(); });
    reply.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    document.getElementById('reply-target-clear').addEventListener('click', () => {
      plainChosen = true;
      setTarget('');
      keep();
      reply.focus();
    });
    form.keep = keep;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const content = reply.value;
      if (!content.trim()) return;
      send.disabled = true;
      error.textContent = '';
      try {
        const sent = await post('api/v1/messages/user', {
          agent_instance_id: sessionId, content, mark_as_read: false,
          question_id: targetInput.value || null,
        }, draftKey);
        if (sent) {
          reply.value = '';
          try { localStorage.removeItem(DRAFT); } catch (err) { /* storage unavailable */ }
          draftKey = randomKey();
          grow();
          refreshSession();
        }
      } catch (err) {
        error.textContent = err.message;
        if (err.status === 409) { draftKey = randomKey(); refreshSession(); }
      } finally {
        send.disabled = false;
        reply.focus();
      }
    });
  }

  function endComposer() {
    const composer = document.getElementById('composer');
    if (!composer || composer.tagName !== 'FORM') return;
    const note = document.createElement('p');
    note.id = 'composer';
    note.className = 'ended-note';
    note.textContent = 'This session has ended.';
    composer.replaceWith(note);
  }

  // ---------------------------------------------------------------- decisions

  /** Answer the question `within` belongs to; `extra` adds fields (an edited input). */
  async function decide(within, content, extra) {
    const box = within.closest('li');
    const error = box.querySelector('.error');
    const buttons = box.querySelectorAll('.choices button, .decide button');
    for (const b of buttons) b.disabled = true;
    if (error) error.textContent = '';
    try {
      const sent = await post('api/v1/messages/user', Object.assign({
        agent_instance_id: sessionId, content, mark_as_read: false,
        question_id: box.dataset.questionId,
      }, extra || {}), randomKey());
      if (sent) refreshSession();
    } catch (err) {
      // Closed meanwhile (another tab, the agent gave up): say how, and show it closed.
      if (error) error.textContent = err.message; else window.alert(err.message);
      if (err.status === 409 || err.status === 404) refreshSession();
      else for (const b of buttons) b.disabled = false;
    }
  }

  function reveal(button, form) {
    const open = form.hidden;
    form.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) form.querySelector('input, textarea').focus();
  }

  document.addEventListener('click', (e) => {
    const target = e.target.closest && e.target.closest('button');
    if (!target || !target.closest('#timeline')) return;
    const decideBox = target.closest('.decide');
    if (target.dataset.answer !== undefined) {
      decide(target, target.dataset.answer);
    } else if (target.classList.contains('answer-this')) {
      plainChosen = false;
      setTarget(target.closest('li').dataset.questionId);
      if (form && form.keep) form.keep();
      if (reply) reply.focus();
    } else if (target.classList.contains('deny-open')) {
      reveal(target, decideBox.querySelector('.deny-form'));
    } else if (target.classList.contains('edit-open')) {
      reveal(target, decideBox.querySelector('.edit-form'));
    } else if (target.classList.contains('unfold')) {
      const folded = target.previousElementSibling;
      const open = folded.classList.toggle('open');
      target.setAttribute('aria-expanded', String(open));
      target.textContent = open ? 'Show less' : 'Show all';
    }
  });

  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (form.classList.contains('deny-form')) {
      e.preventDefault();
      const reason = form.elements.reason.value.trim();
      decide(form, reason || 'Deny');
    } else if (form.classList.contains('edit-form')) {
      e.preventDefault();
      const error = form.closest('.decide').querySelector('.error');
      let input;
      try { input = JSON.parse(form.elements.input.value); } catch (err) { input = null; }
      if (!input || typeof input !== 'object' || Array.isArray(input)) {
        error.textContent = 'The tool input must be a JSON object.';
        form.elements.input.focus();
        return;
      }
      decide(form, 'Allow', { updated_input: input });
    }
  });

  // The person names the session (its title), in place.
  document.addEventListener('click', (e) => {
    const open = e.target.closest && e.target.closest('#rename');
    const cancel = e.target.closest && e.target.closest('#rename-cancel');
    const form = document.getElementById('rename-form');
    if (!form) return;
    if (open) {
      form.hidden = false;
      open.setAttribute('aria-expanded', 'true');
      const input = document.getElementById('rename-input');
      input.focus();
      input.select();
    } else if (cancel) {
      form.hidden = true;
      document.getElementById('rename').setAttribute('aria-expanded', 'false');
      refreshSession();
    }
  });
  document.addEventListener('submit', async (e) => {
    if (e.target.id !== 'rename-form') return;
    e.preventDefault();
    const form = e.target;
    const error = form.querySelector('.error');
    error.textContent = '';
    try {
      await send('PATCH', 'api/v1/sessions/' + sessionId, { title: form.elements.title.value.trim() });
      form.hidden = true;
      refreshSession();
    } catch (err) {
      error.textContent = err.message;
    }
  });

  // Ending a session asks first, in the page.
  document.addEventListener('click', async (e) => {
    const ask = e.target.closest && e.target.closest('#end-session');
    const yes = e.target.closest && e.target.closest('#end-confirm-yes');
    const no = e.target.closest && e.target.closest('#end-confirm-no');
    const confirm = document.getElementById('end-confirm');
    if (ask && confirm) {
      confirm.hidden = false;
      ask.setAttribute('aria-expanded', 'true');
      document.getElementById('end-confirm-no').focus();
    } else if (no && confirm) {
      confirm.hidden = true;
      const button = document.getElementById('end-session');
      button.setAttribute('aria-expanded', 'false');
      button.focus();
    } else if (yes) {
      yes.disabled = true;
      try {
        await post('api/v1/sessions/end', { agent_instance_id: sessionId });
        refreshSession();
      } catch (err) {
        yes.disabled = false;
        const where = document.getElementById('end-confirm');
        if (where) where.querySelector('span').textContent = err.message;
      }
    }
  });

  // ---------------------------------------------------------------- settings

  let settingsTimer = null;
  const refreshSettings = coalesced(async () => {
    const doc = await fragment('inbox/settings');
    if (!doc) return;
    replace(doc.getElementById('channel-list'));
    replace(doc.getElementById('deliveries'));
    showDevice();
    updateTimes();
    // Deliveries in flight change on their own: look again until they have ended.
    const pending = Number(document.getElementById('deliveries').dataset.pending);
    if (pending > 0) settingsSoon(2000);
  });

  /** Refresh the settings page's lists shortly (once, however often asked). */
  function settingsSoon(delay = 1000) {
    if (settingsTimer) return;
    settingsTimer = setTimeout(() => { settingsTimer = null; refreshSettings(); }, delay);
  }

  function showDevice() {
    const state = document.getElementById('device-state');
    const on = document.getElementById('device-on');
    const off = document.getElementById('device-off');
    on.hidden = true;
    off.hidden = true;
    if (!pushSupported) {
      state.textContent = window.isSecureContext
        ? 'This browser cannot receive push notifications.'
        : 'Push notifications need the inbox to be opened over https.';
      return;
    }
    const id = localStorage.getItem(PUSH_CHANNEL);
    const listed = id && document.querySelector('.channel[data-channel-id="' + CSS.escape(id) + '"]');
    // Removed elsewhere (another page, the API): this device is off.
    if (id && !listed) localStorage.removeItem(PUSH_CHANNEL);
    if (listed) {
      listed.querySelector('.this-device').hidden = false;
      state.textContent = 'On: this browser shows a notification for every question.';
      off.hidden = false;
    } else if (Notification.permission === 'denied') {
      state.textContent = 'Notifications are blocked for this site. Allow them in the browser\'s '
        + 'site settings, then reload this page.';
    } else {
      state.textContent = 'Off.';
      on.hidden = false;
    }
  }

  /** Run a button's work, saying what came of it in `status`. */
  async function act(button, status, work) {
    button.disabled = true;
    try {
      status.textContent = await work();
    } catch (err) {
      status.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  function addForm(id, body) {
    const form = document.getElementById(id);
    const input = form.querySelector('input');
    const error = form.querySelector('.error');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      const value = input.value.trim();
      if (!value) {
        error.textContent = 'Enter ' + (input.type === 'url' ? 'the webhook\'s URL.' : 'an email address.');
        input.focus();
        return;
      }
      const button = form.querySelector('button');
      button.disabled = true;
      try {
        const made = await post('api/v1/notifications/channels', body(value));
        if (!made) return;
        const added = await made.json();
        input.value = '';
        if (added.secret) showSecret(added);
        document.getElementById('channels-status').textContent = 'Added ' + value + '.';
        await refreshSettings();
      } catch (err) {
        error.textContent = err.message;
        input.focus();
      } finally {
        button.disabled = input.disabled;
      }
    });
  }

  /** A webhook's signing secret, shown this once. */
  function showSecret(added) {
    document.getElementById('secret-for').textContent = added.description;
    document.getElementById('secret-value').textContent = added.secret;
    document.getElementById('secret-copied').textContent = '';
    document.getElementById('secret').hidden = false;
    document.getElementById('secret-copy').focus();
  }

  /** The notification policy form: saved through the API as one change. */
  function policyForm(form) {
    const f = form.elements;
    const zone = f['quiet.time_zone'];
    if (!zone.value) {
      try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (e) { zone.value = 'UTC'; }
    }
    const status = document.getElementById('policy-status');
    const error = document.getElementById('policy-error');
    const whole = (input, unit) => {
      const n = Number(input.value === '' ? 0 : input.value);
      if (!Number.isInteger(n) || n < 0) {
        input.focus();
        throw new Error('Enter a whole number of ' + unit + ' (0 or more).');
      }
      return n;
    };
    const kinds = ['webhook', 'email', 'web_push'];
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      status.textContent = '';
      error.textContent = '';
      const button = form.querySelector('button[type=submit]');
      try {
        const notify = {};
        for (const topic of ['question', 'approval', 'next_instruction', 'session_ended', 'failure']) {
          notify[topic] = {};
          for (const kind of kinds) notify[topic][kind] = f[topic + '.' + kind].checked;
        }
        const escalate = {};
        for (const kind of kinds) escalate[kind] = whole(f['escalate.' + kind], 'minutes') * 60;
        const change = {
          notify,
          escalate_after_seconds: escalate,
          coalesce_seconds: whole(f.coalesce, 'seconds'),
          presence: f.presence.checked,
          quiet_hours: f.quiet.checked ? {
            from: f['quiet.from'].value,
            until: f['quiet.until'].value,
            time_zone: zone.value.trim(),
          } : null,
        };
        button.disabled = true;
        const saved = await send('PUT', 'api/v1/notifications/settings', change);
        if (saved) status.textContent = 'Saved.';
      } catch (err) {
        error.textContent = err.message;
      } finally {
        button.disabled = false;
      }
    });
  }

  /**
   * Presence: while this page is visible and focused, the person sees what arrives, so their
   * browser push waits (if their policy says so). Renewed within the server's lease; a page
   * that goes away says so, and the next page of the inbox, if any, says it is back.
   */
  function reportPresence() {
    let reported = null;
    const focused = () => document.visibilityState === 'visible' && document.hasFocus();
    const report = (now) => {
      reported = now;
      fetch(base + 'api/v1/notifications/presence', {
        method: 'PUT', credentials: 'same-origin', keepalive: true,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ focused: now }),
      }).catch(() => { /* presence is a hint; the lease ends by itself */ });
    };
    const look = () => { const now = focused(); if (now !== reported) report(now); };
    window.addEventListener('focus', look);
    window.addEventListener('blur', look);
    document.addEventListener('visibilitychange', look);
    setInterval(() => { if (focused()) report(true); }, 20000);
    look();
  }

  if (page === 'inbox' || page === 'session' || page === 'settings') reportPresence();

  if (page === 'settings') {
    const deviceError = document.getElementById('device-error');
    document.getElementById('device-on').addEventListener('click', (e) => act(e.currentTarget, deviceError, async () => {
      await turnOnPush();
      await refreshSettings();
      return '';
    }));
    document.getElementById('device-off').addEventListener('click', (e) => act(e.currentTarget, deviceError, async () => {
      await turnOffPush();
      await refreshSettings();
      return '';
    }));

    policyForm(document.getElementById('policy'));

    addForm('add-webhook', (url) => ({ kind: 'webhook', url }));
    addForm('add-email', (to) => ({ kind: 'email', to }));

    document.getElementById('secret-copy').addEventListener('click', async () => {
      const value = document.getElementById('secret-value');
      const said = document.getElementById('secret-copied');
      try {
        await navigator.clipboard.writeText(value.textContent);
        said.textContent = 'Copied.';
      } catch (err) {
        getSelection().selectAllChildren(value);
        said.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
      }
    });

    const status = document.getElementById('channels-status');
    document.addEventListener('click', (e) => {
      const button = e.target.closest && e.target.closest('button[data-action]');
      if (!button) return;
      const id = button.dataset.channelId;
      const name = button.dataset.name;
      if (button.dataset.action === 'test') {
        act(button, status, async () => {
          status.textContent = 'Sending a test to ' + name + '…';
          const r = await post('api/v1/notifications/channels/' + encodeURIComponent(id) + '/test');
          if (!r) return '';
          const test = await r.json();
          await refreshSettings();
          if (test.status === 'delivered') return 'The test reached ' + name + '.';
          if (test.status === 'failed') return 'The test to ' + name + ' failed: ' + test.last_error;
          return 'The test to ' + name + ' did not get through (' + test.last_error
            + '); it will be tried again.';
        });
      } else if (button.dataset.action === 'disconnect-app') {
        const appStatus = document.getElementById('apps-status');
        if (!window.confirm('Disconnect ' + name + '? It loses its access at once.')) return;
        act(button, appStatus, async () => {
          await send('DELETE', 'api/v1/apps/' + encodeURIComponent(button.dataset.appId));
          const row = button.closest('li');
          if (row) row.remove();
          const list = document.getElementById('app-list');
          if (list && !list.querySelector('li')) {
            list.hidden = true;
            document.getElementById('apps-none').hidden = false;
          }
          document.getElementById('apps-heading').focus();
          return 'Disconnected ' + name + '.';
        });
      } else if (button.dataset.action === 'remove') {
        if (!window.confirm('Remove ' + name + '? It gets no more notifications.')) return;
        act(button, status, async () => {
          if (id === localStorage.getItem(PUSH_CHANNEL)) await turnOffPush();
          else await removeChannel(id);
          await refreshSettings();
          document.getElementById('channels-heading').focus();
          return 'Removed ' + name + '.';
        });
      }
    });

    showDevice();
    const pending = Number(document.getElementById('deliveries').dataset.pending);
    if (pending > 0) settingsSoon(2000);
  }

  if (page === 'session') {
    foldRuns();
    window.scrollTo({ top: document.body.scrollHeight });
  }
  updateTimes();
})();
