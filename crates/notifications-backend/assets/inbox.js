// The web inbox. Signed in by the session cookie (or a trusted proxy): the browser sends it,
// so no token is ever held here. Every text from a notification goes in as text
// (textContent); only the Markdown body comes as HTML, rendered and made safe by the server.
'use strict';

(() => {
  const API = '/api/notifications';
  const PAGE_SIZE = 20;
  const SEVERITIES = ['critical', 'high', 'normal', 'low'];
  const MARKDOWN_KEY = 'backstage.io/body.markdown';
  const appBase = document.querySelector('meta[name="app-base-url"]').content;
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
    if (res.status === 401) {
      // The session ended: the page at / says how to sign in again.
      window.location.assign('/');
      throw new HttpError(401, 'Signed out');
    }
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
    alert.textContent = error instanceof Error ? error.message : String(error);
    alert.hidden = false;
  }

  function clearError() {
    $('alert').hidden = true;
    $('alert').textContent = '';
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
    state.offset = Number.isFinite(page) && page > 1 ? (page - 1) * PAGE_SIZE : 0;
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

  function showFilters() {
    const form = $('filters');
    form.elements.view.value = state.view;
    $('f-severity').value = state.severity;
    $('f-after').value = state.after;
    $('f-search').value = state.q;
    ensureTopicOption(state.topic);
    $('f-topic').value = state.topic;
    const filtered = state.view === 'saved' || state.severity || state.topic || state.after || state.q;
    $('mark-all').textContent = filtered ? 'Mark all matching read' : 'Mark all read';
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

  function ago(date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
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

  // A notification's link, resolved against the Backstage app; only http(s) is followed.
  function safeLink(link) {
    if (!link) return null;
    try {
      const url = new URL(link, appBase);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  function renderItem(n) {
    const p = n.payload || {};
    const titleId = `title-${n.id}`;
    const href = safeLink(p.link);
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
    read.addEventListener('click', () => mark([n.id], { read: !n.read }));
    const save = el('button', {
      type: 'button',
      class: 'toggle-saved',
      'aria-pressed': n.saved ? 'true' : 'false',
      'aria-describedby': titleId,
      text: n.saved ? 'Saved' : 'Save',
    });
    save.addEventListener('click', () => mark([n.id], { saved: !n.saved }));
    item.append(el('div', { class: 'buttons' }, [read, save]));
    return item;
  }

  // The Markdown body, fetched when opened: the server renders it and keeps no raw HTML, no
  // script and no link of another scheme than http(s) and mailto; the page's policy would
  // not run a script anyway.
  function markdownDetails(id) {
    const body = el('div', { class: 'markdown', text: 'Loading…' });
    const details = el('details', {}, [el('summary', { text: 'Details' }), body]);
    details.addEventListener('toggle', async () => {
      if (!details.open || details.dataset.loaded) return;
      try {
        const res = await fetch(`/inbox/body/${encodeURIComponent(id)}`, {
          credentials: 'same-origin',
        });
        if (!res.ok) throw new HttpError(res.status, `The service answered ${res.status}`);
        body.innerHTML = await res.text();
        details.dataset.loaded = 'true';
      } catch (error) {
        body.textContent = `Could not load the details: ${error.message}`;
      }
    });
    return details;
  }

  let loading = null;

  async function loadList() {
    const list = $('list');
    list.setAttribute('aria-busy', 'true');
    const [page, status] = await Promise.all([
      api(`/notifications?${listParams()}`),
      api('/status'),
    ]);
    // Past the end (marks moved items out of this view): go back to the last page.
    if (page.notifications.length === 0 && state.offset > 0 && page.totalCount > 0) {
      state.offset = Math.floor((page.totalCount - 1) / PAGE_SIZE) * PAGE_SIZE;
      writeAddress();
      return loadList();
    }
    state.total = page.totalCount;
    state.unread = status.unread;
    const focus = focusedItem();
    list.replaceChildren(...page.notifications.map(renderItem));
    restoreFocus(focus);
    list.setAttribute('aria-busy', 'false');
    $('empty').hidden = page.notifications.length > 0;
    const first = page.notifications.length ? state.offset + 1 : 0;
    const last = state.offset + page.notifications.length;
    $('range').textContent = `${first}–${last} of ${state.total}`;
    $('newer').disabled = state.offset === 0;
    $('older').disabled = last >= state.total;
    showUnread();
    // The first list drawn, for timing (`cargo xtask bench`, or anyone's performance tools).
    if (!performance.getEntriesByName('inbox-shown').length) performance.mark('inbox-shown');
    return page;
  }

  // The list is drawn anew on every change: keyboard focus stays on the same button of the
  // same notification, or, when that one left the view, moves to the one in its place.
  function focusedItem() {
    const active = document.activeElement;
    const li = active && active.closest('#list li');
    if (!li) return null;
    const items = [...$('list').children];
    const button = active.tagName === 'BUTTON' ? active.className : '';
    return { id: li.dataset.id, index: items.indexOf(li), button };
  }

  function restoreFocus(focus) {
    if (!focus) return;
    const items = [...$('list').children];
    const same = items.find((li) => li.dataset.id === focus.id);
    const target = same || items[Math.min(focus.index, items.length - 1)];
    const button = target
      && ((focus.button && target.querySelector(`button.${focus.button}`))
        || target.querySelector('button'));
    if (button) button.focus();
    else $('list').focus();
  }

  function showUnread() {
    $('unread-count').textContent = state.unread ? `(${state.unread} unread)` : '';
    document.title = state.unread ? `(${state.unread}) Notifications` : 'Notifications';
  }

  // One reload at a time; a request for another while one runs makes one more afterwards.
  let again = false;
  function refresh() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = loadList()
      .then(() => clearError())
      .catch(showError)
      .finally(() => {
        loading = null;
        if (again) {
          again = false;
          refresh();
        }
      });
    return loading;
  }

  async function mark(ids, change) {
    try {
      await api('/notifications/update', { method: 'POST', body: { ids, ...change } });
      await refresh();
    } catch (error) {
      showError(error);
    }
  }

  async function markAll() {
    const button = $('mark-all');
    button.disabled = true;
    try {
      await api(`/notifications/read-all?${filterParams()}`, { method: 'POST' });
      await refresh();
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  }

  // --- live: the event stream, resumed by the browser with Last-Event-ID -------------------

  function connectLive() {
    const live = $('live');
    const source = new EventSource(`${API}/stream`);
    source.addEventListener('open', () => {
      live.textContent = 'Live';
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (signed out, or too many connections): try again a little later.
        live.textContent = 'Offline: retrying';
        window.setTimeout(connectLive, 5000);
      } else {
        live.textContent = 'Reconnecting…';
      }
    });
    // Events were missed beyond what the server keeps: reload.
    source.addEventListener('reset', () => refresh());
    source.addEventListener('message', (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      const message = (data && data.message) || {};
      if (message.action === 'new_notification') notifyDesktop(message.notification_id);
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
      button.hidden = Notification.permission !== 'default';
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
        icon: '/assets/icon.svg',
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
      for (const origin of channel.origins) {
        const block = el('div', { class: 'origin-setting' });
        const topics = el('ul', { class: 'topics' });
        const topicBoxes = [];
        block.append(checkbox(`${origin.id}`, origin.enabled, (on) => {
          origin.enabled = on;
          for (const box of topicBoxes) box.disabled = !on;
        }, { 'data-channel': channel.id, 'data-origin': origin.id }));
        for (const topic of origin.topics || []) {
          const label = checkbox(`Topic: ${topic.id}`, topic.enabled, (on) => {
            topic.enabled = on;
          }, { 'data-channel': channel.id, 'data-origin': origin.id, 'data-topic': topic.id });
          const box = label.querySelector('input');
          box.disabled = !origin.enabled;
          topicBoxes.push(box);
          topics.append(el('li', {}, [label]));
        }
        if (topicBoxes.length) block.append(topics);
        fieldset.append(block);
      }
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
      writeAddress();
      showFilters();
      refresh();
    });
    // The view buttons apply at once; the other filters with Apply (or Enter).
    for (const radio of $('filters').elements.view) {
      radio.addEventListener('change', () => $('filters').requestSubmit());
    }
    $('newer').addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - PAGE_SIZE);
      writeAddress();
      refresh();
    });
    $('older').addEventListener('click', () => {
      state.offset += PAGE_SIZE;
      writeAddress();
      refresh();
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
