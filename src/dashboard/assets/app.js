// The Flux dashboard: a page over the JSON API under /api/ (README, "Dashboard").
// Every value from the store is put on the page as text (textContent, attributes): never as
// HTML, so a run whose output is "<script>..." shows those characters.
'use strict';

const state = {
  info: null,
  view: null,        // 'runs' | 'run' | 'workers'
  runId: null,
  runs: { cursor: null, rows: 0, extraPages: false },
  run: { historyLength: 0, status: null, entries: [], generation: 0 },
  timer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function showMessage(text) {
  const m = $('message');
  m.textContent = text || '';
  m.hidden = !text;
}

async function api(path, options) {
  const res = await fetch(path, options);
  let body = null;
  try { body = await res.json(); } catch (e) { body = { error: res.statusText }; }
  if (!res.ok) {
    const err = new Error((body && body.error) || ('HTTP ' + res.status));
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---- formatting ------------------------------------------------------------------------------

// "2026-12-01T03:04:05.123456Z" as milliseconds since 1970, keeping the microseconds.
function parseTime(s) {
  if (!s) return null;
  const m = String(s).match(/^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/);
  if (!m) return Date.parse(s);
  return Date.parse(m[1] + 'Z') + (m[2] ? Number('0.' + m[2]) * 1000 : 0);
}

function shortTime(s) {
  return s ? String(s).slice(0, 19).replace('T', ' ') : '';
}

function duration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '';
  if (ms < 1) return (ms * 1000).toFixed(0) + ' µs';
  if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 0) + ' ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
  return Math.floor(m / 60) + 'h ' + String(m % 60).padStart(2, '0') + 'm';
}

function runDuration(run) {
  const start = parseTime(run.created);
  const end = run.finished ? parseTime(run.finished) : Date.now();
  return end - start;
}

function statusBadge(status) {
  return el('span', { class: 'status ' + status, text: status });
}

function isTruncated(v) {
  return v && typeof v === 'object' && !Array.isArray(v) && v.truncated === true && 'preview' in v;
}

function valueText(v) {
  if (isTruncated(v)) return String(v.preview);
  return JSON.stringify(v, null, 2);
}

// ---- routing and polling ---------------------------------------------------------------------

function live() { return $('live').checked; }

function schedule(fn, ms) {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (live()) await fn();
    schedule(fn, ms);
  }, ms);
}

function route() {
  clearTimeout(state.timer);
  showMessage('');
  const hash = location.hash || '#/runs';
  const m = hash.match(/^#\/runs\/([^/?]+)$/);
  for (const v of ['runs-view', 'run-view', 'workers-view']) $(v).hidden = true;
  $('nav-runs').classList.toggle('active', !hash.startsWith('#/workers'));
  $('nav-workers').classList.toggle('active', hash.startsWith('#/workers'));
  if (m) {
    state.view = 'run';
    state.runId = decodeURIComponent(m[1]);
    $('run-view').hidden = false;
    openRun(state.runId);
  } else if (hash.startsWith('#/workers')) {
    state.view = 'workers';
    $('workers-view').hidden = false;
    loadWorkers();
    schedule(loadWorkers, 2000);
  } else {
    state.view = 'runs';
    $('runs-view').hidden = false;
    loadRuns(false);
    schedule(() => (state.runs.extraPages ? Promise.resolve() : loadRuns(false)), 2000);
  }
}

// ---- runs ------------------------------------------------------------------------------------

function localToIso(value) {
  // datetime-local values are read as UTC (the page shows UTC everywhere).
  if (!value) return '';
  return value.length === 16 ? value + ':00Z' : value + 'Z';
}

function runsQuery(cursor) {
  const q = new URLSearchParams();
  const status = $('f-status').value;
  if (status) q.set('status', status);
  if ($('f-pipeline').value.trim()) q.set('pipeline', $('f-pipeline').value.trim());
  if ($('f-id').value.trim()) q.set('id', $('f-id').value.trim());
  if ($('f-since').value) q.set('since', localToIso($('f-since').value));
  if ($('f-until').value) q.set('until', localToIso($('f-until').value));
  q.set('limit', '50');
  if (cursor) q.set('cursor', cursor);
  return '/api/runs?' + q.toString();
}

function renderCounts(counts) {
  const box = $('counts');
  box.replaceChildren();
  const current = $('f-status').value;
  for (const s of Object.keys(counts).filter((k) => k !== 'total')) {
    const b = el('button', { type: 'button', class: s === current ? 'on' : '',
      'data-status': s, text: s + ' ' + counts[s] });
    b.addEventListener('click', () => {
      $('f-status').value = s === current ? '' : s;
      loadRuns(false);
    });
    box.append(b);
  }
  box.append(el('span', { class: 'muted', text: 'total ' + counts.total }));
}

// "done/total" steps; "—" for a record written before Flux counted them.
function stepsText(run) {
  if (run.steps_total === null || run.steps_total === undefined) return '\u2014';
  const done = run.steps_done === null || run.steps_done === undefined ? '\u2014' : run.steps_done;
  return done + '/' + run.steps_total;
}

function runRow(run) {
  const link = el('a', { href: '#/runs/' + encodeURIComponent(run.id), text: run.id });
  return el('tr', { class: 'run', 'data-id': run.id, 'data-status': run.status },
    el('td', { class: 'id' }, link),
    el('td', { text: run.pipeline }),
    el('td', {}, statusBadge(run.status)),
    el('td', { class: 'mono', text: shortTime(run.created) }),
    el('td', { text: duration(runDuration(run)) }),
    el('td', { class: 'steps', text: stepsText(run) }),
    el('td', { class: 'err', title: run.error ? run.error.message : '',
      text: run.error ? run.error.message : '' }));
}

async function loadRuns(more) {
  try {
    const query = runsQuery(more ? state.runs.cursor : null);
    const page = await api(query);
    const body = $('runs').tBodies[0];
    // A live refresh that brings nothing new leaves the table as it is.
    const key = query + JSON.stringify(page);
    if (!more && key === state.runs.lastKey) return;
    state.runs.lastKey = more ? null : key;
    if (!more) {
      body.replaceChildren();
      state.runs.extraPages = false;
    } else {
      state.runs.extraPages = true;
    }
    for (const run of page.runs) body.append(runRow(run));
    state.runs.cursor = page.next_cursor;
    $('more').hidden = !page.next_cursor;
    $('runs-empty').hidden = body.rows.length > 0;
    renderCounts(page.counts);
    showMessage(page.corrupt.length ? page.corrupt.length + ' run record(s) cannot be read: ' +
      page.corrupt.map((c) => c.key).join(', ') : '');
  } catch (e) {
    showMessage(e.message);
  }
}

// ---- one run ---------------------------------------------------------------------------------

function metaRow(dl, name, value) {
  dl.append(el('dt', { text: name }), el('dd', {}, value instanceof Node ? value : String(value)));
}

function renderMeta(detail) {
  const run = detail.run;
  $('r-id').textContent = run.id;
  $('r-status').replaceChildren(statusBadge(run.status));
  $('r-status').dataset.status = run.status;
  const dl = $('r-meta');
  dl.replaceChildren();
  metaRow(dl, 'pipeline', run.pipeline + ' (fingerprint ' + run.fingerprint + ')');
  metaRow(dl, 'created', run.created);
  metaRow(dl, run.finished ? 'finished' : 'updated', run.finished || run.updated);
  metaRow(dl, 'duration', duration(runDuration(run)));
  metaRow(dl, 'owner', run.owner || '(none)');
  metaRow(dl, 'lease', detail.lease_holder || '(none)');
  metaRow(dl, 'steps done', el('span', { id: 'r-steps', text: stepsText(run) }));
  metaRow(dl, 'history entries', detail.history_length);
  const req = detail.resume_request;
  if (req) {
    metaRow(dl, req.verb + ' request', el('span', { id: 'r-request', 'data-state': req.state,
      text: req.state === 'refused'
        ? 'refused: ' + req.refusal + ' (asked by ' + req.by + ' at ' + req.at + ')'
        : 'pending since ' + req.at + ', asked by ' + req.by + '; waiting for ' + req.waiting_for }));
  }
  metaRow(dl, 'input', JSON.stringify(run.input));
  if (run.status === 'completed') metaRow(dl, 'output', el('span', { id: 'r-output', text: JSON.stringify(run.output) }));
  if (run.error) metaRow(dl, 'error', el('span', { id: 'r-error', text: run.error.message }));
  if (run.history_values !== 'full') metaRow(dl, 'history values', run.history_values);
  const base = '/api/runs/' + encodeURIComponent(run.id) + '/export?format=';
  $('x-json').href = base + 'json';
  $('x-trace').href = base + 'trace';
  const a = (state.info && state.info.actions) || {};
  $('a-cancel').hidden = !(a.cancel && run.status === 'running');
  $('a-resume').hidden = !(a.resume && (run.status === 'cancelled' ||
    (run.status === 'running' && !detail.lease_holder)));
  $('a-retry').hidden = !(a.retry && run.status === 'failed');
  $('kv').textContent = JSON.stringify(detail.kv, null, 2);
  $('shared').textContent = JSON.stringify(detail.shared, null, 2);
  const rel = $('related');
  rel.replaceChildren();
  const link = (id, label, status) => el('li', { class: 'related' }, label + ' ',
    el('a', { href: '#/runs/' + encodeURIComponent(id), text: id }), ' ',
    status ? statusBadge(status) : '');
  if (detail.parent) rel.append(link(detail.parent.id, 'parent (step ' + detail.parent.step + ')', detail.parent.status));
  for (const c of detail.children) rel.append(link(c.id, 'child of step ' + c.step + ' (' + c.node + ')', c.status));
  if (!rel.children.length) rel.append(el('li', { class: 'muted', text: 'none' }));
}

function historyMatches(entry, filter) {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return [entry.node, entry.step, entry.status, entry.worker || 'owner', entry.type, entry.error || '']
    .some((x) => String(x).toLowerCase().includes(f));
}

function appendHistory(entries) {
  const body = $('history').tBodies[0];
  const filter = $('h-filter').value.trim();
  for (const e of entries) {
    state.run.entries.push(e);
    const row = el('tr', { class: 'entry', 'data-seq': String(e.seq), 'data-status': e.status },
      el('td', { text: String(e.seq) }),
      el('td', { class: 'mono', text: e.step }),
      el('td', { text: e.type === 'node' ? e.node : e.node + ' (' + e.type + ')' }),
      el('td', { text: String(e.attempt) }),
      el('td', { class: 'mono', text: e.worker || '(owner)' }),
      el('td', { text: duration(e.duration_ns / 1e6) }),
      el('td', {}, statusBadge(e.status)),
      el('td', { class: 'err', title: e.error || '', text: e.error || '' }));
    row.hidden = !historyMatches(e, filter);
    row.addEventListener('click', () => toggleValues(row, e));
    body.append(row);
  }
}

function valueBlock(label, v) {
  const box = el('div', {}, el('strong', { text: label }));
  if (isTruncated(v)) box.append(' ', el('span', { class: 'note', text: '(truncated: the history keeps only the first bytes)' }));
  box.append(el('pre', { class: 'value', text: valueText(v) }));
  return box;
}

function toggleValues(row, e) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains('values')) { next.remove(); return; }
  const cell = el('td', { colspan: '8' }, el('div', { class: 'two' },
    valueBlock('input', e.input), valueBlock(e.status === 'ok' ? 'output' : 'error', e.status === 'ok' ? e.output : e.error)));
  if (e.children && e.children.length) {
    cell.append(el('div', {}, 'children: ', ...e.children.map((c) =>
      el('a', { href: '#/runs/' + encodeURIComponent(c), text: c + ' ' }))));
  }
  row.after(el('tr', { class: 'values' }, cell));
}

// The timeline: the run's Chrome trace (the same lanes as `flux runs export --format trace`:
// one per worker, "owner" for the run's own process, and a further lane where steps overlap,
// as parallel branches do), one bar per step attempt, coloured by outcome.
function renderTimeline(trace) {
  const box = $('timeline');
  const events = trace.traceEvents;
  const laneNames = new Map();
  for (const ev of events) if (ev.ph === 'M' && ev.name === 'thread_name') laneNames.set(ev.tid, ev.args.name);
  const slices = events.filter((ev) => ev.ph === 'X');
  const lanes = [...laneNames.keys()].sort((a, b) => a - b);
  const laneIndex = new Map(lanes.map((t, i) => [t, i]));
  const end = Math.max(1, ...slices.map((s) => s.ts + s.dur));
  const labelW = 220, width = Math.max(900, box.clientWidth - 4), plotW = width - labelW - 16;
  const laneH = 22, top = 22;
  const height = top + lanes.length * laneH + 8;
  const x = (us) => labelW + (us / end) * plotW;
  const root = svg('svg', { width, height, id: 'timeline-svg' });
  // Time axis: 5 ticks.
  for (let i = 0; i <= 5; i++) {
    const t = (end * i) / 5;
    root.append(svg('line', { class: 'axis', x1: x(t), x2: x(t), y1: top - 4, y2: height }));
    const label = svg('text', { x: i === 5 ? x(t) - 2 : x(t) + 2, y: 12,
      'text-anchor': i === 5 ? 'end' : 'start' });
    label.textContent = duration(t / 1000);
    root.append(label);
  }
  lanes.forEach((tid, i) => {
    const y = top + i * laneH;
    const g = svg('g', { class: 'lane', 'data-lane': laneNames.get(tid) });
    if (i % 2 === 0) g.append(svg('rect', { class: 'lane-bg', x: 0, y, width, height: laneH }));
    const name = svg('text', { x: 6, y: y + 15, class: 'lane-name' });
    name.textContent = laneNames.get(tid);
    g.append(name);
    root.append(g);
  });
  for (const s of slices) {
    const y = top + laneIndex.get(s.tid) * laneH;
    const x0 = x(s.ts), w = Math.max(1.5, x(s.ts + s.dur) - x0);
    if (s.cat !== 'node') {
      // A parallel as a whole, a resume or a cancel: a bracket, not a step attempt.
      root.append(svg('rect', { class: 'span ' + s.cat, x: x0, y: y + 2, width: w, height: laneH - 4 }));
      continue;
    }
    const bar = svg('rect', { class: 'bar ' + s.args.status, x: x0, y: y + 4, width: w, height: laneH - 8,
      'data-step': s.args.step, 'data-attempt': s.args.attempt, 'data-seq': s.args.seq,
      'data-lane': laneNames.get(s.tid) });
    const lines = [s.name, 'step ' + s.args.step + ', attempt ' + s.args.attempt,
      'on ' + laneNames.get(s.tid), 'took ' + duration(s.dur / 1000), s.args.status];
    if (s.args.error) lines.push('error: ' + s.args.error);
    const text = lines.join('\n');
    bar.addEventListener('mousemove', (ev) => showTip(ev, text));
    bar.addEventListener('mouseleave', hideTip);
    root.append(bar);
  }
  box.replaceChildren(root);
}

function showTip(ev, text) {
  const tip = $('tip');
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = Math.min(ev.clientX + 12, window.innerWidth - 320) + 'px';
  tip.style.top = ev.clientY + 12 + 'px';
}
function hideTip() { $('tip').hidden = true; }

async function openRun(id) {
  const generation = ++state.run.generation;
  state.run.historyLength = 0;
  state.run.entries = [];
  $('history').tBodies[0].replaceChildren();
  for (const part of ['timeline', 'r-meta', 'related', 'r-status']) $(part).replaceChildren();
  $('kv').textContent = '';
  $('shared').textContent = '';
  delete $('r-status').dataset.status;
  $('run-view').dataset.loaded = 'no';
  $('r-id').textContent = id;
  await pollRun(id, generation);
  schedule(() => pollRun(id, generation), 1000);
}

// One poll: the history after what is shown (the cursor), the record, and the trace when
// anything changed; then everything is drawn at once, so that the page never shows a record
// newer than its timeline.
async function pollRun(id, generation) {
  if (generation !== state.run.generation || state.view !== 'run') return;
  try {
    const from = state.run.historyLength;
    const path = '/api/runs/' + encodeURIComponent(id) + '?from=';
    const first = await api(path + from + '&trace=0');
    if (generation !== state.run.generation) return;
    const changed = first.history.length > 0 || first.run.status !== state.run.status || from === 0;
    let latest = first, entries = first.history;
    if (changed) {
      latest = await api(path + (from + first.history.length) + '&trace=1');
      if (generation !== state.run.generation) return;
      entries = first.history.concat(latest.history);
    }
    renderMeta(latest);
    appendHistory(entries);
    state.run.historyLength = from + entries.length;
    state.run.status = latest.run.status;
    if (latest.trace) renderTimeline(latest.trace);
    $('run-view').dataset.loaded = 'yes';
  } catch (e) {
    showMessage(e.message);
  }
}

async function act(verb) {
  const id = state.runId;
  try {
    const token = $('token').value;
    const result = await api('/api/runs/' + encodeURIComponent(id) + '/' + verb, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Flux-Token': token },
      body: JSON.stringify(verb === 'cancel' ? { reason: 'cancelled from the dashboard' } : {}),
    });
    showMessage('');
    const note = $('message');
    note.hidden = false;
    note.textContent = result.message || verb + ': ' + (result.status || 'done');
    note.dataset.kind = 'ok';
    state.run.status = null;  // redraw at the next poll
    await pollRun(id, state.run.generation);
  } catch (e) {
    showMessage(verb + ' refused: ' + e.message);
    $('message').dataset.kind = 'error';
  }
}

// ---- workers ---------------------------------------------------------------------------------

async function loadWorkers() {
  try {
    const doc = await api('/api/workers');
    const body = $('workers').tBodies[0];
    body.replaceChildren();
    const now = Date.now();
    for (const w of doc.workers) {
      body.append(el('tr', { class: 'worker', 'data-id': w.id },
        el('td', { class: 'mono', text: w.id }),
        el('td', { class: 'mono', text: w.host + ':' + w.port }),
        el('td', { text: w.busy + ' / ' + w.capacity }),
        el('td', { text: duration(now - parseTime(w.last_heartbeat)) + ' ago' }),
        el('td', { text: w.expires_in_ms === null ? 'gone' : duration(w.expires_in_ms) }),
        el('td', { class: 'mono', text: shortTime(w.started) }),
        el('td', { text: w.nodes.map((n) => n.name).join(', ') })));
    }
    $('workers-empty').hidden = doc.workers.length > 0;
  } catch (e) {
    showMessage(e.message);
  }
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  try {
    state.info = await api('/api/info');
  } catch (e) {
    showMessage(e.message);
    state.info = { actions: {}, read_only: true };
  }
  $('store').textContent = state.info.store ? state.info.store + ' · ' + state.info.prefix : '';
  $('mode').textContent = state.info.read_only ? 'read-only' : 'actions need the token';
  $('token').hidden = state.info.read_only;
  $('token').value = sessionStorage.getItem('flux-token') || '';
  $('token').addEventListener('change', () => sessionStorage.setItem('flux-token', $('token').value));
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadRuns(false); });
  $('f-clear').addEventListener('click', () => {
    for (const f of ['f-status', 'f-pipeline', 'f-id', 'f-since', 'f-until']) $(f).value = '';
    loadRuns(false);
  });
  $('more').addEventListener('click', () => loadRuns(true));
  $('h-filter').addEventListener('input', () => {
    const f = $('h-filter').value.trim();
    const rows = $('history').tBodies[0].querySelectorAll('tr.entry');
    rows.forEach((row, i) => { row.hidden = !historyMatches(state.run.entries[i], f); });
    $('history').tBodies[0].querySelectorAll('tr.values').forEach((r) => r.remove());
  });
  $('a-cancel').addEventListener('click', () => act('cancel'));
  $('a-resume').addEventListener('click', () => act('resume'));
  $('a-retry').addEventListener('click', () => act('retry'));
  window.addEventListener('hashchange', route);
  route();
}

document.addEventListener('DOMContentLoaded', start);
