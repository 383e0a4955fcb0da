// The web inbox. Signed in by the session cookie (or a trusted proxy): the browser sends it,
// so no token is ever held here. Every text from a notification goes in as text
// (textContent); only the Markdown body comes as HTML, rendered and made safe by the server.
'use strict';

(() => {
  const API = '/api/notifications';
  const PAGE_SIZE = 20;
  /** Far past any inbox; keeps a hand-made address from asking for an absurd offset. */
  const MAX_PAGE = 100000;
  const SEVERITIES = ['critical', 'high', 'normal', 'low'];
  const MARKDOWN_KEY = 'backstage.io/body.markdown';
  // The Backstage app's base URL with its trailing '/', as the server resolves links.
  const appBase = document.querySelector('meta[name="app-base-url"]').content;
  const icon = document.querySelector('link[rel="icon"]').href;
  const $ = (id) => document.getElementById(id);

  const state = {
    view: 'unread',
    severity: '',
    topic: '',
    after: '',
    q: '',
    offset: 0,
    total: 0,
    unread: 0,
  };

  // --- talking to the API ------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const init = { credentials: 'same-origin', headers: {}, ...options };
    if (init.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(init.body);
    }
    const res = await fetch(API + path, init);
    const text = await res.text();
    let body;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!res.ok) {
      const message = body && body.error && body.error.message;
      throw new HttpError(res.status, message || `The service answered ${res.status}`);
    }
    return body;
  }

  function showError(error) {
    const alert = $('alert');
    if (error instanceof HttpError && error.status === 401) {
      // The session ended (or the proxy no longer names anyone): the page at / says how to
      // sign in. Not a redirect, which would go round if / still shows this page.
      alert.replaceChildren(
        'You are signed out. ',
        el('a', { href: '/', text: 'Sign in again' }),
        '.',
      );
    } else {
      alert.textContent = error instanceof Error ? error.message : String(error);
    }
    alert.hidden = false;
  }

  function clearError() {
    $('alert').hidden = true;
    $('alert').textContent = '';
  }

  /** Says `text` to screen readers (a polite live region). */
  function announce(text) {
    const region = $('announce');
    region.textContent = '';
    // A change of content is what is announced, even of the same words.
    window.setTimeout(() => {
      region.textContent = text;
    }, 50);
  }

  // The query of the list, and of "mark all read" (which takes the same filters but `read`).
  function filterParams() {
    const p = new URLSearchParams();
    if (state.view === 'saved') p.set('saved', 'true');
    if (state.severity) p.set('minimumSeverity', state.severity);
    if (state.topic) p.set('topic', state.topic);
    if (state.after) {
      const date = new Date(`${state.after}T00:00:00`);
      if (!Number.isNaN(date.getTime())) p.set('createdAfter', date.toISOString());
    }
    if (state.q) p.set('search', state.q);
    return p;
  }

  function listParams() {
    const p = filterParams();
    if (state.view === 'unread') p.set('read', 'false');
    p.set('limit', String(PAGE_SIZE));
    p.set('offset', String(state.offset));
    p.set('orderField', 'created,desc');
    return p;
  }

  // --- the filters in the address, so that reload, back and links keep them ---------------

  function readAddress() {
    const p = new URLSearchParams(window.location.search);
    state.view = ['unread', 'saved', 'all'].includes(p.get('view')) ? p.get('view') : 'unread';
    state.severity = SEVERITIES.includes(p.get('severity')) ? p.get('severity') : '';
    state.topic = p.get('topic') || '';
    state.after = /^\d{4}-\d{2}-\d{2}$/.test(p.get('after') || '') ? p.get('after') : '';
    state.q = p.get('q') || '';
    const page = Number.parseInt(p.get('page') || '1', 10);
    state.offset = Number.isFinite(page) && page > 1 ? (Math.min(page, MAX_PAGE) - 1) * PAGE_SIZE : 0;
  }

  function writeAddress() {
    const p = new URLSearchParams();
    if (state.view !== 'unread') p.set('view', state.view);
    if (state.severity) p.set('severity', state.severity);
    if (state.topic) p.set('topic', state.topic);
    if (state.after) p.set('after', state.after);
    if (state.q) p.set('q', state.q);
    if (state.offset > 0) p.set('page', String(state.offset / PAGE_SIZE + 1));
    const query = p.toString();
    window.history.replaceState(null, '', `/inbox${query ? `?${query}` : ''}`);
  }

  function filtered() {
    return Boolean(state.view === 'saved' || state.severity || state.topic || state.after || state.q);
  }

  function showFilters() {
    const form = $('filters');
    form.elements.view.value = state.view;
    $('f-severity').value = state.severity;
    $('f-after').value = state.after;
    $('f-search').value = state.q;
    ensureTopicOption(state.topic);
    $('f-topic').value = state.topic;
    $('mark-all').textContent = filtered() ? 'Mark all matching read' : 'Mark all read';
  }

  function ensureTopicOption(topic) {
    const select = $('f-topic');
    if (!topic || [...select.options].some((o) => o.value === topic)) return;
    select.append(new Option(topic, topic));
  }

  async function loadTopics() {
    const { topics } = await api('/topics');
    for (const topic of topics) ensureTopicOption(topic);
    $('f-topic').value = state.topic;
  }

  // --- the list ------------------------------------------------------------------------------

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  const exact = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
  const UNITS = [
    ['year', 31536000],
    ['month', 2592000],
    ['week', 604800],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
  ];

  // How long ago; a time ahead of this browser's clock (which may be behind) is "now".
  function ago(date) {
    const seconds = Math.min(0, (date.getTime() - Date.now()) / 1000);
    for (const [unit, size] of UNITS) {
      if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
    }
    return relative.format(0, 'second');
  }

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // A notification's link as the server resolves it (upstream's rule: one leading '/' is
  // dropped and the rest taken relative to the app's base URL); only http(s) is followed.
  function resolveLink(link) {
    if (!link) return null;
    try {
      const url = new URL(link.startsWith('/') ? link.slice(1) : link, appBase);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  function renderItem(n) {
    const p = n.payload || {};
    const titleId = `title-${n.id}`;
    const href = resolveLink(p.link);
    const title = el('h3', { id: titleId }, [
      href
        ? el('a', { href, target: '_blank', rel: 'noopener noreferrer', text: p.title || '' })
        : document.createTextNode(p.title || ''),
    ]);
    const created = new Date(n.created);
    const severity = SEVERITIES.includes(p.severity) ? p.severity : 'normal';
    const meta = el('p', { class: 'meta' }, [
      el('span', { class: `severity ${severity}`, text: severity }),
      p.topic ? el('span', { class: 'topic', text: `Topic: ${p.topic}` }) : null,
      el('span', { class: 'origin', text: `From: ${n.origin}` }),
      el('time', {
        datetime: created.toISOString(),
        title: exact.format(created),
        text: ago(created),
      }),
    ]);
    const item = el('li', {
      class: `item${n.read ? '' : ' unread'}`,
      'data-id': n.id,
      'aria-labelledby': titleId,
    }, [title, meta]);
    if (p.description) item.append(el('p', { class: 'description', text: p.description }));
    const markdown = p.metadata && p.metadata[MARKDOWN_KEY];
    if (typeof markdown === 'string' && markdown.trim()) item.append(markdownDetails(n.id));
    const read = el('button', {
      type: 'button',
      class: 'toggle-read',
      'aria-describedby': titleId,
      text: n.read ? 'Mark unread' : 'Mark read',
    });
    read.addEventListener('click', () => mark([n.id], { read: !n.read }, n.read ? 'Marked unread' : 'Marked read'));
    const save = el('button', {
      type: 'button',
      class: 'toggle-saved',
      'aria-pressed': n.saved ? 'true' : 'false',
      'aria-describedby': titleId,
      text: 'Save',
    });
    save.addEventListener('click', () => mark([n.id], { saved: !n.saved }, n.saved ? 'Removed from saved' : 'Saved'));
    item.append(el('div', { class: 'buttons' }, [read, save]));
    return item;
  }

  // Open Markdown bodies, by notification id: the HTML once loaded (null until then). The list
  // is drawn anew on every change; what was open stays open.
  const openBodies = new Map();

  // The Markdown body, fetched when opened: the server renders it and keeps no raw HTML, no
  // script, no image and no link of another scheme than http(s) and mailto; the page's policy
  // would not run a script anyway.
  function markdownDetails(id) {
    const body = el('div', { class: 'markdown', text: 'Loading…' });
    const details = el('details', {}, [el('summary', { text: 'Details' }), body]);
    const show = (html) => {
      body.innerHTML = html;
      for (const a of body.querySelectorAll('a')) {
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
      }
      details.dataset.loaded = 'true';
    };
    if (openBodies.has(id)) {
      if (openBodies.get(id) !== null) show(openBodies.get(id));
      details.open = true;
    }
    details.addEventListener('toggle', async () => {
      if (!details.open) {
        openBodies.delete(id);
        return;
      }
      if (!openBodies.has(id)) openBodies.set(id, null);
      if (details.dataset.loaded) return;
      try {
        const res = await fetch(`/inbox/body/${encodeURIComponent(id)}`, {
          credentials: 'same-origin',
        });
        if (!res.ok) {
          throw new HttpError(res.status, res.status === 401
            ? 'You are signed out.' : `The service answered ${res.status}`);
        }
        const html = await res.text();
        if (openBodies.has(id)) openBodies.set(id, html);
        show(html);
      } catch (error) {
        body.textContent = `Could not load the details: ${error.message}`;
      }
    });
    return details;
  }

  async function loadList(retried = false) {
    const list = $('list');
    list.setAttribute('aria-busy', 'true');
    const before = document.activeElement;
    try {
      const [page, status] = await Promise.all([
        api(`/notifications?${listParams()}`),
        api('/status'),
      ]);
      // Past the end (marks moved items out of this view): go back to the last page, once.
      if (page.notifications.length === 0 && state.offset > 0 && !retried) {
        state.offset = Math.max(0, Math.floor((page.totalCount - 1) / PAGE_SIZE) * PAGE_SIZE);
        writeAddress();
        return await loadList(true);
      }
      state.total = page.totalCount;
      state.unread = status.unread;
      const focus = focusedItem();
      list.replaceChildren(...page.notifications.map(renderItem));
      $('empty').hidden = page.notifications.length > 0;
      const first = page.notifications.length ? state.offset + 1 : 0;
      const last = state.offset + page.notifications.length;
      $('range').textContent = `${first}–${last} of ${state.total}`;
      $('newer').disabled = state.offset === 0;
      $('older').disabled = last >= state.total;
      restoreFocus(focus, before);
      showUnread();
      // The first list drawn, for timing (`cargo xtask bench`, or anyone's performance tools).
      if (!performance.getEntriesByName('inbox-shown').length) performance.mark('inbox-shown');
      return page;
    } finally {
      list.setAttribute('aria-busy', 'false');
    }
  }

  // Keyboard focus stays on the same control of the same notification, or, when that one left
  // the view, on the one in its place; a pager button that turned disabled hands it to the list.
  function focusedItem() {
    const active = document.activeElement;
    const li = active && active.closest('#list li');
    if (!li) return null;
    let control = 'button';
    if (active.tagName === 'SUMMARY') control = 'summary';
    else if (active.tagName === 'A' && active.closest('h3')) control = 'h3 a';
    else if (active.tagName === 'BUTTON' && active.className) control = `button.${active.className}`;
    return { id: li.dataset.id, index: [...$('list').children].indexOf(li), control };
  }

  function restoreFocus(focus, before) {
    const items = [...$('list').children];
    if (focus) {
      const target = items.find((li) => li.dataset.id === focus.id)
        || items[Math.min(focus.index, items.length - 1)];
      const control = target && (target.querySelector(focus.control) || target.querySelector('button'));
      if (control) control.focus();
      else $('list').focus();
    } else if (before && before !== document.body && (before.disabled || !before.isConnected)) {
      $('list').focus();
    }
  }

  function showUnread() {
    $('unread-count').textContent = state.unread ? `(${state.unread} unread)` : '';
    document.title = state.unread ? `(${state.unread}) Notifications` : 'Notifications';
  }

  // One reload at a time. The promise a call gets settles once a reload that started after
  // the call has drawn the list, so a mark's caller sees its change.
  let loading = null;
  let queued = null;
  function reload() {
    loading = loadList()
      .then(() => clearError())
      .catch(showError)
      .finally(() => {
        loading = null;
      });
    return loading;
  }
  function refresh() {
    if (!loading) return reload();
    if (!queued) {
      queued = loading.then(() => {
        queued = null;
        return reload();
      });
    }
    return queued;
  }

  async function mark(ids, change, done) {
    try {
      await api('/notifications/update', { method: 'POST', body: { ids, ...change } });
      await refresh();
      announce(done);
    } catch (error) {
      showError(error);
    }
  }

  // Not disabled while it runs: a disabled button drops the keyboard focus.
  let markingAll = false;
  async function markAll() {
    if (markingAll) return;
    markingAll = true;
    $('mark-all').setAttribute('aria-disabled', 'true');
    try {
      const { updated } = await api(`/notifications/read-all?${filterParams()}`, { method: 'POST' });
      await refresh();
      announce(updated === 1 ? 'Marked 1 notification read' : `Marked ${updated} notifications read`);
    } catch (error) {
      showError(error);
    } finally {
      markingAll = false;
      $('mark-all').removeAttribute('aria-disabled');
    }
  }

  // --- live: the event stream, resumed from the last event seen -----------------------------

  let lastEventId = '';
  function connectLive() {
    const live = $('live');
    // The browser resumes by itself (Last-Event-ID) while the stream retries; a new stream,
    // after one was refused, says where it left off in the query.
    const resume = lastEventId ? `?lastEventId=${encodeURIComponent(lastEventId)}` : '';
    const source = new EventSource(`${API}/stream${resume}`);
    let opened = false;
    source.addEventListener('open', () => {
      live.textContent = 'Live';
      // What came while the stream was down is replayed, but not what the list missed before
      // this page had any event: after a first open, draw it again.
      if (opened) refresh();
      opened = true;
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (signed out, too many connections, a restart): the list tells which.
        live.textContent = 'Offline: retrying';
        refresh();
        window.setTimeout(connectLive, 5000);
      } else {
        live.textContent = 'Reconnecting…';
      }
    });
    // Events were missed beyond what the server keeps: reload.
    source.addEventListener('reset', (event) => {
      if (event.lastEventId) lastEventId = event.lastEventId;
      refresh();
    });
    source.addEventListener('message', (event) => {
      if (event.lastEventId) lastEventId = event.lastEventId;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      const message = (data && data.message) || {};
      if (message.action === 'new_notification') {
        notifyDesktop(message.notification_id);
        announce('New notification');
        loadTopics().catch(() => {});
      }
      refresh();
    });
  }

  // --- desktop notifications: only after the person asks, and only while the tab is hidden --

  function setUpDesktop() {
    const button = $('desktop');
    if (!('Notification' in window) || Notification.permission !== 'default') return;
    button.hidden = false;
    button.addEventListener('click', async () => {
      await Notification.requestPermission();
      if (Notification.permission !== 'default') {
        button.hidden = true;
        $('mark-all').focus();
      }
    });
  }

  async function notifyDesktop(id) {
    if (!id || !('Notification' in window) || Notification.permission !== 'granted') return;
    if (!document.hidden) return;
    try {
      const n = await api(`/notifications/${encodeURIComponent(id)}`);
      const shown = new Notification(n.payload.title, {
        body: n.payload.description || '',
        tag: n.id,
        icon,
      });
      shown.addEventListener('click', () => window.focus());
    } catch {
      // A notification that cannot be read now is in the list all the same.
    }
  }

  // --- settings ------------------------------------------------------------------------------

  let settings = null;

  function checkbox(label, checked, onChange, extra = {}) {
    const input = el('input', { type: 'checkbox', ...extra });
    input.checked = checked;
    input.addEventListener('change', () => onChange(input.checked));
    return el('label', {}, [input, document.createTextNode(` ${label}`)]);
  }

  function renderOrigin(channel, origin) {
    const group = el('fieldset', { class: 'origin-setting' }, [
      el('legend', { text: `From ${origin.id}` }),
    ]);
    const topicBoxes = [];
    group.append(checkbox('All of it', origin.enabled, (on) => {
      origin.enabled = on;
      for (const box of topicBoxes) box.disabled = !on;
    }, { 'data-channel': channel.id, 'data-origin': origin.id }));
    const topics = el('ul', { class: 'topics' });
    for (const topic of origin.topics || []) {
      const label = checkbox(`Topic: ${topic.id}`, topic.enabled, (on) => {
        topic.enabled = on;
      }, { 'data-channel': channel.id, 'data-origin': origin.id, 'data-topic': topic.id });
      const box = label.querySelector('input');
      box.disabled = !origin.enabled;
      topicBoxes.push(box);
      topics.append(el('li', {}, [label]));
    }
    if (topicBoxes.length) group.append(topics);
    return group;
  }

  function renderSettings() {
    const root = $('settings-channels');
    if (!settings.channels.length) {
      root.replaceChildren(el('p', { text: 'There are no channels to choose from.' }));
      return;
    }
    root.replaceChildren(...settings.channels.map((channel) => {
      const fieldset = el('fieldset', { class: 'channel' }, [
        el('legend', { text: channel.id }),
      ]);
      if (!channel.origins.length) {
        fieldset.append(el('p', { text: 'No notifications have reached you on this channel yet.' }));
      }
      for (const origin of channel.origins) fieldset.append(renderOrigin(channel, origin));
      return fieldset;
    }));
  }

  async function loadSettings() {
    settings = await api('/settings');
    renderSettings();
  }

  async function saveSettings(event) {
    event.preventDefault();
    const status = $('settings-status');
    status.textContent = 'Saving…';
    try {
      settings = await api('/settings', { method: 'POST', body: settings });
      renderSettings();
      status.textContent = 'Saved.';
    } catch (error) {
      status.textContent = '';
      showError(error);
    }
  }

  // --- start ---------------------------------------------------------------------------------

  function showView(name) {
    $('inbox-view').hidden = name !== 'inbox';
    $('settings-view').hidden = name !== 'settings';
    for (const [link, view] of [['nav-inbox', 'inbox'], ['nav-settings', 'settings']]) {
      if (view === name) $(link).setAttribute('aria-current', 'page');
      else $(link).removeAttribute('aria-current');
    }
  }

  // After a change of filters or page: draw, then say how many there are.
  async function showPage() {
    writeAddress();
    showFilters();
    await refresh();
    announce($('range').textContent);
  }

  function startInbox() {
    showView('inbox');
    readAddress();
    showFilters();
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      const form = event.target;
      state.view = form.elements.view.value;
      state.severity = $('f-severity').value;
      state.topic = $('f-topic').value;
      state.after = $('f-after').value;
      state.q = $('f-search').value.trim();
      state.offset = 0;
      showPage();
    });
    // The view buttons apply at once; the other filters with Apply (or Enter).
    for (const radio of $('filters').elements.view) {
      radio.addEventListener('change', () => $('filters').requestSubmit());
    }
    $('newer').addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - PAGE_SIZE);
      showPage();
    });
    $('older').addEventListener('click', () => {
      state.offset += PAGE_SIZE;
      showPage();
    });
    $('mark-all').addEventListener('click', markAll);
    setUpDesktop();
    refresh();
    loadTopics().catch(showError);
    connectLive();
    // Relative times move on.
    window.setInterval(() => {
      for (const time of document.querySelectorAll('#list time')) {
        time.textContent = ago(new Date(time.getAttribute('datetime')));
      }
    }, 30000);
  }

  function startSettings() {
    showView('settings');
    $('settings-form').addEventListener('submit', saveSettings);
    loadSettings().catch(showError);
  }

  if (window.location.pathname === '/settings') startSettings();
  else startInbox();
})();
