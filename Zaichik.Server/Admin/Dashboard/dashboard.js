// The Zaichik dashboard: polls the admin API and renders four views chosen by the URL's hash
// (#/ topics, #/topics/<name> one topic, #/connections, #/cluster). Every value reaches the DOM through textContent
// or an attribute, never as markup. Rates are computed here from the counters' deltas between polls.
(() => {
  'use strict';

  const TOKEN_KEY = 'zaichik.adminToken';
  const CHART_SAMPLES = 60;
  const RECENT_MESSAGES = 20;
  const DEFAULT_INTERVAL_MS = 1000;
  const PAYLOAD_PREVIEW = 200;

  const pollInterval = readInterval(new URLSearchParams(location.search).get('interval'));

  const $ = (id) => document.getElementById(id);
  const view = $('view');
  const errorBar = $('error-bar');
  const tokenForm = $('token-form');
  const tokenInput = $('token-input');
  const forgetToken = $('forget-token');

  // Topic name -> the counters seen last and the rates computed from them.
  const rates = new Map();

  let timer = 0;
  let generation = 0;
  let polls = 0;
  let current = null;
  let server = null;

  function readInterval(text) {
    const value = Number.parseInt(text ?? '', 10);
    return Number.isFinite(value) && value >= 50 ? value : DEFAULT_INTERVAL_MS;
  }

  // ---- API ----

  class ApiError extends Error {
    constructor(status, detail, code) {
      super(detail);
      this.status = status;
      this.code = code;
    }
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }

  async function api(path) {
    const headers = { Accept: 'application/json' };
    const bearer = token();
    if (bearer) {
      headers.Authorization = 'Bearer ' + bearer;
    }

    let response;
    try {
      response = await fetch(path, { headers, cache: 'no-store' });
    } catch (error) {
      throw new ApiError(0, 'cannot reach the broker: ' + error.message, 'unreachable');
    }

    if (response.ok) {
      return response.json();
    }

    let problem = null;
    try {
      problem = await response.json();
    } catch {
      // Not a problem document: the status line is all there is to say.
    }

    const detail = (problem && (problem.detail || problem.title)) || `${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, detail, problem && problem.code);
  }

  const topicPath = (name) => 'api/topics/' + encodeURIComponent(name);

  // ---- Formatting ----

  const dash = '–';

  function count(value) {
    return value === null || value === undefined ? dash : Number(value).toLocaleString('en-US');
  }

  function bytes(value) {
    if (value === null || value === undefined) {
      return dash;
    }

    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let size = Number(value);
    let unit = 0;
    while (size >= 1024 && unit < units.length - 1) {
      size /= 1024;
      unit++;
    }

    return unit === 0 ? `${size} B` : `${size.toFixed(size < 10 ? 1 : 0)} ${units[unit]}`;
  }

  function rate(value) {
    if (value === null || value === undefined) {
      return dash;
    }

    return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
  }

  function duration(ms, zero) {
    if (ms === null || ms === undefined) {
      return dash;
    }

    if (ms === 0 && zero) {
      return zero;
    }

    const parts = [];
    let rest = Math.floor(ms / 1000);
    const days = Math.floor(rest / 86400);
    rest %= 86400;
    const hours = Math.floor(rest / 3600);
    rest %= 3600;
    const minutes = Math.floor(rest / 60);
    const seconds = rest % 60;
    if (ms < 1000) {
      return `${ms} ms`;
    }

    if (days) parts.push(`${days} d`);
    if (hours) parts.push(`${hours} h`);
    if (minutes && !days) parts.push(`${minutes} min`);
    if (seconds && !days && !hours) parts.push(`${seconds} s`);
    return parts.join(' ') || '0 s';
  }

  function time(iso) {
    if (!iso) {
      return dash;
    }

    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) {
      return String(iso);
    }

    return date.toISOString().replace('T', ' ').replace(/\.(\d{3})Z$/, '.$1 UTC');
  }

  function ago(iso) {
    const then = new Date(iso).getTime();
    if (!iso || Number.isNaN(then)) {
      return '';
    }

    return duration(Math.max(0, Date.now() - then)) + ' ago';
  }

  function preview(text) {
    const value = String(text ?? '');
    return value.length > PAYLOAD_PREVIEW ? value.slice(0, PAYLOAD_PREVIEW) + '…' : value;
  }

  // ---- DOM helpers (text only) ----

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) {
        continue;
      }

      if (name === 'class') {
        node.className = value;
      } else {
        node.setAttribute(name, value === true ? '' : String(value));
      }
    }

    for (const child of children.flat()) {
      if (child !== null && child !== undefined) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }

    return node;
  }

  // Sets a field's shown text and, for tests and scripts, its raw value in data-value ('' when unknown).
  function setField(node, text, value) {
    if (!node) {
      return;
    }

    if (node.textContent !== text) {
      node.textContent = text;
    }

    if (value !== undefined) {
      node.dataset.value = value === null || value === undefined ? '' : String(value);
    }
  }

  function field(root, name) {
    return root.querySelector(`[data-field="${name}"]`);
  }

  function table(id, columns) {
    return el('table', { id, class: 'grid' },
      el('thead', null, el('tr', null, columns.map(([label, numeric]) => el('th', { class: numeric ? 'num' : null, scope: 'col' }, label)))),
      el('tbody'));
  }

  function cells(columns) {
    return columns.map(([name, numeric]) => el('td', { 'data-field': name, class: numeric ? 'num' : null }));
  }

  // Brings tbody's rows in line with items, reusing the row of each key so the page does not flicker.
  function syncRows(tbody, items, keyOf, attribute, create, update) {
    const existing = new Map();
    for (const row of Array.from(tbody.rows)) {
      existing.set(row.getAttribute(attribute), row);
    }

    const rows = items.map((item) => {
      const key = String(keyOf(item));
      let row = existing.get(key);
      if (row) {
        existing.delete(key);
      } else {
        row = create(item);
        row.setAttribute(attribute, key);
      }

      update(row, item);
      return row;
    });

    for (const stale of existing.values()) {
      stale.remove();
    }

    rows.forEach((row, index) => {
      if (tbody.rows[index] !== row) {
        tbody.insertBefore(row, tbody.rows[index] || null);
      }
    });
  }

  function stateBadge(node, state, reason) {
    setField(node, state ?? dash, state);
    node.className = 'state state-' + (state || 'unknown');
    if (reason) {
      node.title = reason;
    } else {
      node.removeAttribute('title');
    }
  }

  // ---- Rates ----

  function observe(topic, at) {
    let entry = rates.get(topic.name);
    if (!entry) {
      entry = { at, messagesIn: topic.messagesIn, messagesOut: topic.messagesOut, rateIn: null, rateOut: null, samples: [] };
      rates.set(topic.name, entry);
      return entry;
    }

    const seconds = (at - entry.at) / 1000;
    if (seconds < 0.02) {
      return entry;
    }

    const deltaIn = topic.messagesIn - entry.messagesIn;
    const deltaOut = topic.messagesOut - entry.messagesOut;
    if (!Number.isFinite(deltaIn) || !Number.isFinite(deltaOut) || deltaIn < 0 || deltaOut < 0) {
      // Counters unknown, or gone back because the broker restarted: start over from these.
      entry.rateIn = null;
      entry.rateOut = null;
      entry.samples = [];
    } else {
      entry.rateIn = deltaIn / seconds;
      entry.rateOut = deltaOut / seconds;
      entry.samples.push({ in: entry.rateIn, out: entry.rateOut });
      if (entry.samples.length > CHART_SAMPLES) {
        entry.samples.splice(0, entry.samples.length - CHART_SAMPLES);
      }
    }

    entry.at = at;
    entry.messagesIn = topic.messagesIn;
    entry.messagesOut = topic.messagesOut;
    return entry;
  }

  // ---- Header, errors, token ----

  function renderServer(latest) {
    server = latest;
    setField($('server-version'), server.version ?? dash, server.version);
    setField($('server-uptime'), duration(server.uptimeMs), server.uptimeMs);
    setField($('server-auth'), server.auth ? 'tokens' : 'off', server.auth);
    setField($('server-durability'), server.durability ?? dash, server.durability);
    setField($('server-connections'), count(server.connections), server.connections);
    const started = server.startedAt ? 'started ' + time(server.startedAt) : '';
    $('server-uptime').title = started;
  }

  function showError(message) {
    errorBar.textContent = message;
    errorBar.hidden = false;
  }

  function clearError() {
    if (!errorBar.hidden) {
      errorBar.hidden = true;
      errorBar.textContent = '';
    }
  }

  function askForToken(error) {
    clearError();
    const reason = token()
      ? `The token was refused (${error.status}): ${error.message}`
      : `The broker needs an admin token (${error.status}): ${error.message}`;
    $('token-reason').textContent = reason;
    tokenForm.dataset.status = String(error.status);
    tokenForm.hidden = false;
    view.hidden = true;
    document.body.dataset.auth = 'required';
    tokenInput.focus();
  }

  function tokenAccepted() {
    if (!tokenForm.hidden) {
      tokenForm.hidden = true;
      view.hidden = false;
    }

    document.body.dataset.auth = token() ? 'token' : 'none';
    forgetToken.hidden = !token();
  }

  tokenForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) {
      return;
    }

    try {
      sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      showError('this browser does not allow sessionStorage, so the token cannot be kept');
      return;
    }

    tokenInput.value = '';
    delete tokenForm.dataset.status;
    tokenForm.hidden = true;
    view.hidden = false;
    poll();
  });

  forgetToken.addEventListener('click', () => {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Nothing kept, nothing to forget.
    }

    forgetToken.hidden = true;
    poll();
  });

  // ---- Views ----

  const topicColumns = [
    ['name'], ['state'], ['messageCount', true], ['bytesOnDisk', true], ['rate', true], ['rateOut', true],
    ['subscribers', true], ['consumerCount', true], ['maxLag', true],
  ];

  function topicsView() {
    const filter = el('input', { id: 'topic-filter', type: 'search', placeholder: 'Filter by prefix', 'aria-label': 'Filter topics by name prefix', spellcheck: 'false' });
    const list = table('topics', [
      ['Name'], ['State'], ['Messages', true], ['Size on disk', true], ['In (msgs/s)', true], ['Out (msgs/s)', true],
      ['Subscribers', true], ['Consumers', true], ['Max lag', true],
    ]);
    const summary = el('span', { id: 'topics-summary', class: 'muted' });
    const empty = el('p', { id: 'topics-empty', class: 'empty', hidden: true }, 'No topics.');
    let debounce = 0;
    filter.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(poll, 250);
    });

    return {
      kind: 'topics',
      root: el('section', null, el('div', { class: 'section-head' }, el('h1', null, 'Topics'), summary, filter), list, empty),
      async load() {
        const prefix = filter.value.trim();
        const topics = await api('api/topics' + (prefix ? '?prefix=' + encodeURIComponent(prefix) : ''));
        return { topics, prefix, at: performance.now() };
      },
      render({ topics, prefix, at }) {
        const tbody = list.tBodies[0];
        syncRows(tbody, topics, (t) => t.name, 'data-topic', (t) => {
          const row = el('tr', null, cells(topicColumns));
          const link = el('a', { href: '#/topics/' + encodeURIComponent(t.name) });
          field(row, 'name').append(link);
          field(row, 'state').append(el('span', { class: 'state' }));
          return row;
        }, (row, t) => {
          const seen = observe(t, at);
          setField(row.querySelector('[data-field="name"] a'), t.name);
          stateBadge(row.querySelector('[data-field="state"] span'), t.state, t.quarantineReason);
          setField(field(row, 'messageCount'), count(t.messageCount), t.messageCount);
          setField(field(row, 'bytesOnDisk'), bytes(t.bytesOnDisk), t.bytesOnDisk);
          setField(field(row, 'rate'), rate(seen.rateIn), seen.rateIn);
          setField(field(row, 'rateOut'), rate(seen.rateOut), seen.rateOut);
          setField(field(row, 'subscribers'), count(t.subscribers), t.subscribers);
          setField(field(row, 'consumerCount'), count(t.consumerCount), t.consumerCount);
          setField(field(row, 'maxLag'), count(t.maxLag), t.maxLag);
        });
        empty.hidden = topics.length > 0;
        list.hidden = topics.length === 0;
        summary.textContent = topicsSummary(topics.length, prefix);
      },
    };
  }

  // The API answers one page of topics: say so when there are more than it showed.
  function topicsSummary(shown, prefix) {
    const total = server && server.topics ? server.topics.total : null;
    const admin = server && server.options ? server.options.Admin : null;
    const pageSize = (admin && (admin.MaxTopicsPerPage ?? admin.maxTopicsPerPage)) || 1000;
    const plural = (n) => (n === 1 ? '1 topic' : `${count(n)} topics`);
    if (!prefix && typeof total === 'number' && total > shown) {
      return `${count(shown)} of ${plural(total)}: filter by prefix to see the others`;
    }

    if (shown >= pageSize) {
      return `the first ${plural(shown)}: filter by a longer prefix to see the others`;
    }

    return plural(shown);
  }

  function definitions(id, entries) {
    return el('dl', { id, class: 'facts' }, entries.map(([label, name]) =>
      el('div', null, el('dt', null, label), el('dd', { 'data-field': name }, dash))));
  }

  const consumerColumns = [['name'], ['committedSequence', true], ['lag', true], ['connected'], ['lost']];
  const groupColumns = [['name'], ['members', true], ['doneSequence', true], ['pending', true], ['lag', true], ['redelivered', true], ['deadLettered', true], ['settings']];
  const messageColumns = [['sequence', true], ['timestamp'], ['key'], ['headers'], ['payload'], ['size', true]];

  function topicView(name) {
    const badge = el('span', { class: 'state', 'data-field': 'state' });
    const quarantine = el('p', { id: 'quarantine', class: 'warning', hidden: true });
    const settings = definitions('topic-settings', [
      ['Retention', 'retentionTtlMs'], ['Compaction window', 'compactionWindowMs'],
      ['Durability', 'durability'], ['Commit interval', 'commitIntervalMs'],
    ]);
    const storage = definitions('topic-storage', [
      ['First sequence', 'firstSequence'], ['Last sequence', 'lastSequence'], ['Messages', 'messageCount'],
      ['Size on disk', 'bytesOnDisk'], ['Duplicates dropped', 'duplicatesDropped'], ['Lost ranges', 'holes'],
    ]);
    const traffic = definitions('topic-traffic', [
      ['In (msgs/s)', 'rateIn'], ['Out (msgs/s)', 'rateOut'], ['Messages in', 'messagesIn'], ['Messages out', 'messagesOut'],
      ['Bytes in', 'bytesIn'], ['Bytes out', 'bytesOut'], ['Subscribers', 'subscribers'], ['Consumers', 'consumerCount'],
    ]);
    const chart = el('canvas', { id: 'rate-chart', class: 'chart', role: 'img', 'aria-label': `Messages per second in and out of ${name}, last ${CHART_SAMPLES} samples` });
    const consumers = table('consumers', [['Name'], ['Committed sequence', true], ['Lag', true], ['Connected'], ['Position']]);
    const noConsumers = el('p', { class: 'empty', id: 'consumers-empty', hidden: true }, 'No durable consumers.');
    const messages = table('messages', [['Sequence', true], ['Time'], ['Key'], ['Headers'], ['Payload'], ['Size', true]]);
    const noMessages = el('p', { class: 'empty', id: 'messages-empty', hidden: true }, 'No stored messages.');
    const groups = table('groups', [['Group'], ['Members', true], ['Done up to', true], ['Pending', true], ['Lag', true], ['Redelivered', true], ['Dead-lettered', true], ['Settings']]);
    const groupsSection = el('section', { id: 'groups-section', hidden: true }, el('h2', null, 'Consumer groups'), groups);
    const holes = table('holes', [['First', true], ['Last', true], ['Reason']]);
    const holesSection = el('section', { id: 'holes-section', hidden: true }, el('h2', null, 'Lost ranges'), holes);

    return {
      kind: 'topic',
      name,
      root: el('section', { id: 'topic', 'data-name': name },
        el('p', { class: 'crumbs' }, el('a', { href: '#/' }, 'Topics'), ' / '),
        el('div', { class: 'section-head' }, el('h1', { id: 'topic-name' }, name), badge),
        quarantine,
        el('div', { class: 'cards' },
          el('section', { class: 'card' }, el('h2', null, 'Settings'), settings),
          el('section', { class: 'card' }, el('h2', null, 'Storage'), storage),
          el('section', { class: 'card' }, el('h2', null, 'Traffic'), traffic)),
        el('section', { class: 'card chart-card' },
          el('div', { class: 'section-head' }, el('h2', null, 'Rate'),
            el('span', { class: 'legend' }, el('i', { class: 'swatch in' }), 'in', el('i', { class: 'swatch out' }), 'out',
              el('span', { class: 'muted' }, ` msgs/s, last ${CHART_SAMPLES} samples`))),
          chart),
        el('section', null, el('h2', null, 'Consumers'), consumers, noConsumers),
        groupsSection,
        holesSection,
        el('section', null, el('h2', null, 'Recent messages'), messages, noMessages)),
      async load() {
        const topic = await api(topicPath(name));
        const at = performance.now();
        let peek = null;
        if (topic.lastSequence > 0) {
          const from = Math.max(topic.firstSequence ?? 1, topic.lastSequence - RECENT_MESSAGES + 1);
          peek = await api(`${topicPath(name)}/messages?from=${from}&limit=${RECENT_MESSAGES}`);
        }

        return { topic, peek, at };
      },
      render({ topic, peek, at }) {
        const seen = observe(topic, at);
        const root = this.root;
        stateBadge(badge, topic.state, topic.quarantineReason);
        quarantine.hidden = topic.state !== 'quarantined';
        quarantine.textContent = topic.quarantineReason ? 'Quarantined: ' + topic.quarantineReason : 'Quarantined';

        setField(field(settings, 'retentionTtlMs'), duration(topic.retentionTtlMs, 'none (live only)'), topic.retentionTtlMs);
        setField(field(settings, 'compactionWindowMs'), duration(topic.compactionWindowMs, 'off'), topic.compactionWindowMs);
        setField(field(settings, 'durability'), topic.durability ?? dash, topic.durability);
        setField(field(settings, 'commitIntervalMs'), duration(topic.commitIntervalMs), topic.commitIntervalMs);

        for (const key of ['firstSequence', 'lastSequence', 'messageCount', 'duplicatesDropped', 'holes']) {
          setField(field(storage, key), count(topic[key]), topic[key]);
        }

        setField(field(storage, 'bytesOnDisk'), bytes(topic.bytesOnDisk), topic.bytesOnDisk);
        setField(field(traffic, 'rateIn'), rate(seen.rateIn), seen.rateIn);
        setField(field(traffic, 'rateOut'), rate(seen.rateOut), seen.rateOut);
        for (const key of ['messagesIn', 'messagesOut', 'subscribers', 'consumerCount']) {
          setField(field(traffic, key), count(topic[key]), topic[key]);
        }

        setField(field(traffic, 'bytesIn'), bytes(topic.bytesIn), topic.bytesIn);
        setField(field(traffic, 'bytesOut'), bytes(topic.bytesOut), topic.bytesOut);
        drawChart(chart, seen.samples);

        const consumerList = topic.consumers || [];
        syncRows(consumers.tBodies[0], consumerList, (c) => c.name, 'data-consumer', () => el('tr', null, cells(consumerColumns)), (row, c) => {
          setField(field(row, 'name'), c.name);
          setField(field(row, 'committedSequence'), count(c.committedSequence), c.committedSequence);
          setField(field(row, 'lag'), count(c.lag), c.lag);
          setField(field(row, 'connected'), c.connected ? 'connected' : 'not connected', c.connected);
          setField(field(row, 'lost'), c.lost ? 'lost' : 'stored', c.lost);
          row.classList.toggle('bad', Boolean(c.lost));
        });
        consumers.hidden = consumerList.length === 0;
        noConsumers.hidden = consumerList.length > 0;

        const groupList = topic.groups || [];
        syncRows(groups.tBodies[0], groupList, (g) => g.name, 'data-group', () => el('tr', null, cells(groupColumns)), (row, g) => {
          setField(field(row, 'name'), g.name);
          for (const key of ['members', 'doneSequence', 'pending', 'lag', 'redelivered', 'deadLettered']) {
            setField(field(row, key), count(g[key]), g[key]);
          }

          const settings = `AckWait ${duration(g.ackWaitMs)}, MaxDeliver ${g.maxDeliver || 'unlimited'}` + (g.deadLetterTopic ? `, dead letters to ${g.deadLetterTopic}` : '');
          setField(field(row, 'settings'), g.lost ? 'state lost' : settings);
          row.classList.toggle('bad', Boolean(g.lost));
        });
        groupsSection.hidden = groupList.length === 0;

        const holeList = topic.holeRanges || [];
        syncRows(holes.tBodies[0], holeList, (h) => `${h.first}-${h.last}`, 'data-hole', () => el('tr', null, cells([['first', true], ['last', true], ['reason']])), (row, h) => {
          setField(field(row, 'first'), count(h.first), h.first);
          setField(field(row, 'last'), count(h.last), h.last);
          setField(field(row, 'reason'), h.reason ?? dash);
        });
        holesSection.hidden = holeList.length === 0;

        // Newest first: the last ~20 stored messages.
        const messageList = peek ? [...peek.messages].reverse() : [];
        syncRows(messages.tBodies[0], messageList, (m) => m.sequence, 'data-sequence', () => el('tr', null, cells(messageColumns)), (row, m) => {
          setField(field(row, 'sequence'), count(m.sequence), m.sequence);
          setField(field(row, 'timestamp'), time(m.timestamp), m.timestamp);
          setField(field(row, 'key'), m.key === null || m.key === undefined ? dash : encoded(m.key, m.keyEncoding), m.key);
          const headers = (m.headers || []).map((h) => `${h.key}=${encoded(h.value, h.encoding)}`).join('; ');
          setField(field(row, 'headers'), headers ? preview(headers) : dash);
          setField(field(row, 'payload'), preview(encoded(m.payload, m.payloadEncoding)));
          field(row, 'payload').classList.toggle('binary', m.payloadEncoding === 'base64');
          setField(field(row, 'size'), bytes(m.size), m.size);
        });
        messages.hidden = messageList.length === 0;
        noMessages.hidden = messageList.length > 0;
        root.dataset.loaded = 'true';
      },
    };
  }

  function encoded(value, encoding) {
    return encoding === 'base64' ? 'base64:' + value : String(value ?? '');
  }

  const connectionColumns = [
    ['remoteAddress'], ['token'], ['connectedAt'], ['subscriptions'], ['inFlight', true], ['publishesInFlight', true],
    ['messagesIn', true], ['messagesOut', true], ['bytesIn', true], ['bytesOut', true],
  ];

  function connectionsView() {
    const list = table('connections', [
      ['Remote'], ['Token'], ['Connected since'], ['Subscriptions'], ['Deliveries in flight', true], ['Publishes in flight', true],
      ['Msgs in', true], ['Msgs out', true], ['Bytes in', true], ['Bytes out', true],
    ]);
    const summary = el('span', { id: 'connections-summary', class: 'muted' });
    const empty = el('p', { class: 'empty', id: 'connections-empty', hidden: true }, 'No client is connected.');
    return {
      kind: 'connections',
      root: el('section', null, el('div', { class: 'section-head' }, el('h1', null, 'Connections'), summary), list, empty),
      async load() {
        return { connections: await api('api/connections') };
      },
      render({ connections }) {
        syncRows(list.tBodies[0], connections, (c) => c.id, 'data-connection', () => el('tr', null, cells(connectionColumns)), (row, c) => {
          setField(field(row, 'remoteAddress'), (c.remoteAddress ?? dash) + (c.tls ? ' (TLS)' : ''), c.remoteAddress);
          setField(field(row, 'token'), c.token ?? dash, c.token);
          const since = field(row, 'connectedAt');
          setField(since, time(c.connectedAt), c.connectedAt);
          since.title = ago(c.connectedAt);
          const subscriptions = c.subscriptions || [];
          const chips = field(row, 'subscriptions');
          const described = subscriptions.map((s) => s.topic + (s.durableName ? ` (${s.durableName})` : '')).join(', ');
          if (chips.dataset.value !== described) {
            chips.replaceChildren(...subscriptions.map((s) => el('span', {
              class: 'chip',
              'data-subscription': s.topic,
              title: `prefetch ${s.prefetch}, in flight ${s.inFlight}, started at ${s.startSequence}`,
            }, s.topic, s.durableName ? el('small', null, ' ' + s.durableName) : null)));
            if (subscriptions.length === 0) {
              chips.append(dash);
            }

            chips.dataset.value = described;
          }

          const inFlight = subscriptions.reduce((sum, s) => sum + (s.inFlight || 0), 0);
          setField(field(row, 'inFlight'), count(inFlight), inFlight);
          setField(field(row, 'publishesInFlight'), count(c.publishesInFlight), c.publishesInFlight);
          setField(field(row, 'messagesIn'), count(c.messagesIn), c.messagesIn);
          setField(field(row, 'messagesOut'), count(c.messagesOut), c.messagesOut);
          setField(field(row, 'bytesIn'), bytes(c.bytesIn), c.bytesIn);
          setField(field(row, 'bytesOut'), bytes(c.bytesOut), c.bytesOut);
        });
        list.hidden = connections.length === 0;
        empty.hidden = connections.length > 0;
        summary.textContent = connections.length === 1 ? '1 connection' : `${count(connections.length)} connections`;
      },
    };
  }

  const memberColumns = [
    ['id'], ['role'], ['status'], ['lastIndex', true], ['appliedIndex', true], ['lag', true], ['clientEndpoint'], ['error'],
  ];

  // The cluster as any node sees it: the leader, the term, and each member's role, log position and lag.
  function clusterView() {
    const list = table('members', [
      ['Node'], ['Role'], ['Raft link'], ['Last index', true], ['Applied', true], ['Lag', true], ['Clients at'], ['Problem'],
    ]);
    const summary = el('span', { id: 'cluster-summary', class: 'muted' });
    const single = el('p', { class: 'empty', id: 'cluster-off', hidden: true }, 'This broker runs as a single node: it is not part of a cluster.');
    return {
      kind: 'cluster',
      root: el('section', null, el('div', { class: 'section-head' }, el('h1', null, 'Cluster'), summary), list, single),
      async load() {
        try {
          return { cluster: await api('api/cluster') };
        } catch (error) {
          if (error instanceof ApiError && error.code === 'cluster-off') {
            return { cluster: null };
          }

          throw error;
        }
      },
      render({ cluster }) {
        list.hidden = cluster === null;
        single.hidden = cluster !== null;
        if (cluster === null) {
          summary.textContent = '';
          return;
        }

        summary.textContent = `leader ${cluster.leader ?? 'none'} · term ${count(cluster.term)} · asked ${cluster.nodeId}, snapshot at entry ${count(cluster.snapshotIndex)}`;
        syncRows(list.tBodies[0], cluster.members || [], (m) => m.id, 'data-member', () => el('tr', null, cells(memberColumns)), (row, m) => {
          setField(field(row, 'id'), m.id + (m.isSelf ? ' (asked)' : ''), m.id);
          setField(field(row, 'role'), m.role ?? dash, m.role);
          setField(field(row, 'status'), m.status ?? dash, m.status);
          setField(field(row, 'lastIndex'), m.lastIndex == null ? dash : count(m.lastIndex), m.lastIndex);
          setField(field(row, 'appliedIndex'), m.appliedIndex == null ? dash : count(m.appliedIndex), m.appliedIndex);
          setField(field(row, 'lag'), m.lag == null ? dash : count(m.lag), m.lag);
          setField(field(row, 'clientEndpoint'), m.clientEndpoint ?? dash, m.clientEndpoint);
          setField(field(row, 'error'), m.error ?? dash, m.error);
          row.classList.toggle('leader', m.isLeader === true);
        });
      },
    };
  }

  // ---- Chart ----

  function niceCeiling(value) {
    if (value <= 1) {
      return 1;
    }

    const magnitude = 10 ** Math.floor(Math.log10(value));
    const step = [1, 2, 2.5, 5, 10].find((s) => s * magnitude >= value);
    return step * magnitude;
  }

  function drawChart(canvas, samples) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 180;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }

    const context = canvas.getContext('2d');
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);

    const style = getComputedStyle(canvas);
    const colour = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    const left = 52;
    const right = 12;
    const top = 10;
    const bottom = 22;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const highest = samples.reduce((max, s) => Math.max(max, s.in, s.out), 0);
    const ceiling = niceCeiling(highest);

    context.font = '11px system-ui, sans-serif';
    context.fillStyle = colour('--chart-text', '#667');
    context.strokeStyle = colour('--chart-grid', '#e3e6ea');
    context.lineWidth = 1;
    context.textAlign = 'right';
    context.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = Math.round(top + plotHeight - (plotHeight * i) / 4) + 0.5;
      context.beginPath();
      context.moveTo(left, y);
      context.lineTo(left + plotWidth, y);
      context.stroke();
      context.fillText(rate((ceiling * i) / 4), left - 6, y);
    }

    context.textAlign = 'left';
    context.textBaseline = 'alphabetic';
    context.fillText(`${CHART_SAMPLES} polls ago`, left, height - 6);
    context.textAlign = 'right';
    context.fillText('now', left + plotWidth, height - 6);

    const x = (index) => left + (plotWidth * (CHART_SAMPLES - samples.length + index)) / (CHART_SAMPLES - 1);
    const y = (value) => top + plotHeight - (plotHeight * value) / ceiling;
    for (const [key, name, fallback] of [['out', '--chart-out', '#2a9d5c'], ['in', '--chart-in', '#2f6fdd']]) {
      if (samples.length === 0) {
        break;
      }

      context.strokeStyle = colour(name, fallback);
      context.lineWidth = 2;
      context.lineJoin = 'round';
      context.beginPath();
      samples.forEach((sample, index) => {
        if (index === 0) {
          context.moveTo(x(index), y(sample[key]));
        } else {
          context.lineTo(x(index), y(sample[key]));
        }
      });
      if (samples.length === 1) {
        context.lineTo(x(0) + 2, y(samples[0][key]));
      }

      context.stroke();
    }

    const last = samples[samples.length - 1];
    canvas.dataset.samples = String(samples.length);
    canvas.dataset.lastIn = last ? String(last.in) : '';
    canvas.dataset.lastOut = last ? String(last.out) : '';
    canvas.dataset.peakIn = String(samples.reduce((max, s) => Math.max(max, s.in), 0));
    canvas.dataset.peakOut = String(samples.reduce((max, s) => Math.max(max, s.out), 0));
  }

  // ---- Routing and polling ----

  function route() {
    const hash = location.hash.replace(/^#/, '') || '/';
    if (hash === '/connections') {
      return { kind: 'connections' };
    }

    if (hash === '/cluster') {
      return { kind: 'cluster' };
    }

    const match = /^\/topics\/(.+)$/.exec(hash);
    if (match) {
      try {
        return { kind: 'topic', name: decodeURIComponent(match[1]) };
      } catch {
        return { kind: 'topics' };
      }
    }

    return { kind: 'topics' };
  }

  function navigate() {
    const target = route();
    current = target.kind === 'topic' ? topicView(target.name)
      : target.kind === 'connections' ? connectionsView()
      : target.kind === 'cluster' ? clusterView()
      : topicsView();
    view.replaceChildren(current.root);
    document.body.dataset.view = current.kind;
    document.title = target.kind === 'topic' ? `${target.name} · Zaichik`
      : target.kind === 'connections' ? 'Connections · Zaichik'
      : target.kind === 'cluster' ? 'Cluster · Zaichik'
      : 'Zaichik';
    for (const link of document.querySelectorAll('[data-nav]')) {
      const active = link.dataset.nav === (current.kind === 'topic' ? 'topics' : current.kind);
      if (active) {
        link.setAttribute('aria-current', 'page');
      } else {
        link.removeAttribute('aria-current');
      }
    }

    clearError();
    poll();
  }

  async function poll() {
    clearTimeout(timer);
    const mine = ++generation;
    const shown = current;
    try {
      // The header is drawn even when the view's own call fails (a topic that does not exist, say).
      const header = api('api/server').then((latest) => {
        if (mine === generation) {
          renderServer(latest);
        }
      });
      const [, data] = await Promise.all([header, shown.load()]);
      if (mine !== generation) {
        return;
      }

      tokenAccepted();
      shown.render(data);
      clearError();
      polls++;
      document.body.dataset.polls = String(polls);
    } catch (error) {
      if (mine !== generation) {
        return;
      }

      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        // Polling waits for a token: asking again every second would only repeat the refusal.
        askForToken(error);
        return;
      }

      showError(error instanceof ApiError && error.status ? `${error.status} · ${error.message}` : String(error.message || error));
      if (!(error instanceof ApiError)) {
        console.error(error);
      }
    }

    timer = setTimeout(poll, pollInterval);
  }

  window.addEventListener('hashchange', navigate);
  document.body.dataset.interval = String(pollInterval);
  navigate();
})();
