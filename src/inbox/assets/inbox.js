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
    'messages_read', 'git_diff_updated', 'session_ended',
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

  if (page !== 'inbox' && page !== 'session') return;

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

  const refreshList = coalesced(async () => {
    const doc = await fragment('inbox/list');
    const fresh = doc && doc.getElementById('sessions');
    if (!fresh) return;
    replace(fresh);
    setWaiting(Number(fresh.dataset.waiting));
    updateTimes();
  });

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
      replace(doc.getElementById('session-head'));
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
      if (update.dataset.status === 'ended') endComposer();
      settleAnswered();
      setWaiting(Number(update.dataset.waiting));
      if (items.length && nearBottom) window.scrollTo({ top: document.body.scrollHeight });
      if (update.dataset.more !== 'true') return;
    }
  });

  const refreshWaiting = coalesced(async () => {
    const r = await fetch(base + 'inbox/waiting', { credentials: 'same-origin' });
    if (r.status === 401) { toSignIn(); return; }
    if (r.ok) setWaiting(Number((await r.json()).waiting));
  });

  function refresh() {
    if (page === 'inbox') refreshList();
    else refreshSession();
  }

  // ---------------------------------------------------------------- the event stream

  let stream = null;

  function onEvent(message) {
    let event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    if (page === 'inbox') refreshList();
    else if (event.session_id === sessionId) refreshSession();
    else refreshWaiting();
    notify(event);
  }

  function connect() {
    stream = new EventSource(base + 'api/v1/stream');
    for (const type of EVENT_TYPES) stream.addEventListener(type, onEvent);
    // What committed before the stream began is in a fragment; what after, on the stream.
    stream.addEventListener('open', refresh);
    stream.addEventListener('error', () => {
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

  const toggle = document.getElementById('notify-toggle');
  if (toggle && 'Notification' in window && Notification.permission === 'default') {
    toggle.hidden = false;
    toggle.addEventListener('click', async () => {
      const answer = await Notification.requestPermission();
      toggle.hidden = answer === 'default';
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

  async function post(path, payload, idempotencyKey) {
    const headers = { 'Content-Type': 'application/json' };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const r = await fetch(base + path, {
      method: 'POST', credentials: 'same-origin', headers, body: JSON.stringify(payload),
    });
    if (r.status === 401) { toSignIn(); return null; }
    if (r.ok) return r;
    let detail = 'Something went wrong (' + r.status + ').';
    try { detail = (await r.json()).detail || detail; } catch (e) { /* keep the status */ }
    throw new Error(detail);
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

  const form = document.getElementById('composer');
  const reply = document.getElementById('reply');
  if (form && reply && form.tagName === 'FORM') {
    const error = document.getElementById('composer-error');
    const send = form.querySelector('button[type="submit"]');
    // One key per draft: sending it again (a double press, a retry) appends it once.
    let draftKey = randomKey();
    const grow = () => {
      reply.style.height = 'auto';
      reply.style.height = reply.scrollHeight + 2 + 'px';
    };
    reply.addEventListener('input', grow);
    reply.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const content = reply.value;
      if (!content.trim()) return;
      send.disabled = true;
      error.textContent = '';
      try {
        const sent = await post('api/v1/messages/user', {
          agent_instance_id: sessionId, content, mark_as_read: false,
        }, draftKey);
        if (sent) {
          reply.value = '';
          draftKey = randomKey();
          grow();
          refreshSession();
        }
      } catch (err) {
        error.textContent = err.message;
      } finally {
        send.disabled = false;
        reply.focus();
      }
    });
  }

  // ---------------------------------------------------------------- decisions

  /** A question someone answered (a person's message follows it) offers no more choices. */
  function settleAnswered() {
    let answered = false;
    const items = [...document.querySelectorAll('#timeline > li')].reverse();
    for (const li of items) {
      if (li.classList.contains('user')) answered = true;
      if (!answered || !li.classList.contains('question')) continue;
      for (const controls of li.querySelectorAll('.choices, .decide')) controls.remove();
    }
  }

  /** Answer the question `within` belongs to; `extra` adds fields (an edited input). */
  async function decide(within, content, extra) {
    const box = within.closest('li');
    const error = box.querySelector('.decide .error');
    const buttons = box.querySelectorAll('.choices button, .decide button');
    for (const b of buttons) b.disabled = true;
    if (error) error.textContent = '';
    try {
      const sent = await post('api/v1/messages/user', Object.assign({
        agent_instance_id: sessionId, content, mark_as_read: false,
      }, extra || {}), randomKey());
      if (sent) refreshSession();
    } catch (err) {
      for (const b of buttons) b.disabled = false;
      if (error) error.textContent = err.message; else window.alert(err.message);
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
    } else if (target.classList.contains('deny-open')) {
      reveal(target, decideBox.querySelector('.deny-form'));
    } else if (target.classList.contains('edit-open')) {
      reveal(target, decideBox.querySelector('.edit-form'));
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

  settleAnswered();

  document.addEventListener('click', async (e) => {
    const button = e.target.closest && e.target.closest('#end-session');
    if (!button) return;
    if (!window.confirm('End this session? The agent can send no more messages to it.')) return;
    button.disabled = true;
    try {
      await post('api/v1/sessions/end', { agent_instance_id: sessionId });
      refreshSession();
    } catch (err) {
      button.disabled = false;
      window.alert(err.message);
    }
  });

  if (page === 'session') window.scrollTo({ top: document.body.scrollHeight });
  updateTimes();
})();
