// Reviewer page: plain JavaScript, no framework, no build step. Views are rendered with h()
// (never innerHTML with data). Routes live in the #fragment: #/queue?…, #/session/ID,
// #/settings/EXAM, #/audit, #/exports, #/models, #/admin. Strings come from i18n.json (zh + en).
'use strict';

const S = {
  me: null, lang: 'en', L: {}, view: '', es: null,
  queue: [], qsel: 0, qquery: '',
  sess: null, tl: null, flags: [], fsel: 0, picked: new Set(), zoom: false, detail: null,
  labels: [], answers: null, attrDraft: null, timeDraft: {},
};

// ---- strings ---------------------------------------------------------------------------
function t(key, vars) {
  let s = (S.L[S.lang] && S.L[S.lang][key]) || (S.L.en && S.L.en[key]) || key;
  if (vars) for (const k in vars) s = s.split('{' + k + '}').join(String(vars[k]));
  return s;
}
function tk(prefix, key) { const v = t(prefix + key); return v === prefix + key ? key : v; }
function setLang(l) {
  S.lang = l; localStorage.setItem('lang', l);
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
  document.title = t('app.title');
}

// ---- DOM -------------------------------------------------------------------------------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const k in attrs || {}) {
    const v = attrs[k];
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the page's CSP, a style attribute is not
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
// mount replaces the page's content. A field being typed in keeps focus and caret across the
// re-render (a live flag, a reload after a verdict): its draft value survives in S, and without
// this the next keystrokes would go to the page (its shortcuts) instead of the field.
function mount(...nodes) {
  const m = $('#main'); const a = document.activeElement;
  const typing = a && a.id && m.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) ? a : null;
  let caret = null;
  try { if (typing) caret = [typing.selectionStart, typing.selectionEnd]; } catch { /* no caret (select, number) */ }
  m.replaceChildren(...nodes);
  if (!typing) return;
  const again = document.getElementById(typing.id);
  if (!again || again === typing) return;
  again.focus({ preventScroll: true });
  try { if (caret && caret[0] != null) again.setSelectionRange(caret[0], caret[1]); } catch { /* no caret */ }
}

let toastTimer;
function toast(msg, err) {
  const el = $('#toast');
  el.textContent = msg; el.className = 'show' + (err ? ' err' : '');
  clearTimeout(toastTimer); toastTimer = setTimeout(() => { el.className = ''; }, err ? 5000 : 2600);
}

// ---- API -------------------------------------------------------------------------------
class ApiError extends Error { constructor(status, msg) { super(msg); this.status = status; } }
async function api(method, path, body) {
  const opt = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  if (method !== 'GET' && S.me && S.me.csrf_token) opt.headers['X-CSRF-Token'] = S.me.csrf_token;
  const r = await fetch(path, opt);
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    if (r.status === 401 && path !== '/v1/auth/login') { S.me = null; showLogin(); }
    throw new ApiError(r.status, data.error || r.statusText);
  }
  return data;
}
function fail(e) { if (!(e instanceof ApiError && e.status === 401)) toast(t('common.error', { msg: e.message }), true); }

// ---- formatting ------------------------------------------------------------------------
const pad2 = (n) => String(n).padStart(2, '0');
function fmtTime(v) {
  const d = new Date(v);
  if (isNaN(d)) return '';
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}
function fmtRel(ms) { // relative to the scheduled start: −m:ss / m:ss / h:mm:ss
  const sign = ms < 0 ? '−' : ''; let s = Math.floor(Math.abs(ms) / 1000);
  const hh = Math.floor(s / 3600), mm = Math.floor(s / 60) % 60, ss = s % 60;
  return sign + (hh ? `${hh}:${pad2(mm)}:${pad2(ss)}` : `${mm}:${pad2(ss)}`);
}
function fmtDur(ms) { const s = Math.round(ms / 1000); return s < 60 ? s + 's' : fmtRel(ms); }
function riskColor(r) { return r >= 70 ? 'var(--alert)' : r >= 35 ? '#e69500' : r > 0 ? '#8bb37a' : '#cfd5db'; }
function riskCell(r) {
  return h('span', { class: 'risk' }, h('span', { class: 'bar' }, h('span', { style: `width:${Math.min(100, r)}%;background:${riskColor(r)}` })),
    h('span', { class: 'num' }, r.toFixed(1)));
}
function sessStatus(s) {
  if (s.open_flags > 0) return h('span', { class: 'badge b-open' }, t('review.open'));
  if (s.total_flags > 0) return h('span', { class: 'badge b-reviewed' }, t('review.reviewed'));
  return h('span', { class: 'badge b-clean' }, t('review.clean'));
}
function details(f) { try { return JSON.parse(f.details || '{}') || {}; } catch { return {}; } }
const has = (scope) => S.me && (S.me.scopes.includes(scope) || S.me.scopes.includes('admin'));

// ---- chrome ----------------------------------------------------------------------------
function renderTop() {
  const top = $('#top');
  top.hidden = !S.me;
  if (!S.me) return;
  $('#brand').textContent = t('app.title');
  const links = [];
  if (has('review')) links.push(['queue', '#/queue' + (S.qquery ? '?' + S.qquery : '')]);
  if (has('data')) links.push(['exports', '#/exports'], ['models', '#/models']);
  if (has('admin')) links.push(['settings', '#/settings'], ['audit', '#/audit'], ['admin', '#/admin']);
  $('#nav').replaceChildren(...links.map(([k, href]) =>
    h('a', { href, class: S.view === k || (k === 'queue' && S.view === 'session') ? 'on' : null }, t('nav.' + k))));
  $('#langBtn').textContent = t('lang.switch');
  $('#helpBtn').textContent = t('nav.help');
  $('#signout').textContent = t('nav.signout');
  $('#who').textContent = (S.me.email || S.me.actor) + (S.me.role ? ' · ' + t('role.' + S.me.role) : '');
  const live = $('#live');
  live.textContent = S.es && S.es.readyState === 1 ? t('common.live') : t('common.offline');
  live.className = 'live ' + (S.es && S.es.readyState === 1 ? 'on' : 'off');
  live.hidden = !has('review');
}

function showLogin(msg) {
  S.view = 'login'; renderTop();
  if (S.es) { S.es.close(); S.es = null; }
  const err = h('div', { class: 'err' }, msg || '');
  const email = h('input', { type: 'email', id: 'email', autocomplete: 'username', required: true, autofocus: true });
  const pw = h('input', { type: 'password', id: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', {
    class: 'login', onsubmit: async (e) => {
      e.preventDefault(); err.textContent = '';
      try {
        S.me = await api('POST', '/v1/auth/login', { email: email.value, password: pw.value });
        startLive();
        if (!location.hash || location.hash.startsWith('#/login')) location.hash = home(); else route();
      } catch (ex) { err.textContent = ex.status === 429 ? t('login.limited') : ex.status === 401 ? t('login.failed') : ex.message; }
    },
  },
  h('div', { class: 'lang' }, h('button', { type: 'button', class: 'linkish', onclick: () => { setLang(S.lang === 'zh' ? 'en' : 'zh'); showLogin(); } }, t('lang.switch'))),
  h('h1', {}, t('login.title')),
  h('label', { for: 'email' }, t('login.email')), email,
  h('label', { for: 'password' }, t('login.password')), pw,
  h('button', { class: 'btn primary', type: 'submit', id: 'signin' }, t('login.submit')), err);
  mount(form);
  email.focus();
}
function home() { return has('review') ? '#/queue?review=open' : has('data') ? '#/exports' : '#/audit'; }

// ---- live feed (server-sent events) -----------------------------------------------------
function startLive() {
  if (!has('review') || S.es) return;
  const es = new EventSource('/v1/live');
  S.es = es;
  es.addEventListener('open', renderTop);
  es.addEventListener('error', renderTop);
  es.addEventListener('flag', (e) => { try { onLiveFlag(JSON.parse(e.data)); } catch (ex) { console.error(ex); } });
}
let queueReload;
function onLiveFlag(fc) {
  if (S.view === 'queue') {
    const row = S.queue.find((s) => s.id === fc.session_id);
    if (row) Object.assign(row, { risk_score: fc.risk_score, open_flags: fc.open_flags, total_flags: fc.total_flags });
    clearTimeout(queueReload); queueReload = setTimeout(() => loadQueue(true), 800);
    if (row) renderQueueRows();
  } else if (S.view === 'session' && S.sess && fc.session_id === S.sess.id) {
    const i = S.flags.findIndex((f) => f.id === fc.id);
    const fl = Object.assign({}, fc);
    delete fl.org_id; delete fl.exam_id; delete fl.risk_score; delete fl.open_flags; delete fl.total_flags;
    if (i >= 0) S.flags[i] = Object.assign(S.flags[i], fl);
    else {
      const cur = S.flags[S.fsel];
      S.flags.push(fl); S.flags.sort((a, b) => a.start_ms - b.start_ms || a.id - b.id);
      if (cur) S.fsel = S.flags.indexOf(cur);
      toast(t('toast.newFlag', { type: tk('flag.', fl.type) }));
    }
    Object.assign(S.sess, { risk_score: fc.risk_score, open_flags: fc.open_flags, total_flags: fc.total_flags });
    renderSession();
  }
}

// ---- routing ---------------------------------------------------------------------------
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q] = raw.split('?');
  return { parts: path.split('/').map(decodeURIComponent), q: new URLSearchParams(q || '') };
}
async function route() {
  if (!S.me) return showLogin();
  const { parts, q } = parseHash();
  $('#help').hidden = true;
  try {
    switch (parts[0]) {
      case 'session': return await openSession(parts[1]);
      case 'settings': return await showSettings(parts[1] || '');
      case 'audit': return await showAudit(q);
      case 'exports': return await showExports();
      case 'models': return await showModels(q);
      case 'admin': return await showAdmin();
      case 'queue': return await showQueue(q);
      default: location.replace(home());
    }
  } catch (e) { fail(e); }
}

// ---- queue -----------------------------------------------------------------------------
let examsCache = null;
async function exams(refresh) {
  if (!examsCache || refresh) examsCache = (await api('GET', '/v1/exams')).exams || [];
  return examsCache;
}
function selectEl(id, value, options, onchange) {
  const el = h('select', { id, onchange }, options.map(([v, label]) => h('option', { value: v }, label)));
  el.value = value; return el;
}
async function showQueue(q) {
  S.view = 'queue'; S.qquery = q.toString(); sessionStorage.setItem('qquery', S.qquery); renderTop();
  const ex = await exams();
  const setQ = (k, v) => { const n = new URLSearchParams(S.qquery); if (v) n.set(k, v); else n.delete(k); location.hash = '#/queue?' + n.toString(); };
  const sumBox = h('div', { class: 'summary', id: 'summary' });
  const filters = h('div', { class: 'bar' },
    h('label', {}, t('queue.filter.exam'), selectEl('f-exam', q.get('exam_id') || '', [['', t('common.all')], ...ex.map((e) => [e.exam_id, e.exam_id])], (e) => setQ('exam_id', e.target.value))),
    h('label', {}, t('queue.filter.from'), h('input', { type: 'date', id: 'f-from', value: q.get('from') || '', onchange: (e) => setQ('from', e.target.value) })),
    h('label', {}, t('queue.filter.to'), h('input', { type: 'date', id: 'f-to', value: q.get('to') || '', onchange: (e) => setQ('to', e.target.value) })),
    h('label', {}, t('queue.filter.type'), selectEl('f-type', q.get('flag_type') || '', [['', t('common.all')]], (e) => setQ('flag_type', e.target.value))),
    h('label', {}, t('queue.filter.review'), selectEl('f-review', q.get('review') || '', [['', t('common.all')], ['open', t('review.open')], ['reviewed', t('review.reviewed')], ['clean', t('review.clean')]], (e) => setQ('review', e.target.value))),
    h('button', { class: 'btn', onclick: () => { location.hash = '#/queue'; } }, t('queue.filter.reset')),
    h('span', { class: 'muted', id: 'qcount' }),
    has('data') ? h('a', { href: '/v1/exports/verdicts.csv' + (q.get('exam_id') ? '?exam_id=' + encodeURIComponent(q.get('exam_id')) : '') }, t('queue.export')) : null);
  const table = h('table', { class: 'list', id: 'queue' },
    h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, t('queue.col.risk')), h('th', {}, t('queue.col.candidate')), h('th', {}, t('queue.col.exam')),
      h('th', {}, t('queue.col.start')), h('th', {}, t('queue.col.phase')), h('th', { class: 'num' }, t('queue.col.flags')), h('th', { class: 'num' }, t('queue.col.frames')), h('th', {}, t('queue.col.status')))),
    h('tbody', { id: 'qrows' }));
  mount(h('div', { class: 'page' }, filters, sumBox, table));
  await loadQueue(false);
}
async function loadQueue(keepSel) {
  if (S.view !== 'queue') return;
  const q = new URLSearchParams(S.qquery);
  const prev = S.queue[S.qsel] && S.queue[S.qsel].id;
  const [list, sum] = await Promise.all([api('GET', '/v1/sessions?limit=500&' + q.toString()), api('GET', '/v1/review/summary?' + q.toString())]);
  if (S.view !== 'queue') return;
  S.queue = list.sessions || [];
  S.qsel = keepSel && prev ? Math.max(0, S.queue.findIndex((s) => s.id === prev)) : 0;
  renderSummary(sum.summary, sum.flag_types, q);
  renderQueueRows();
}
function renderSummary(sm, types, q) {
  const ft = $('#f-type');
  if (ft && ft.options.length <= 1) {
    for (const ty of types) ft.append(h('option', { value: ty }, tk('flag.', ty)));
    ft.value = q.get('flag_type') || '';
  }
  const flagged = sm.sessions_open + sm.sessions_reviewed;
  const pct = flagged ? Math.round(100 * sm.sessions_reviewed / flagged) : 0;
  S.alertTypes = sm.alert_types || [];
  const chips = Object.entries(sm.open_by_type).sort((a, b) => S.alertTypes.includes(b[0]) - S.alertTypes.includes(a[0]) || b[1] - a[1]).map(([ty, n]) =>
    h('span', {
      class: 'chip' + ((S.alertTypes || []).includes(ty) ? ' alert' : '') + (q.get('flag_type') === ty ? ' on' : ''),
      'data-type': ty, title: ty,
      onclick: () => { const n = new URLSearchParams(S.qquery); if (n.get('flag_type') === ty) n.delete('flag_type'); else n.set('flag_type', ty); location.hash = '#/queue?' + n; },
    }, tk('flag.', ty), h('b', {}, n)));
  $('#summary').replaceChildren(
    h('div', { class: 'panel' }, h('div', { class: 'head' }, t('queue.today', { v: sm.my_verdicts, s: sm.my_sessions })),
      h('div', { class: 'body' },
        h('div', { id: 'progress-text' }, t('queue.reviewedOf', { r: sm.sessions_reviewed, n: flagged })),
        h('div', { class: 'progress' }, h('span', { style: `width:${pct}%` })),
        h('div', { class: 'muted' }, t('queue.orgToday', { v: sm.org_verdicts })))),
    h('div', { class: 'panel' }, h('div', { class: 'head' }, t('queue.openByType'), h('span', { class: 'muted' }, '· ' + sm.open_flags)),
      h('div', { class: 'body chips', id: 'chips' }, chips.length ? chips : h('span', { class: 'muted' }, t('queue.noOpen')))));
}
function renderQueueRows() {
  const body = $('#qrows');
  if (!body) return;
  $('#qcount').textContent = t('queue.count', { n: S.queue.length });
  if (!S.queue.length) { body.replaceChildren(h('tr', {}, h('td', { colspan: 9, class: 'empty' }, t('queue.empty')))); return; }
  body.replaceChildren(...S.queue.map((s, i) => h('tr', {
    class: (i === S.qsel ? 'sel' : '') + (s.open_flags === 0 ? ' done' : ''), 'data-id': s.id,
    onclick: () => { S.qsel = i; location.hash = '#/session/' + encodeURIComponent(s.id); },
  },
  h('td', { class: 'num muted' }, i + 1), h('td', {}, riskCell(s.risk_score)), h('td', {}, s.candidate_id),
  h('td', {}, s.exam_id), h('td', { class: 'mono' }, fmtTime(s.scheduled_start)), h('td', {}, tk('phase.', s.phase || 'registered')),
  h('td', { class: 'num flags' }, `${s.open_flags} / ${s.total_flags}`), h('td', { class: 'num' }, s.frames_analyzed), h('td', {}, sessStatus(s)))));
  const sel = body.querySelector('tr.sel');
  if (sel) sel.scrollIntoView({ block: 'nearest' });
}

// ---- session ---------------------------------------------------------------------------
async function openSession(id) {
  const sid = encodeURIComponent(id);
  const media = rvLoad(id); // the review media's state, alongside the page's requests
  // Labels and answers are extras: the flags stay reviewable if either fails.
  const [tl, det, lab, ans, gal] = await Promise.all([api('GET', `/v1/sessions/${sid}/timeline`), api('GET', `/v1/sessions/${sid}`),
    api('GET', `/v1/sessions/${sid}/labels`).catch(() => null), api('GET', `/v1/sessions/${sid}/answers`).catch(() => null),
    api('GET', `/v1/sessions/${sid}/gallery`).catch(() => null), ATTR_FLAGS.length ? null : loadChecks()]);
  await media;
  const same = S.sess && S.sess.id === id;
  S.view = 'session'; S.tl = tl; S.sess = det.session; S.flags = det.flags || []; S.retentionDeleted = det.retention_deleted || {};
  S.labels = (lab && lab.labels) || []; S.answers = ans; S.gallery = gal;
  if (!same) {
    S.picked = new Set(); S.zoom = false; S.timeDraft = {};
    const firstOpen = S.flags.findIndex((f) => f.status === 'open');
    S.fsel = firstOpen >= 0 ? firstOpen : 0;
  }
  S.fsel = Math.min(S.fsel, Math.max(0, S.flags.length - 1));
  renderTop();
  renderSession();
}
async function refreshSession() {
  const det = await api('GET', `/v1/sessions/${encodeURIComponent(S.sess.id)}`);
  const cur = S.flags[S.fsel] && S.flags[S.fsel].id;
  S.sess = det.session; S.flags = det.flags || []; S.retentionDeleted = det.retention_deleted || {};
  const i = S.flags.findIndex((f) => f.id === cur);
  if (i >= 0) S.fsel = i;
  renderSession();
}
function renderSession() {
  const s = S.sess; const start = Date.parse(s.scheduled_start);
  const head = h('div', { class: 'shead' },
    h('a', { href: '#/queue' + (S.qquery ? '?' + S.qquery : ''), class: 'btn' }, '← ', t('session.back'), h('kbd', {}, 'q')),
    h('h1', {}, s.candidate_id),
    h('div', { class: 'facts' }, h('span', {}, s.exam_id), h('span', { class: 'mono' }, t('session.start', { t: fmtTime(s.scheduled_start) })),
      h('span', {}, tk('phase.', s.phase || 'registered')), h('span', { id: 'srisk' }, riskCell(s.risk_score)),
      h('span', { id: 'sopen' }, `${s.open_flags} / ${s.total_flags}`), sessStatus(s)),
    h('span', { class: 'spacer' }),
    h('a', { class: 'btn', id: 'report', href: `/v1/sessions/${encodeURIComponent(s.id)}/report?lang=${S.lang}`, target: '_blank', rel: 'noopener' }, t('session.report'), h('kbd', {}, 'r')),
    h('button', { class: 'btn', onclick: nextSession }, t('session.next'), ' →', h('kbd', {}, 'n')));
  const tlPanel = h('div', { class: 'panel', style: 'margin-bottom:10px' },
    h('div', { class: 'head' }, t('session.timeline'), h('span', { class: 'spacer', style: 'flex:1' }),
      h('button', { class: 'btn', onclick: () => { S.zoom = !S.zoom; renderSession(); } }, S.zoom ? '⤢' : '⤡', h('kbd', {}, 'z'))),
    renderTimeline(start));
  const flagsPanel = h('div', { class: 'panel' }, h('div', { class: 'head' }, t('session.flags'), h('span', { class: 'muted' }, '· ' + S.flags.length)),
    S.flags.length ? renderFlagTable(start) : h('div', { class: 'empty' }, t('session.noFlags')),
    S.flags.length ? h('div', { class: 'bulk' },
      h('button', { class: 'btn', onclick: () => { S.flags.forEach((f) => { if (f.status === 'open') S.picked.add(f.id); }); renderSession(); } }, t('session.selectAll')),
      h('span', { class: 'muted', id: 'picked' }, t('session.selected', { n: S.picked.size })), h('span', { style: 'flex:1' }),
      h('button', { class: 'btn confirm', disabled: !S.picked.size, onclick: () => bulk('confirmed') }, t('session.confirmSel', { n: S.picked.size }), h('kbd', {}, '⇧C')),
      h('button', { class: 'btn dismiss', disabled: !S.picked.size, onclick: () => bulk('dismissed') }, t('session.dismissSel', { n: S.picked.size }), h('kbd', {}, '⇧D')),
      h('button', { class: 'btn', onclick: undo }, t('session.undo'), h('kbd', {}, 'u'))) : null);
  const detail = h('div', { class: 'panel', id: 'detail' }, h('div', { class: 'head' }, t('session.evidence')), renderDetail(start));
  const events = S.tl.events || [];
  const evRow = (e) => h('tr', {}, h('td', { class: 'mono' }, fmtRel(e.captured_at - start)), h('td', {}, tk('event.', e.type)), h('td', {}, tk('phase.', e.phase)),
    h('td', { class: 'wrap muted mono' }, e.data ? JSON.stringify(e.data) : ''));
  const integ = events.filter((e) => e.class === 'integrity'); const tech = events.filter((e) => e.class === 'technical');
  const evPanels = h('div', { class: 'grid2b' },
    h('div', { class: 'panel' }, h('div', { class: 'head' }, h('span', { class: 'badge b-integrity' }, t('class.integrity')), t('session.integrityEvents'), h('span', { class: 'muted' }, '· ' + integ.length)),
      h('div', { class: 'evlist' }, integ.length ? h('table', { class: 'list' }, h('tbody', {}, integ.map(evRow))) : h('div', { class: 'empty' }, '—'))),
    h('div', { class: 'panel', id: 'technical' }, h('div', { class: 'head' }, h('span', { class: 'badge b-technical' }, t('class.technical')), t('session.technical'), h('span', { class: 'muted' }, '· ' + tech.length)),
      h('div', { class: 'evlist' }, tech.length ? h('table', { class: 'list' }, h('tbody', {}, tech.map(evRow))) : h('div', { class: 'empty' }, t('session.noTechnical')))));
  const dataPanels = h('div', { class: 'grid2b' },
    h('div', { class: 'panel', id: 'answers' }, h('div', { class: 'head' }, t('session.answers')), renderAnswers(start)),
    h('div', { class: 'panel' }, h('div', { class: 'head' }, t('label.title'), h('span', { class: 'muted' }, '· ' + S.labels.filter((l) => !l.withdrawn_at).length)),
      h('div', { class: 'body' }, h('p', { class: 'muted' }, t('label.help')), labelList('labels', S.labels, start))));
  mount(h('div', { class: 'page' }, head, tlPanel, h('div', { class: 'grid2' }, flagsPanel, detail), rvPanel(), evPanels, dataPanels,
    renderGallery(start)));
  const sel = document.querySelector('#flags tr.sel');
  if (sel) sel.scrollIntoView({ block: 'nearest' });
}

function renderTimeline(start) {
  const tl = S.tl; const phases = tl.phases || []; const events = tl.events || []; const answers = tl.answers || [];
  const end = start + S.sess.duration_sec * 1000;
  let lo, hi;
  if (S.zoom && S.flags.length) {
    lo = Math.min(...S.flags.map((f) => f.start_ms)); hi = Math.max(...S.flags.map((f) => f.end_ms));
  } else {
    const pts = [start, end, ...phases.map((p) => p.start_ms), ...events.map((e) => e.captured_at), ...S.flags.map((f) => f.start_ms), ...S.flags.map((f) => f.end_ms)];
    lo = Math.min(...pts); hi = Math.max(...pts, ...phases.map((p) => p.end_ms || 0));
  }
  const padMs = Math.max(5000, (hi - lo) * 0.03); lo -= padMs; hi += padMs;
  const x = (ms) => ((Math.min(hi, Math.max(lo, ms)) - lo) / (hi - lo)) * 100;
  const w = (a, b) => Math.max(0, x(b) - x(a));
  const lane = (name, ...kids) => h('div', { class: 'lane' }, h('span', { class: 'lane-name', title: name }, name), kids);
  const tallLane = (name, px, ...kids) => { const el = lane(name, ...kids); el.style.height = px + 'px'; return el; };
  const phaseLane = lane(t('session.phases'), phases.map((p) => h('div', {
    class: 'seg ph-' + p.phase, style: `left:${x(p.start_ms)}%;width:${w(p.start_ms, p.end_ms || hi)}%`, title: tk('phase.', p.phase),
  }, tk('phase.', p.phase))));
  // Overlapping flags (several rules firing on the same frames) stack in rows within the lane.
  const rowEnd = []; const rowOf = S.flags.map((f) => {
    let r = rowEnd.findIndex((end) => end < f.start_ms);
    if (r < 0) { r = rowEnd.length; rowEnd.push(0); }
    rowEnd[r] = Math.max(f.end_ms, f.start_ms + (hi - lo) * 0.004);
    return r;
  });
  const rows = Math.max(1, rowEnd.length); const rowH = rows === 1 ? 16 : 8;
  const flagLane = tallLane(t('session.flags'), 6 + rows * rowH, S.flags.map((f, i) => h('div', {
    class: `mark ${f.severity} st-${f.status}` + (i === S.fsel ? ' sel' : ''), 'data-flag': f.id,
    style: `left:${x(f.start_ms)}%;width:${w(f.start_ms, f.end_ms)}%;top:${3 + rowOf[i] * rowH}px;height:${rowH - (rows === 1 ? 0 : 2)}px;bottom:auto`,
    title: `${tk('flag.', f.type)} · ${fmtRel(f.start_ms - start)} · ${tk('status.', f.status)}`,
    onclick: () => { S.fsel = i; renderSession(); },
  })));
  const evLane = lane(t('session.events'), events.map((e) => h('div', {
    class: 'tick ' + e.class, style: `left:${x(e.captured_at)}%`, title: `${tk('event.', e.type)} · ${fmtRel(e.captured_at - start)}`,
  })));
  const ansLane = answers.length ? lane(t('session.answers'), answers.map((a) => h('div', {
    class: 'ans ' + (a.status || ''), style: `left:${x(a.start_ms)}%;width:${w(a.start_ms, a.end_ms || hi)}%`,
    title: `${t('session.question', { n: a.question })} · ${fmtRel(a.start_ms - start)}–${fmtRel((a.end_ms || hi) - start)} · ${tk('answer.', a.status || '')}`,
  }, t('session.question', { n: a.question })))) : null;
  // Axis: about eight labels at a round step, relative to the scheduled start.
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200].map((s) => s * 1000);
  const step = steps.find((s) => (hi - lo) / s <= 9) || 14400000;
  const ticks = [];
  for (let v = Math.ceil((lo - start) / step) * step; start + v <= hi; v += step) {
    ticks.push(h('span', { class: v === 0 ? 'zero' : '', style: `left:${x(start + v)}%` }, fmtRel(v)));
  }
  return h('div', { class: 'tl', id: 'timeline', onclick: (e) => rvTimelineClick(e, lo, hi) }, phaseLane, ansLane, flagLane, evLane,
    h('div', { class: 'axis' }, ticks), rvPlayhead(lo, hi));
}

function renderFlagTable(start) {
  return h('table', { class: 'list', id: 'flags' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, '#'), h('th', {}, t('session.type')), h('th', {}, t('session.camera')),
      h('th', {}, t('queue.col.phase')), h('th', { class: 'num' }, t('session.time')), h('th', { class: 'num' }, t('session.duration')), h('th', { class: 'num' }, t('session.confidence')), h('th', {}, t('session.status')))),
    h('tbody', {}, S.flags.map((f, i) => h('tr', {
      class: i === S.fsel ? 'sel' : '', 'data-flag': f.id, 'data-status': f.status, onclick: () => { S.fsel = i; renderSession(); },
    },
    h('td', {}, h('input', {
      type: 'checkbox', checked: S.picked.has(f.id), onclick: (e) => { e.stopPropagation(); togglePick(f.id); },
    })),
    h('td', { class: 'num muted' }, f.id),
    h('td', { title: tk('sev.', f.severity) }, h('span', { class: 'sev sev-' + f.severity }), tk('flag.', f.type)),
    h('td', {}, tk('camera.', f.camera)), h('td', {}, tk('phase.', f.phase || '')), h('td', { class: 'num' }, fmtRel(f.start_ms - start)),
    h('td', { class: 'num' }, fmtDur(f.end_ms - f.start_ms)), h('td', { class: 'num' }, (f.confidence || 0).toFixed(2)),
    h('td', {}, h('span', { class: 'badge b-' + f.status }, tk('status.', f.status)))))));
}

// The two ear crops the ears analyzer judged on an ear flag's evidence frame (left and right as
// in the frame); nothing for other flags.
const EAR_FLAGS = ['EARS_COVERED', 'EARPHONES'];
function earShot(f) {
  if (!EAR_FLAGS.includes(f.type)) return null;
  const el = h('img', { src: `/v1/flags/${f.id}/evidence?crop=ears`, alt: t('session.ears'), id: 'ear-crops', loading: 'lazy' });
  el.addEventListener('error', () => el.replaceWith(h('div', { class: 'none' }, t('session.noEvidence'))));
  return h('div', { class: 'shot' }, h('div', { class: 'cap' }, h('span', {}, t('session.ears'))), el);
}

function renderDetail(start) {
  const f = S.flags[S.fsel];
  if (!f) return h('div', { class: 'empty' }, S.flags.length ? t('session.pickFlag') : t('session.noFlags'));
  const d = details(f);
  const sid = encodeURIComponent(S.sess.id);
  const img = (src, cls) => {
    const el = h('img', { src, alt: '', loading: 'lazy' });
    el.addEventListener('error', () => el.replaceWith(h('div', { class: 'none' }, t('session.noEvidence'))));
    return el;
  };
  const frameFlag = f.model_version && f.model_version !== 'exam-flow-rules';
  // The correction form shows for the attribute flags, and for any other flag once its evidence
  // frame has loaded (a frame is what an attribute label describes).
  const attr = has('review') ? attrForm(f, start) : null;
  if (attr && !ATTR_FLAGS.includes(f.type)) attr.hidden = true;
  // Flags outlive their evidence under the retention policy: say so instead of a broken image.
  const gone = (cls, key) => S.retentionDeleted && S.retentionDeleted[cls]
    ? h('div', { class: 'none', id: cls + '-deleted' }, t(key, { date: S.retentionDeleted[cls].slice(0, 10) })) : null;
  const evidence = () => {
    const deleted = gone('frames', 'session.evidenceDeleted');
    if (deleted) return deleted;
    const el = img(`/v1/flags/${f.id}/evidence`);
    if (attr) el.addEventListener('load', () => { attr.hidden = false; });
    return el;
  };
  const shot = (cam) => h('div', { class: 'shot' + (cam === f.camera ? ' flagged' : '') },
    h('div', { class: 'cap' }, h('span', {}, tk('camera.', cam)), cam === f.camera ? h('span', {}, fmtRel(f.start_ms - start)) : null),
    cam === f.camera ? (frameFlag ? evidence() : h('div', { class: 'none' }, t('session.noEvidence')))
      : h('div', { class: 'none' }, t('session.noFrame')));
  const sim = typeof d.similarity === 'number' ? d.similarity : null;
  const photo = h('div', { class: 'shot' },
    h('div', { class: 'cap' }, h('span', {}, t('session.photo'))),
    gone('biometrics', 'session.photoDeleted') || img(`/v1/sessions/${sid}/photo`),
    sim != null ? h('div', { class: 'foot sim ' + (sim < (d.similarity_threshold ?? 0.5) ? 'low' : 'high'), id: 'similarity' },
      t('session.similarity') + ' ' + sim.toFixed(2) + (d.similarity_threshold != null ? ` (≥ ${d.similarity_threshold})` : '')) : null);
  const kv = h('dl', { class: 'kv' },
    h('dt', {}, t('session.type')), h('dd', {}, `${tk('flag.', f.type)} (${f.type})`),
    h('dt', {}, t('session.time')), h('dd', { class: 'mono' }, `${fmtRel(f.start_ms - start)} – ${fmtRel(f.end_ms - start)} (${fmtDur(f.end_ms - f.start_ms)})`),
    h('dt', {}, t('session.confidence')), h('dd', { class: 'mono' }, (f.confidence || 0).toFixed(2)),
    Object.entries(d).map(([k, v]) => [h('dt', {}, k), h('dd', { class: 'mono' }, typeof v === 'object' ? JSON.stringify(v) : String(v))]),
    h('dt', {}, 'model'), h('dd', { class: 'mono muted' }, f.model_version || ''));
  const note = h('input', { id: 'note', type: 'text', maxlength: 4000, placeholder: t('session.note'), value: S.note || '', oninput: (e) => { S.note = e.target.value; } });
  const hist = h('ul', { class: 'history', id: 'history' }, h('li', { class: 'muted' }, t('common.loading')));
  loadHistory(f.id, hist);
  return h('div', { class: 'body' },
    h('div', { class: 'shots' }, shot('main'), shot('evidence'), photo, earShot(f)),
    sheetFrames(d, sid, start),
    kv,
    h('div', { class: 'verdict' }, note,
      h('button', { class: 'btn confirm', id: 'confirm', onclick: () => verdict('confirmed') }, t('session.confirm'), h('kbd', {}, 'c')),
      h('button', { class: 'btn dismiss', id: 'dismiss', onclick: () => verdict('dismissed') }, t('session.dismiss'), h('kbd', {}, 'd'))),
    h('div', { class: 'muted', style: 'margin-top:10px' }, t('session.history')), hist,
    attr);
}

// sheetFrames shows the two evidence frames a sheet flag compared (details.front / .back: the
// first sighting of the sheet and the next one), side by side, so the reviewer sees whether it
// was turned over. Frame images come from the stored-frames route; a purged one says so.
function sheetFrames(d, sid, start) {
  const frame = (k) => {
    const el = h('img', { src: `/v1/sessions/${sid}/frames/${encodeURIComponent(d[k].camera || 'evidence')}/${d[k].seq}`, alt: '', loading: 'lazy' });
    el.addEventListener('error', () => el.replaceWith(h('div', { class: 'none' }, t('session.sheet.gone'))));
    return el;
  };
  const side = (k) => d[k] && h('div', { class: 'shot', 'data-sheet': k },
    h('div', { class: 'cap' }, h('span', {}, t('session.sheet.' + k)), h('span', {}, fmtRel(d[k].captured_at_ms - start))), frame(k));
  if (!d.front && !d.back) return null;
  return h('div', { class: 'shots', id: 'sheet-frames' }, side('front') || null, side('back') || h('div', { class: 'shot' },
    h('div', { class: 'cap' }, h('span', {}, t('session.sheet.back'))), h('div', { class: 'none' }, t('session.sheet.none'))));
}

// renderGallery shows the session's reference faces (the candidate's own verified login frames,
// each with its similarity to the registration photo) and the share of the main camera's time
// identity could be verified (the other frames abstained: face too small, turned, masked, blurred).
function renderGallery(start) {
  const g = S.gallery; if (!g) return null;
  const sid = encodeURIComponent(S.sess.id); const id = g.identity || {};
  const share = id.verified_share == null ? '—' : Math.round(id.verified_share * 100) + '%';
  const faces = (g.faces || []).map((f) => h('div', { class: 'shot', 'data-gallery': f.id },
    h('div', { class: 'cap' }, h('span', {}, fmtRel(f.captured_at - start)), h('span', {}, tk('gallery.', f.source))),
    h('img', { src: `/v1/sessions/${sid}/gallery/${f.id}/photo`, alt: '', loading: 'lazy' }),
    h('div', { class: 'foot sim high' }, t('session.similarity') + ' ' + (f.photo_similarity || 0).toFixed(2))));
  return h('div', { class: 'panel', id: 'gallery', style: 'margin-top:10px' },
    h('div', { class: 'head' }, t('gallery.title'), h('span', { class: 'muted' }, '· ' + faces.length)),
    h('div', { class: 'body' }, h('p', { class: 'muted', id: 'identity-share' },
      t('gallery.share', { share, voted: id.voted || 0, abstained: id.abstained || 0 })),
      faces.length ? h('div', { class: 'shots' }, faces) : h('div', { class: 'empty' }, t('gallery.none'))));
}

// ---- labels: reviewer corrections that become training data (docs/data-loop.md) ----------
// Flag types whose evidence frame a reviewer can describe (mask, occlusion, earphones, persons):
// those of the checks that declare labels (GET /v1/checks), loaded once.
let ATTR_FLAGS = [];
async function loadChecks() {
  try {
    const r = await api('GET', '/v1/checks');
    ATTR_FLAGS = r.checks.filter((c) => (c.labels || []).length).flatMap((c) => c.flags.map((f) => f.type));
  } catch (e) { /* the form then shows once the evidence frame loads */ }
}
const ATTRS = ['mask', 'occluded', 'earphones', 'ears_covered'];

function attrForm(f, start) {
  // The draft survives re-renders (a live flag, a verdict) until the flag changes or is labelled.
  if (!S.attrDraft || S.attrDraft.flag !== f.id) S.attrDraft = { flag: f.id, mask: '', occluded: '', earphones: '', ears_covered: '', persons: '' };
  const d = S.attrDraft;
  const keep = (k) => (e) => { d[k] = e.target.value; };
  const yn = {};
  for (const k of ATTRS) yn[k] = selectEl('attr-' + k, d[k], [['', '—'], ['true', t('common.yes')], ['false', t('common.no')]], keep(k));
  const persons = h('input', { type: 'number', id: 'attr-persons', min: 0, max: 20, step: 1, value: d.persons, placeholder: '—', oninput: keep('persons') });
  const save = (e) => {
    e.preventDefault();
    const body = { kind: 'attribute', flag_id: f.id };
    for (const k of ATTRS) if (yn[k].value) body[k] = yn[k].value === 'true'; // read the fields, not the draft: they are the truth
    if (persons.value !== '') {
      const n = Number(persons.value);
      if (!Number.isInteger(n) || n < 0 || n > 20) return toast(t('label.badPersons'), true);
      body.persons = n;
    }
    if (Object.keys(body).length === 2) return toast(t('label.attrEmpty'), true);
    addLabel(body, () => { S.attrDraft = null; });
  };
  const mine = S.labels.filter((l) => l.kind === 'attribute' && l.flag_id === f.id);
  return h('form', { class: 'attr', id: 'attr-form', onsubmit: save },
    h('div', { class: 'muted' }, t('label.correct')),
    h('div', { class: 'bar' }, ATTRS.map((k) => h('label', {}, t('label.' + k), yn[k])),
      h('label', {}, t('label.persons'), persons),
      h('button', { class: 'btn primary', type: 'submit', id: 'attr-save' }, t('label.save'))),
    mine.length ? labelList('flag-labels', mine, start) : null);
}

function labelText(l, start) {
  if (l.kind === 'attribute') {
    const parts = ATTRS.filter((k) => l[k] != null).map((k) => t('label.' + k) + ' ' + t(l[k] ? 'common.yes' : 'common.no'));
    if (l.persons != null) parts.push(t('label.persons') + ' ' + l.persons);
    const f = S.flags.find((x) => x.id === l.flag_id);
    return `${t('label.kind.attribute')} · #${l.flag_id}${f ? ' ' + tk('flag.', f.type) : ''} · ${parts.join(', ')}`;
  }
  return `${tk('label.kind.', l.kind)} · ${fmtRel(l.at_ms - start)}`;
}
function labelList(id, labels, start) {
  if (!labels.length) return h('ul', { class: 'history', id }, h('li', { class: 'muted' }, t('label.none')));
  return h('ul', { class: 'history', id }, labels.slice().reverse().map((l) => h('li', {
    class: l.withdrawn_at ? 'undone' : '', 'data-label': l.id, 'data-kind': l.kind, 'data-flag': l.flag_id,
  },
  labelText(l, start), ' — ', t('session.by', { who: l.reviewer, at: fmtTime(l.created_at) }),
  l.withdrawn_at ? [' (', t('label.withdrawn'), ')']
    : has('review') ? [' ', h('button', { type: 'button', class: 'btn small withdraw', onclick: () => withdrawLabel(l) }, t('label.withdraw'))] : null)));
}
async function loadLabels() {
  const r = await api('GET', `/v1/sessions/${encodeURIComponent(S.sess.id)}/labels`);
  S.labels = r.labels || [];
}
async function addLabel(body, done) {
  try {
    await api('POST', `/v1/sessions/${encodeURIComponent(S.sess.id)}/labels`, body);
    if (done) done();
    toast(t('toast.labelled', { kind: tk('label.kind.', body.kind) }));
    await loadLabels();
    if (S.view === 'session') renderSession();
  } catch (e) { fail(e); }
}
async function withdrawLabel(l) {
  try {
    await api('DELETE', `/v1/labels/${l.id}`);
    toast(t('toast.withdrawn'));
    await loadLabels();
    if (S.view === 'session') renderSession();
  } catch (e) { fail(e); }
}

// parseSessTime reads a time typed by a reviewer as session ms: m:ss or h:mm:ss (seconds may
// have a fraction; − for before the start) relative to the scheduled start, as the timeline
// shows times; or plain milliseconds, taken as session ms when that large (the API's own
// numbers, which are epoch ms) and as ms after the scheduled start otherwise. null if unreadable.
function parseSessTime(str, start) {
  const s = String(str || '').trim().replace(/^[−–]/, '-');
  const m = /^(-)?(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d{1,3})?)$/.exec(s);
  if (m) {
    if (+m[4] >= 60 || (m[2] && +m[3] >= 60)) return null;
    const ms = ((+(m[2] || 0) * 60 + +m[3]) * 60 + +m[4]) * 1000;
    return Math.round(start + (m[1] ? -ms : ms));
  }
  if (/^\d+$/.test(s)) { const n = Number(s); return n >= 1e11 ? n : start + n; }
  return null;
}

// renderAnswers lists the answer segments and the spotted closing phrases with the audio labels
// a reviewer can give: this detection is not the phrase, the answer really ended here, the phrase
// was said here and missed.
function renderAnswers(start) {
  const A = S.answers || {}; const answers = A.answers || []; const phrases = A.phrases || [];
  const labelled = (kind, at) => S.labels.some((l) => !l.withdrawn_at && l.kind === kind && l.at_ms === at);
  const canLabel = has('review');
  // A time field shows m:ss; left as shown it stands for the exact ms it was filled with. What
  // was typed survives re-renders (a live flag) until it is posted.
  const timeIn = (id, ms) => h('input', { type: 'text', id, class: 'time', value: S.timeDraft[id] ?? (ms ? fmtRel(ms - start) : ''), 'data-ms': ms || null,
    placeholder: 'm:ss', title: t('answers.timeHelp'), oninput: (e) => { S.timeDraft[id] = e.target.value; } });
  const atOf = (inp) => {
    if (inp.dataset.ms && inp.value === fmtRel(Number(inp.dataset.ms) - start)) return Number(inp.dataset.ms);
    const v = parseSessTime(inp.value, start);
    if (v == null || v < 0) { toast(t('answers.badTime', { v: inp.value }), true); inp.focus(); return null; }
    return v;
  };
  const post = (kind, inp) => { const at = atOf(inp); if (at != null) addLabel({ kind, at_ms: at }, () => { delete S.timeDraft[inp.id]; }); };
  const ansTable = answers.length ? h('table', { class: 'list', id: 'answer-rows' },
    h('thead', {}, h('tr', {}, h('th', {}, t('answers.question')), h('th', { class: 'num' }, t('answers.start')), h('th', { class: 'num' }, t('answers.end')),
      h('th', {}, t('session.status')), h('th', { class: 'num' }, t('answers.phraseScore')), h('th', {}, t('rv.audio')), canLabel ? h('th', {}, t('answers.endedHere')) : null)),
    h('tbody', {}, answers.map((a) => {
      const inp = timeIn('end-' + a.question, a.end_ms);
      return h('tr', { 'data-question': a.question },
        h('td', {}, t('session.question', { n: a.question })),
        h('td', { class: 'num' }, fmtRel(a.start_ms - start)), h('td', { class: 'num' }, a.end_ms ? fmtRel(a.end_ms - start) : '—'),
        h('td', {}, h('span', { class: 'badge ' + (a.status === 'closed' ? 'b-reviewed' : a.status === 'not_closed' ? 'b-detection' : 'b-flow') }, tk('answer.', a.status || ''))),
        h('td', { class: 'num' }, a.closed_by_phrase ? (a.phrase_score || 0).toFixed(2) : '—'),
        rvAnswerCell(a),
        canLabel ? h('td', {}, inp, ' ', h('button', { type: 'button', class: 'btn small', onclick: () => post('answer_end', inp) }, t('answers.endedHereBtn'))) : null);
    }))) : h('div', { class: 'empty' }, t('answers.none'));
  const phraseTable = phrases.length ? h('table', { class: 'list', id: 'phrase-rows' },
    h('thead', {}, h('tr', {}, h('th', {}, t('answers.phrase')), h('th', { class: 'num' }, t('answers.score')), canLabel ? h('th', {}, '') : null)),
    h('tbody', {}, phrases.map((p) => h('tr', { 'data-end': p.end_ms },
      h('td', { class: 'mono' }, `${fmtRel(p.start_ms - start)} – ${fmtRel(p.end_ms - start)}`),
      h('td', { class: 'num' }, (p.score || 0).toFixed(2)),
      canLabel ? h('td', {}, labelled('not_phrase', p.end_ms) ? h('span', { class: 'badge b-dismissed' }, t('answers.markedNot'))
        : h('button', { type: 'button', class: 'btn small not-phrase', onclick: () => addLabel({ kind: 'not_phrase', at_ms: p.end_ms }) }, t('answers.notPhrase'))) : null)))) : null;
  const missed = timeIn('missed-at', 0);
  return h('div', { class: 'body' }, ansTable,
    phraseTable ? [h('div', { class: 'muted', style: 'margin-top:10px' }, t('answers.phrases')), phraseTable] : null,
    canLabel ? h('form', { class: 'bar', style: 'margin-top:10px', onsubmit: (e) => { e.preventDefault(); post('phrase_missed', missed); } },
      h('label', { for: 'missed-at' }, t('answers.missedAt')), missed,
      h('button', { class: 'btn', type: 'submit', id: 'missed-save' }, t('answers.missedBtn'))) : null);
}
async function loadHistory(id, ul) {
  try {
    const r = await api('GET', `/v1/flags/${id}`);
    const vs = r.verdicts || [];
    ul.replaceChildren(...(vs.length ? vs.slice().reverse().map((v) => h('li', { class: v.undone ? 'undone' : '' },
      h('span', { class: 'badge b-' + v.verdict }, tk('status.', v.verdict)), ' ', t('session.by', { who: v.reviewer, at: fmtTime(v.created_at) }),
      v.note ? [' — ', v.note] : null, v.undone ? [' (', t('session.undone'), ')'] : null)) : [h('li', { class: 'muted' }, t('session.noHistory'))]));
  } catch (e) { ul.replaceChildren(); }
}
function togglePick(id) { if (S.picked.has(id)) S.picked.delete(id); else S.picked.add(id); renderSession(); }

async function verdict(v) {
  const f = S.flags[S.fsel];
  if (!f) return;
  try {
    await api('POST', `/v1/flags/${f.id}/verdict`, { verdict: v, note: S.note || '' });
    S.note = '';
    toast(t(v === 'confirmed' ? 'toast.confirmed' : 'toast.dismissed', { type: tk('flag.', f.type) }));
    f.status = v; S.picked.delete(f.id);
    const next = S.flags.findIndex((x, i) => i > S.fsel && x.status === 'open');
    if (next >= 0) S.fsel = next;
    await refreshSession();
  } catch (e) { fail(e); }
}
async function bulk(v) {
  if (!S.picked.size) return toast(t('toast.selectFirst'));
  try {
    const r = await api('POST', '/v1/verdicts', { flag_ids: [...S.picked], verdict: v, note: S.note || '' });
    S.note = ''; S.picked.clear();
    toast(t('toast.bulk', { n: r.verdicts.length, verdict: t('verdict.' + v) }));
    await refreshSession();
  } catch (e) { fail(e); }
}
async function undo() {
  try {
    const r = await api('POST', '/v1/verdicts/undo');
    toast(t('toast.undone', { n: r.undone.length }));
    if (S.view === 'session') {
      const i = S.flags.findIndex((f) => f.id === r.undone[0].flag_id);
      if (i >= 0) S.fsel = i;
      await refreshSession();
    } else if (S.view === 'queue') await loadQueue(true);
  } catch (e) { if (e.status === 404) toast(t('toast.nothing')); else fail(e); }
}
async function nextSession() {
  try {
    const q = new URLSearchParams(S.qquery || sessionStorage.getItem('qquery') || '');
    q.set('review', 'open'); q.set('limit', '50');
    const list = (await api('GET', '/v1/sessions?' + q)).sessions || [];
    const next = list.find((s) => !S.sess || s.id !== S.sess.id);
    if (!next) return toast(t('toast.noNext'));
    location.hash = '#/session/' + encodeURIComponent(next.id);
  } catch (e) { fail(e); }
}

// ---- settings (admin) ------------------------------------------------------------------
// The form is built from the checks' declared settings (GET …/settings: checks, engine_settings).
async function showSettings(exam) {
  S.view = 'settings'; renderTop();
  const ex = await exams(true);
  const input = h('input', { type: 'text', id: 'exam-input', placeholder: t('settings.newExam'), value: exam });
  const pick = h('div', { class: 'bar' }, h('label', {}, t('settings.exam'),
    selectEl('exam-select', exam, [['', '—'], ...ex.map((e) => [e.exam_id, `${e.exam_id} (${e.sessions})`])], (e) => { if (e.target.value) location.hash = '#/settings/' + encodeURIComponent(e.target.value); })),
  input, h('button', { class: 'btn', onclick: () => { if (input.value.trim()) location.hash = '#/settings/' + encodeURIComponent(input.value.trim()); } }, t('settings.open')));
  if (!exam) { mount(h('div', { class: 'page' }, h('h2', {}, t('settings.title')), pick, await retentionPanel(''))); return; }
  const r = await api('GET', `/v1/exams/${encodeURIComponent(exam)}/settings`);
  const set = r.settings || {}; const def = r.defaults || {};
  const disabled = new Set(set.disabled || []);
  const rows = r.flag_types.map((ty) => h('tr', {},
    h('td', {}, h('input', { type: 'checkbox', class: 'chk', 'data-type': ty, checked: !disabled.has(ty) })),
    h('td', {}, tk('flag.', ty)), h('td', { class: 'mono muted' }, ty),
    h('td', {}, h('input', { type: 'number', class: 'w', 'data-type': ty, min: 0, max: 1, step: 0.05, placeholder: String((def.weights || {})[ty] ?? ''), value: (set.weights || {})[ty] ?? '' }))));
  const decl = [...(r.engine_settings || []), ...(r.checks || []).flatMap((c) => c.settings || [])];
  const durs = decl.map((d) => { const k = d.key; return [h('label', { for: 'd-' + k, title: d.doc }, tk('settings.', k)),
    h('input', { type: 'number', id: 'd-' + k, 'data-key': k, step: 'any', min: 0, max: d.max, title: `${d.min}–${d.max} ${d.unit}`,
      placeholder: def[k] ? String(+def[k].toFixed(2)) : (d.zero_means ? 'model' : ''), value: set[k] || '' })]; });
  const status = h('p', { class: 'muted', id: 'settings-status' }, r.updated_by ? t('settings.updated', { who: r.updated_by, at: fmtTime(r.updated_at) }) : t('settings.never'));
  const save = async () => {
    const body = { disabled: [], weights: {} };
    document.querySelectorAll('input.chk').forEach((c) => { if (!c.checked) body.disabled.push(c.dataset.type); });
    document.querySelectorAll('input.w').forEach((c) => { if (c.value !== '') body.weights[c.dataset.type] = parseFloat(c.value); });
    document.querySelectorAll('input[data-key]').forEach((c) => { if (c.value !== '') body[c.dataset.key] = parseFloat(c.value); });
    try {
      const out = await api('PUT', `/v1/exams/${encodeURIComponent(exam)}/settings`, body);
      status.textContent = t('settings.updated', { who: out.updated_by, at: fmtTime(out.updated_at) });
      toast(t('common.saved'));
    } catch (e) { fail(e); }
  };
  mount(h('div', { class: 'page' }, h('h2', {}, t('settings.title'), ' · ', exam), pick, status,
    h('div', { class: 'cols' },
      h('div', { class: 'panel' }, h('div', { class: 'head' }, t('settings.checks')), h('div', { class: 'body' }, h('p', { class: 'muted' }, t('settings.checksHelp')),
        h('table', { class: 'list', id: 'checks' }, h('thead', {}, h('tr', {}, h('th', {}, t('settings.enabled')), h('th', {}, t('session.type')), h('th', {}, ''), h('th', {}, t('settings.weight')))), h('tbody', {}, rows)))),
      h('div', { class: 'panel' }, h('div', { class: 'head' }, t('settings.durations')), h('div', { class: 'body' }, h('p', { class: 'muted' }, t('settings.durationsHelp')),
        h('div', { class: 'form-grid' }, durs),
        h('p', {}, h('button', { class: 'btn primary', id: 'save', onclick: save }, t('common.save'))))),
      await retentionPanel(exam))));
}

// Retention in days per data class (docs/privacy.md): the organisation's policy when exam is
// empty, else the exam's override. An empty field inherits (its placeholder shows the value).
async function retentionPanel(exam) {
  const url = exam ? `/v1/exams/${encodeURIComponent(exam)}/retention` : '/v1/retention';
  const r = await api('GET', url);
  const over = r.override || {}; const inh = r.inherited || {};
  const rows = (r.classes || []).map((c) => [h('label', { for: 'r-' + c.key, title: c.description }, tk('retention.', c.key)),
    h('input', { type: 'number', id: 'r-' + c.key, 'data-class': c.key, min: c.min, max: c.max, step: 1,
      title: `${c.min}–${c.max} ${t('retention.days')}`, placeholder: String(inh[c.key] ?? c.default), value: over[c.key] ?? '' })]);
  const status = h('p', { class: 'muted', id: 'retention-status' }, r.updated_by ? t('settings.updated', { who: r.updated_by, at: fmtTime(r.updated_at) }) : t('settings.never'));
  const save = async () => {
    const body = {};
    document.querySelectorAll('input[data-class]').forEach((i) => { if (i.value !== '') body[i.dataset.class] = parseInt(i.value, 10); });
    try {
      const out = await api('PUT', url, body);
      status.textContent = t('settings.updated', { who: out.updated_by, at: fmtTime(out.updated_at) });
      toast(t('common.saved'));
    } catch (e) { fail(e); }
  };
  return h('div', { class: 'panel', id: 'retention' }, h('div', { class: 'head' }, exam ? t('retention.exam') : t('retention.org')),
    h('div', { class: 'body' }, h('p', { class: 'muted' }, t('retention.help')), status, h('div', { class: 'form-grid' }, rows),
      h('p', {}, h('button', { class: 'btn primary', id: 'save-retention', onclick: save }, t('common.save')))));
}

// ---- audit log (admin) -----------------------------------------------------------------
async function showAudit(q) {
  S.view = 'audit'; renderTop();
  const action = q.get('action') || '';
  const tbody = h('tbody', {});
  let last = 0;
  const more = h('button', { class: 'btn', onclick: () => load() }, t('common.more'));
  const load = async () => {
    const p = new URLSearchParams({ limit: '100' });
    if (action) p.set('action', action);
    if (last) p.set('before', last);
    const r = await api('GET', '/v1/audit?' + p);
    for (const e of r.entries) {
      tbody.append(h('tr', { 'data-action': e.action }, h('td', { class: 'mono' }, fmtTime(e.at) + ':' + pad2(new Date(e.at).getSeconds())), h('td', {}, e.actor),
        h('td', {}, h('span', { class: 'badge b-flow' }, e.action)), h('td', { class: 'mono' }, e.target), h('td', { class: 'wrap mono muted' }, e.detail), h('td', { class: 'mono muted' }, e.remote_ip)));
      last = e.id;
    }
    more.hidden = r.entries.length < 100;
  };
  const filter = h('input', { type: 'text', id: 'audit-action', value: action, placeholder: t('audit.filter'), style: 'width:320px',
    onchange: (e) => { location.hash = '#/audit' + (e.target.value ? '?action=' + encodeURIComponent(e.target.value) : ''); } });
  mount(h('div', { class: 'page' }, h('div', { class: 'bar' }, h('h2', { style: 'margin:0' }, t('audit.title')), filter),
    h('table', { class: 'list', id: 'audit' }, h('thead', {}, h('tr', {}, ['at', 'actor', 'action', 'target', 'detail', 'ip'].map((k) => h('th', {}, t('audit.' + k))))), tbody),
    h('p', {}, more)));
  await load();
}

// ---- exports (data) --------------------------------------------------------------------
async function showExports() {
  S.view = 'exports'; renderTop();
  const ex = await exams(true);
  const link = h('a', { class: 'btn primary', id: 'download', href: '/v1/exports/verdicts.csv' }, t('exports.download'));
  const upd = () => {
    const p = new URLSearchParams();
    for (const [k, id] of [['exam_id', 'x-exam'], ['from', 'x-from'], ['to', 'x-to']]) { const v = document.getElementById(id).value; if (v) p.set(k, v); }
    link.href = '/v1/exports/verdicts.csv' + (p.toString() ? '?' + p : '');
  };
  mount(h('div', { class: 'page' }, h('div', { class: 'panel', style: 'max-width:720px' }, h('div', { class: 'head' }, t('exports.title')),
    h('div', { class: 'body' }, h('p', { class: 'muted' }, t('exports.help')),
      h('div', { class: 'bar' },
        h('label', {}, t('queue.filter.exam'), selectEl('x-exam', '', [['', t('common.all')], ...ex.map((e) => [e.exam_id, e.exam_id])], upd)),
        h('label', {}, t('queue.filter.from'), h('input', { type: 'date', id: 'x-from', onchange: upd })),
        h('label', {}, t('queue.filter.to'), h('input', { type: 'date', id: 'x-to', onchange: upd })), link)))));
}

// ---- models: precision, rollout, datasets (data; promote and rollback admin) -------------
const pct = (v) => (v == null ? '—' : (v * 100).toFixed(1) + '%');
const fmtBytes = (n) => (n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MB' : n >= 1024 ? Math.round(n / 1024) + ' KB' : (n || 0) + ' B');
const enc = encodeURIComponent;

async function showModels(q) {
  S.view = 'models'; renderTop();
  const bucket = q.get('bucket') || 'week'; const ftype = q.get('flag_type') || '';
  const pq = new URLSearchParams({ bucket }); if (ftype) pq.set('flag_type', ftype);
  const [prec, mods, exps, ex] = await Promise.all([api('GET', '/v1/precision?' + pq), api('GET', '/v1/models'), api('GET', '/v1/exports'), exams(true)]);
  if (S.view !== 'models') return;
  const setQ = (k, v) => { const n = new URLSearchParams(q); if (v) n.set(k, v); else n.delete(k); location.hash = '#/models?' + n; };
  const types = Object.keys(S.L.en || {}).filter((k) => k.startsWith('flag.')).map((k) => k.slice(5)).sort();
  mount(h('div', { class: 'page' },
    precisionPanel(prec.rows || [], bucket, ftype, types, setQ),
    h('div', { class: 'cols', style: 'margin-top:10px' },
      h('div', {}, (mods.models || []).map(modelPanel)),
      datasetPanel(exps.exports || [], ex, types))));
  for (const m of mods.models || []) if (m.shadow) compareInto(m.name, m.shadow.split('@').slice(1).join('@'));
}

function precisionPanel(rows, bucket, ftype, types, setQ) {
  const body = rows.length ? rows.map((r) => h('tr', { 'data-type': r.flag_type, 'data-model': r.model },
    h('td', { title: r.flag_type }, tk('flag.', r.flag_type)), h('td', { class: 'mono' }, r.model === 'rules' ? t('models.rules') : r.model),
    h('td', { class: 'mono' }, r.period || t('models.allTime')),
    h('td', { class: 'num' }, r.raised), h('td', { class: 'num' }, r.confirmed), h('td', { class: 'num' }, r.dismissed), h('td', { class: 'num' }, r.open),
    h('td', { class: 'num prec' }, pct(r.precision)))) : h('tr', {}, h('td', { colspan: 8, class: 'empty' }, t('models.noPrecision')));
  return h('div', { class: 'panel' }, h('div', { class: 'head' }, t('models.precision')),
    h('div', { class: 'body' }, h('p', { class: 'muted' }, t('models.precisionHelp')),
      h('div', { class: 'bar' },
        h('label', {}, t('models.bucket'), selectEl('p-bucket', bucket, [['day', t('models.bucket.day')], ['week', t('models.bucket.week')], ['all', t('models.bucket.all')]],
          (e) => setQ('bucket', e.target.value))),
        h('label', {}, t('queue.filter.type'), selectEl('p-type', ftype, [['', t('common.all')], ...types.map((ty) => [ty, tk('flag.', ty)])], (e) => setQ('flag_type', e.target.value)))),
      h('table', { class: 'list', id: 'precision' },
        h('thead', {}, h('tr', {}, ['type', 'model', 'period', 'raised', 'confirmed', 'dismissed', 'open', 'precision'].map((k) =>
          h('th', { class: ['type', 'model', 'period'].includes(k) ? null : 'num' }, t('models.col.' + k))))),
        h('tbody', {}, body))));
}

function modelPanel(m) {
  const admin = has('admin');
  const act = (v, action, cls) => h('button', { type: 'button', class: 'btn small' + (cls ? ' ' + cls : ''), 'data-action': action, onclick: () => modelAction(m, v, action) }, t('models.' + action));
  const builtInRow = h('tr', { 'data-version': 'built-in' },
    h('td', { class: 'mono' }, m.built_in), h('td', {}, h('span', { class: 'badge ' + (m.active === m.built_in ? 'b-reviewed' : 'b-flow') },
      m.active === m.built_in ? t('models.status.active') : t('models.builtIn'))),
    h('td', { colspan: 5, class: 'wrap muted' }, t('models.builtInHelp')), h('td', {}, ''));
  const rows = (m.versions || []).map((v) => {
    const ref = m.name + '@' + v.version;
    const acts = [];
    if (v.status === 'registered' || v.status === 'retired') acts.push(act(v, 'shadow'));
    if (v.status === 'shadow') acts.push(act(v, 'unshadow'));
    if (v.status !== 'active') acts.push(h('button', { type: 'button', class: 'btn small', 'data-action': 'compare', onclick: () => compareInto(m.name, v.version) }, t('models.compare')));
    if (admin && v.status !== 'active') acts.push(act(v, 'promote', 'primary'));
    let evalEl = null;
    if (v.eval) {
      let txt = v.eval; try { txt = JSON.stringify(JSON.parse(v.eval), null, 1); } catch { /* shown as stored */ }
      evalEl = h('details', {}, h('summary', {}, t('models.eval')), h('pre', { class: 'mono' }, txt));
    }
    return h('tr', { 'data-version': v.version, 'data-status': v.status },
      h('td', { class: 'mono', title: ref }, v.version),
      h('td', {}, h('span', { class: 'badge b-' + ({ active: 'reviewed', shadow: 'detection', registered: 'open', retired: 'dismissed' }[v.status] || 'flow') }, tk('models.status.', v.status))),
      h('td', { class: 'mono', title: v.sha256 }, (v.sha256 || '').slice(0, 12)), h('td', { class: 'num' }, fmtBytes(v.bytes)),
      h('td', {}, v.registered_by), h('td', { class: 'mono' }, fmtTime(v.created_at)), h('td', { class: 'mono' }, v.activated_at ? fmtTime(v.activated_at) : '—'),
      h('td', { class: 'wrap' }, acts, evalEl));
  });
  const hasActive = (m.versions || []).some((v) => v.status === 'active');
  return h('div', { class: 'panel model', 'data-model': m.name, style: 'margin-bottom:10px' },
    h('div', { class: 'head' }, h('span', { class: 'mono' }, m.name), h('span', { style: 'flex:1' }),
      admin && hasActive ? act(null, 'rollback', 'confirm') : null),
    h('div', { class: 'body' },
      h('dl', { class: 'kv' }, h('dt', {}, t('models.active')), h('dd', { class: 'mono' }, m.active),
        h('dt', {}, t('models.shadowing')), h('dd', { class: 'mono' }, m.shadow || '—'),
        h('dt', {}, t('models.builtIn')), h('dd', { class: 'mono' }, m.built_in)),
      h('table', { class: 'list versions' },
        h('thead', {}, h('tr', {}, ['version', 'status', 'sha256', 'size', 'by', 'registered', 'activated', 'actions'].map((k) =>
          h('th', { class: k === 'size' ? 'num' : null }, t('models.col.' + k))))),
        h('tbody', {}, builtInRow, rows)),
      h('div', { class: 'compare', id: 'compare-' + m.name })));
}

async function modelAction(m, v, action) {
  const ref = v ? m.name + '@' + v.version : m.name;
  let body;
  if (action === 'promote' || action === 'rollback') {
    if (!confirm(t('models.confirm.' + action, { ref, active: m.active }))) return;
    const reason = prompt(t('models.reason'), '');
    if (reason == null) return;
    if (reason.trim()) body = { reason: reason.trim() };
  }
  const path = action === 'rollback' ? `/v1/models/${enc(m.name)}/rollback` : `/v1/models/${enc(m.name)}/${enc(v.version)}/${action}`;
  try {
    const r = await api('POST', path, body);
    toast(t('models.done', { action: t('models.' + action), ref, active: r.active, shadow: r.shadow || '—' }));
    await showModels(parseHash().q);
  } catch (e) { fail(e); }
}

// compareInto shows how a version that ran in shadow compares with the active one (last 7 days).
async function compareInto(name, version) {
  const box = document.getElementById('compare-' + name);
  if (!box) return;
  box.replaceChildren(h('p', { class: 'muted' }, t('common.loading')));
  try {
    const c = await api('GET', `/v1/models/${enc(name)}/${enc(version)}/compare`);
    const labels = Object.entries(c.labels || {});
    const fl = c.flags || {};
    box.replaceChildren(h('div', { class: 'muted', style: 'margin-top:10px' }, t('models.compareTitle', { ref: name + '@' + version, since: fmtTime(c.since) })),
      c.frames ? [
        h('dl', { class: 'kv', 'data-ref': name + '@' + version },
          h('dt', {}, t('models.cmp.frames')), h('dd', { class: 'mono' }, c.frames),
          h('dt', {}, t('models.cmp.agreement')), h('dd', { class: 'mono' }, pct(c.agreement)),
          h('dt', {}, t('models.cmp.reviewed')), h('dd', { class: 'mono' }, fl.reviewed || 0),
          h('dt', {}, t('models.cmp.activePrecision')), h('dd', { class: 'mono' }, pct(fl.active_precision)),
          h('dt', {}, t('models.cmp.shadowWouldRaise')), h('dd', { class: 'mono' }, fl.shadow_would_raise || 0),
          h('dt', {}, t('models.cmp.shadowPrecision')), h('dd', { class: 'mono' }, pct(fl.shadow_precision))),
        labels.length ? h('table', { class: 'list' },
          h('thead', {}, h('tr', {}, ['label', 'frames', 'disagree', 'activePos', 'shadowPos', 'labelled', 'activeAcc', 'shadowAcc'].map((k) =>
            h('th', { class: k === 'label' ? null : 'num' }, t('models.cmp.' + k))))),
          h('tbody', {}, labels.map(([k, l]) => h('tr', { 'data-label': k }, h('td', {}, tk('label.', k)),
            h('td', { class: 'num' }, l.frames), h('td', { class: 'num' }, l.disagree), h('td', { class: 'num' }, l.active_positive),
            h('td', { class: 'num' }, l.shadow_positive), h('td', { class: 'num' }, l.labelled),
            h('td', { class: 'num' }, pct(l.active_accuracy)), h('td', { class: 'num' }, pct(l.shadow_accuracy)))))) : null,
      ] : h('p', { class: 'muted' }, t('models.cmp.none')));
  } catch (e) { box.replaceChildren(); fail(e); }
}

// datasetPanel builds training exports (docs/data-loop.md §2): why is required, what is optional.
function datasetPanel(list, ex, types) {
  const purpose = h('textarea', { id: 'exp-purpose', rows: 2, maxlength: 1000, required: true, placeholder: t('datasets.purposeHint') });
  const check = (name, value, on) => h('label', {}, h('input', { type: 'checkbox', name, value, checked: on }), ' ', t(name + '.' + value));
  const kinds = [check('datasets.kind', 'vision', true), check('datasets.kind', 'audio', true)];
  const verdicts = ['confirmed', 'dismissed', 'open'].map((v) => h('label', {}, h('input', { type: 'checkbox', name: 'datasets.verdict', value: v }), ' ', tk('status.', v)));
  const ftypes = h('input', { type: 'text', id: 'exp-types', list: 'exp-type-list', placeholder: 'MASK, FACE_OCCLUDED' });
  const examSel = selectEl('exp-exam', '', [['', t('common.all')], ...ex.map((e) => [e.exam_id, e.exam_id])]);
  const go = h('button', { class: 'btn primary', type: 'submit', id: 'exp-create' }, t('datasets.create'));
  const submit = async (e) => {
    e.preventDefault();
    if (!purpose.value.trim()) { toast(t('datasets.purposeRequired'), true); purpose.focus(); return; }
    const picked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((c) => c.value);
    const body = { purpose: purpose.value.trim() };
    const k = picked('datasets.kind'); if (k.length) body.kinds = k;
    const v = picked('datasets.verdict'); if (v.length) body.verdicts = v;
    const ft = ftypes.value.split(/[\s,，]+/).map((x) => x.trim().toUpperCase()).filter(Boolean); if (ft.length) body.flag_types = ft;
    if (examSel.value) body.exam = examSel.value;
    go.disabled = true; go.textContent = t('datasets.building');
    try {
      const r = await api('POST', '/v1/exports', body);
      toast(t('datasets.created', { id: r.id }));
      await showModels(parseHash().q);
    } catch (ex2) { fail(ex2); go.disabled = false; go.textContent = t('datasets.create'); }
  };
  const counts = (x) => { try { return JSON.parse(x.counts || '{}') || {}; } catch { return {}; } };
  const rows = list.length ? list.map((x) => {
    const c = counts(x);
    return h('tr', { 'data-export': x.id },
      h('td', { class: 'mono' }, fmtTime(x.created_at)), h('td', { class: 'wrap' }, x.purpose), h('td', {}, x.created_by),
      h('td', { class: 'num' }, c.items ?? '—'), h('td', { class: 'num' }, fmtBytes(x.bytes)),
      h('td', {}, h('a', { href: x.archive, download: x.id + '.zip' }, t('datasets.download'))));
  }) : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, t('datasets.none')));
  return h('div', { class: 'panel' }, h('div', { class: 'head' }, t('datasets.title')),
    h('div', { class: 'body' }, h('p', { class: 'muted' }, t('datasets.help')),
      h('form', { class: 'form-grid wide', id: 'export-form', onsubmit: submit },
        h('label', { for: 'exp-purpose' }, t('datasets.purpose')), purpose,
        h('span', {}, t('datasets.kinds')), h('span', {}, kinds),
        h('span', {}, t('datasets.verdicts')), h('span', {}, verdicts, h('span', { class: 'muted' }, ' ', t('datasets.noneIsAll'))),
        h('label', { for: 'exp-types' }, t('datasets.flagTypes')), ftypes,
        h('label', { for: 'exp-exam' }, t('queue.filter.exam')), examSel,
        h('span', {}), h('span', {}, go)),
      h('datalist', { id: 'exp-type-list' }, types.map((ty) => h('option', { value: ty }, tk('flag.', ty)))),
      h('table', { class: 'list', id: 'exports', style: 'margin-top:12px' },
        h('thead', {}, h('tr', {}, ['created', 'purpose', 'by', 'items', 'size', ''].map((k) => h('th', {}, k ? t('datasets.col.' + k) : '')))),
        h('tbody', {}, rows))));
}

// ---- users and keys (admin) ------------------------------------------------------------
async function showAdmin() {
  S.view = 'admin'; renderTop();
  const [u, k] = await Promise.all([api('GET', '/v1/users'), api('GET', '/v1/keys')]);
  const email = h('input', { type: 'email', id: 'new-email', placeholder: t('admin.email') });
  const role = selectEl('new-role', 'reviewer', u.roles.map((r) => [r, t('role.' + r)]));
  const out = h('p', { class: 'mono', id: 'new-password' });
  const users = h('table', { class: 'list', id: 'users' }, h('thead', {}, h('tr', {}, h('th', {}, t('admin.email')), h('th', {}, t('admin.role')), h('th', {}, t('admin.created')), h('th', {}, ''))),
    h('tbody', {}, u.users.map((x) => h('tr', {}, h('td', {}, x.email), h('td', {}, t('role.' + x.role)), h('td', { class: 'mono' }, fmtTime(x.created_at)),
      h('td', {}, x.disabled_at ? [h('span', { class: 'badge b-dismissed' }, t('admin.disabled')), ' '] : null,
        h('button', { class: 'btn', onclick: async () => { try { await api('PUT', '/v1/users/' + x.id, { disabled: !x.disabled_at }); showAdmin(); } catch (e) { fail(e); } } },
          x.disabled_at ? t('admin.enable') : t('admin.disable')))))));
  const keys = h('table', { class: 'list', id: 'keys' }, h('thead', {}, h('tr', {}, h('th', {}, 'id'), h('th', {}, t('admin.name')), h('th', {}, t('admin.scopes')), h('th', {}, t('admin.created')), h('th', {}, ''))),
    h('tbody', {}, k.keys.map((x) => h('tr', { class: x.revoked_at ? 'done' : '' }, h('td', { class: 'mono' }, x.id), h('td', {}, x.name), h('td', {}, x.scopes), h('td', { class: 'mono' }, fmtTime(x.created_at)),
      h('td', {}, x.revoked_at ? t('admin.revoked') : h('button', { class: 'btn', onclick: async () => { try { await api('DELETE', '/v1/keys/' + x.id); showAdmin(); } catch (e) { fail(e); } } }, t('admin.revoke')))))));
  mount(h('div', { class: 'page cols' },
    h('div', { class: 'panel' }, h('div', { class: 'head' }, t('admin.users')), h('div', { class: 'body' },
      h('div', { class: 'bar' }, email, role, h('button', {
        class: 'btn primary', onclick: async () => {
          try { const r = await api('POST', '/v1/users', { email: email.value, role: role.value }); out.textContent = t('admin.password', { email: r.user.email, pw: r.password }); email.value = ''; } catch (e) { fail(e); }
        },
      }, t('admin.create'))), out, users)),
    h('div', { class: 'panel' }, h('div', { class: 'head' }, t('admin.keys')), h('div', { class: 'body' }, keys))));
}

// ---- review media: filmstrip, recording playback, answers' audio (issue 17) -------------
// One review time S.rv.t (ms since epoch) drives the filmstrip's cursor, both cameras' players
// and the stored audio; the timeline seeks it. The panel and its media elements are built once
// per session and moved into each re-render (renderSession rebuilds the page on every change),
// so a playing video or answer keeps playing. Data comes a window at a time (±10 s of frames),
// never a whole session's frames.
const RV_WIN = 10000;
const AUDIO_FLAGS = ['ANSWER_NOT_CLOSED', 'SPEECH_OUTSIDE_ANSWER', 'LONG_SILENCE', 'SECOND_VOICE'];
const RV_CAMS = ['main', 'evidence'];
function rvFresh(sid) {
  return { sid, media: null, t: 0, flagId: null, overlays: true, frames: { main: [], evidence: [] }, win: null, cols: [], cur: -1,
    loadSeq: 0, loading: null, el: null, videos: {}, views: {}, audio: null, audioSpan: null, driver: null, raf: 0, tickAt: 0,
    peaks: {}, playingQ: 0, tl: null, digits: '', digitTimer: 0 };
}
S.rv = rvFresh(null);
const isAudioFlag = (f) => AUDIO_FLAGS.includes(f.type) || /(^|[ ,])(vad|phrase|speaker)/.test(f.model_version || '');
const rvURL = (p) => `/v1/sessions/${encodeURIComponent(S.rv.sid)}${p}`;

// rvLoad starts a session's media state (called with the page's other requests).
async function rvLoad(id) {
  if (S.rv.sid !== id) { rvStop(); S.rv = rvFresh(id); }
  try { S.rv.media = await api('GET', rvURL('/media')); } catch (e) { S.rv.media = { recordings: [], audio: [] }; }
}
function rvRecording(cam, t) {
  const recs = ((S.rv.media && S.rv.media.recordings) || []).filter((r) => r.camera === cam && r.playable);
  return recs.find((r) => t >= r.started_at && t <= r.started_at + Math.max(r.duration_ms, 1000)) || null;
}
function svgEl(tag, attrs, ...kids) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const k in attrs) el.setAttribute(k, attrs[k]);
  el.append(...kids);
  return el;
}
// rvOverlay draws what the analyzers found on a frame: faces (green: the registered person,
// red: someone else, with the similarity), persons and phones, the A4 sheet's outline.
function rvOverlay(fr) {
  const o = fr && fr.overlays;
  if (!o || !o.width) return null;
  const sw = Math.max(2, o.width / 250); const fs = Math.max(12, o.width / 40);
  const g = svgEl('svg', { viewBox: `0 0 ${o.width} ${o.height}`, preserveAspectRatio: 'none', class: 'rv-ovl' });
  const box = (b, color, label) => {
    g.append(svgEl('rect', { x: b[0], y: b[1], width: b[2], height: b[3], fill: 'none', stroke: color, 'stroke-width': sw }));
    if (label) g.append(svgEl('text', { x: b[0] + sw, y: Math.max(fs, b[1] - sw), fill: color, 'font-size': fs }, label));
  };
  for (const ob of o.objects || []) box(ob.box, ob.class === 'person' ? '#4aa3ff' : '#ff9d00', `${ob.class} ${ob.score.toFixed(2)}`);
  for (const f of o.faces || []) {
    const known = f.similarity != null;
    box(f.box, !known ? '#ffd400' : f.same_person ? '#2ecc71' : '#ff3b30', known ? `${t('session.similarity')} ${f.similarity.toFixed(2)}` : `face ${f.score.toFixed(2)}`);
  }
  if (o.sheet) {
    g.append(svgEl('polygon', { points: o.sheet.quad.map((p) => p.join(',')).join(' '), fill: 'none',
      stroke: o.sheet.writing ? '#ff3b30' : '#e0e0ff', 'stroke-width': sw, 'stroke-dasharray': `${sw * 3} ${sw * 2}` }));
  }
  return g;
}
// rvExplain shows why a media request failed (purged by retention: 410 with a message).
async function rvExplain(url, el) {
  try {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Range: 'bytes=0-0' } });
    if (r.ok) return;
    const j = await r.json().catch(() => ({}));
    el.textContent = (r.status === 410 ? t('rv.purged') + ' ' : '') + (j.error || r.status);
  } catch { /* the network: nothing more to say */ }
}

// rvBuild makes the panel once per session.
function rvBuild() {
  const R = S.rv;
  const btn = (id, label, key, fn) => h('button', { type: 'button', class: 'btn', id, onclick: fn }, label, h('kbd', {}, key));
  R.timeEl = h('span', { class: 'mono', id: 'rv-time' });
  R.msg = h('span', { class: 'muted', id: 'rv-msg' });
  R.playBtn = btn('rv-play', t('rv.play'), 'p', rvTogglePlay);
  R.ovlBtn = btn('rv-ovl', t('rv.overlays'), 'o', rvToggleOverlays);
  const stage = h('div', { class: 'rv-stage' }, RV_CAMS.map((cam) => {
    const v = { cam, img: h('img', { alt: '' }), none: h('div', { class: 'none' }, t('session.noFrame')), box: h('div', { class: 'rv-box' }),
      src: h('span', {}) };
    v.img.addEventListener('error', () => { if (v.img.getAttribute('src')) { v.none.hidden = false; v.img.hidden = true; rvExplain(v.img.src, v.none); } });
    const rec = ((R.media && R.media.recordings) || []).find((r) => r.camera === cam && r.playable);
    if (rec) {
      v.video = h('video', { id: 'rv-video-' + cam, preload: 'auto', playsinline: true, src: rec.video_url });
      v.video.muted = cam !== 'main'; // one sound track: the candidate's microphone
      v.video.addEventListener('error', () => { v.none.hidden = false; rvExplain(rec.video_url, v.none); });
      v.video.addEventListener('loadedmetadata', () => rvUpdate());
      R.videos[cam] = v.video;
    }
    v.box.append(...[v.video, v.img, v.none].filter(Boolean));
    R.views[cam] = v;
    return h('div', { class: 'shot rv-view', 'data-camera': cam }, h('div', { class: 'cap' }, h('span', {}, tk('camera.', cam)), v.src), v.box);
  }));
  R.strip = h('div', { class: 'rv-strip', id: 'rv-strip' });
  R.audio = h('audio', { id: 'rv-audio', controls: true, preload: 'none' });
  R.audio.addEventListener('error', () => { if (R.audio.getAttribute('src')) rvExplain(R.audio.src, R.msg); });
  R.audio.addEventListener('ended', () => rvPause());
  R.audioLabel = h('span', { class: 'muted', id: 'rv-audio-label' });
  R.el = h('div', { class: 'panel', id: 'review-media', style: 'margin-bottom:10px' },
    h('div', { class: 'head' }, t('rv.title'), R.timeEl, h('span', { style: 'flex:1' }),
      btn('rv-prev', '◀', '←', () => rvStep(-1)), R.playBtn, btn('rv-next', '▶', '→', () => rvStep(1)), R.ovlBtn),
    h('div', { class: 'body' }, stage, R.strip, h('div', { class: 'rv-audiobar' }, R.audio, R.audioLabel, R.msg)));
}

// rvPanel is the panel for the session page; a newly selected flag moves the review time to it.
function rvPanel() {
  if (!S.rv.sid || S.rv.sid !== S.sess.id) return null;
  if (!S.rv.el) rvBuild();
  const f = S.flags[S.fsel];
  if (f && S.rv.flagId !== f.id) {
    S.rv.flagId = f.id;
    rvPause();
    const at = isAudioFlag(f) ? f.start_ms - 3000 : f.start_ms;
    rvSeek(at);
    if (isAudioFlag(f)) rvSetAudio(f.start_ms - 5000, f.end_ms + 5000, t('rv.aroundFlag', { type: tk('flag.', f.type) }));
  } else if (!f && !S.rv.win) rvSeek(Date.parse(S.sess.scheduled_start));
  S.rv.ovlBtn.classList.toggle('primary', S.rv.overlays);
  queueMicrotask(rvUpdate); // once mounted: the new timeline's line
  return S.rv.el;
}

// rvSeek moves the review time; from names the player that reported it (not seeked back).
function rvSeek(t, from) {
  const R = S.rv;
  R.t = Math.round(t);
  if (!R.win || R.t < R.win.from || R.t > R.win.to) rvLoadWindow(R.t);
  for (const cam of RV_CAMS) {
    const v = R.videos[cam]; const rec = rvRecording(cam, R.t);
    if (!v || !rec || from === v) continue;
    const want = (R.t - rec.started_at) / 1000;
    if (Math.abs(v.currentTime - want) > 0.25) v.currentTime = want;
  }
  if (R.driver === 'audio' && from !== R.audio) rvPause();
  rvUpdate();
}
async function rvLoadWindow(center) {
  const R = S.rv; const seq = ++R.loadSeq;
  const from = center - RV_WIN; const to = center + RV_WIN;
  R.win = { from, to };
  try {
    const got = await Promise.all(RV_CAMS.map((cam) => api('GET', rvURL(`/frames?camera=${cam}&from=${from}&to=${to}&limit=200&thumbs=true`))));
    if (seq !== R.loadSeq) return;
    RV_CAMS.forEach((cam, i) => { R.frames[cam] = got[i].frames || []; });
  } catch (e) { if (seq === R.loadSeq) { R.frames = { main: [], evidence: [] }; R.msg.textContent = e.message; } }
  // Columns: frames of both cameras within half a second of each other share a column.
  const all = RV_CAMS.flatMap((cam) => R.frames[cam].map((fr) => ({ cam, fr }))).sort((a, b) => a.fr.captured_at - b.fr.captured_at);
  R.cols = [];
  for (const x of all) {
    const c = R.cols[R.cols.length - 1];
    if (c && !c[x.cam] && x.fr.captured_at - c.t < 500) c[x.cam] = x.fr;
    else R.cols.push({ t: x.fr.captured_at, [x.cam]: x.fr });
  }
  rvRenderStrip();
  rvUpdate();
}
function rvRenderStrip() {
  const R = S.rv; const start = Date.parse(S.sess.scheduled_start);
  if (!R.cols.length) { R.strip.replaceChildren(h('div', { class: 'empty' }, t('rv.noFrames'))); return; }
  R.strip.replaceChildren(...R.cols.map((c, i) => h('div', { class: 'rv-col', 'data-i': i, 'data-t': c.t, onclick: () => { rvPause(); rvSeek(c.t); } },
    h('div', { class: 'rv-at mono' }, fmtRel(c.t - start)),
    RV_CAMS.map((cam) => (c[cam] ? h('img', { src: c[cam].thumb || c[cam].thumb_url, alt: '', 'data-camera': cam, title: tk('camera.', cam),
      onerror: (e) => e.target.replaceWith(h('div', { class: 'rv-gap', 'data-camera': cam, title: t('rv.framePurged') }, '×')) })
      : h('div', { class: 'rv-gap', 'data-camera': cam }))))));
}
function rvNearest(cam, t) {
  let best = null;
  for (const fr of S.rv.frames[cam]) if (!best || Math.abs(fr.captured_at - t) < Math.abs(best.captured_at - t)) best = fr;
  return best && Math.abs(best.captured_at - t) <= 1000 ? best : null;
}
// rvUpdate shows the review time everywhere: cursor, frames or players, overlays, timeline.
function rvUpdate() {
  const R = S.rv; if (!R.el) return;
  const start = Date.parse(S.sess.scheduled_start);
  R.timeEl.textContent = ' · ' + fmtRel(R.t - start); R.timeEl.dataset.t = R.t;
  let cur = -1;
  R.cols.forEach((c, i) => { if (cur < 0 || Math.abs(c.t - R.t) < Math.abs(R.cols[cur].t - R.t)) cur = i; });
  if (cur !== R.cur) {
    const old = R.strip.querySelector('.rv-col.sel'); if (old) old.classList.remove('sel');
    const el = R.strip.querySelector(`.rv-col[data-i="${cur}"]`);
    if (el) { el.classList.add('sel'); el.scrollIntoView({ block: 'nearest', inline: 'center' }); }
    R.cur = cur;
  }
  for (const cam of RV_CAMS) {
    const v = R.views[cam]; const rec = rvRecording(cam, R.t); const fr = rvNearest(cam, R.t);
    const useVideo = !!(v.video && rec);
    if (v.video) v.video.hidden = !useVideo;
    v.src.textContent = useVideo ? t('rv.recording') : fr ? t('rv.frame') : '';
    if (!useVideo) {
      if (fr) {
        if (v.img.dataset.seq !== String(fr.seq)) { v.img.hidden = false; v.none.hidden = true; v.img.src = fr.image_url; v.img.dataset.seq = fr.seq; }
      } else { v.img.hidden = true; v.img.removeAttribute('src'); v.img.dataset.seq = ''; v.none.hidden = false; v.none.textContent = t('session.noFrame'); }
    } else { v.img.hidden = true; v.none.hidden = true; }
    const o = fr && fr.overlays;
    v.box.style.aspectRatio = o && o.width ? `${o.width} / ${o.height}` : '4 / 3';
    const old = v.box.querySelector('.rv-ovl'); if (old) old.remove();
    if (R.overlays && fr && (!useVideo || v.video.paused || Math.abs(fr.captured_at - R.t) < 600)) { const g = rvOverlay(fr); if (g) v.box.append(g); }
  }
  const head = document.getElementById('rv-head');
  if (head && R.tl) { const x = ((R.t - R.tl.lo) / (R.tl.hi - R.tl.lo)) * 100; head.style.left = Math.max(0, Math.min(100, x)) + '%'; }
}
function rvStep(d) {
  const R = S.rv; rvPause();
  if (!R.cols.length) { rvSeek(R.t + d * 1000); return; }
  const i = R.cur + d;
  if (i < 0 || i >= R.cols.length) { rvSeek(R.cols[R.cur].t + d * 1000); return; } // the next window loads around it
  rvSeek(R.cols[i].t);
}
function rvToggleOverlays() { S.rv.overlays = !S.rv.overlays; S.rv.ovlBtn.classList.toggle('primary', S.rv.overlays); rvUpdate(); }

// Playback: the recordings where there are any (the main camera's sound), else the stored
// audio with the filmstrip following it, else the filmstrip alone at real speed.
function rvSetAudio(from, to, label) {
  const R = S.rv; const max = (R.media && R.media.max_audio_span_ms) || 900000;
  from = Math.round(from); to = Math.round(Math.min(to, from + max));
  R.audioSpan = { from, to }; R.msg.textContent = '';
  R.audio.src = rvURL(`/audio?from=${from}&to=${to}`);
  R.audioLabel.textContent = label || '';
}
function rvTogglePlay() { if (S.rv.driver) rvPause(); else rvPlay(); }
function rvPlay() {
  const R = S.rv;
  const vids = RV_CAMS.map((cam) => ({ cam, v: R.videos[cam], rec: rvRecording(cam, R.t) })).filter((x) => x.v && x.rec);
  if (vids.length) {
    R.driver = 'video'; R.master = vids[0];
    for (const x of vids) { x.v.currentTime = (R.t - x.rec.started_at) / 1000; x.v.play().catch((e) => { R.msg.textContent = e.message; }); }
  } else if (R.audioSpan && R.t >= R.audioSpan.from && R.t < R.audioSpan.to) {
    R.driver = 'audio'; R.audio.currentTime = (R.t - R.audioSpan.from) / 1000; R.audio.play().catch((e) => { R.msg.textContent = e.message; });
  } else if ((R.media && R.media.audio || []).some((s) => R.t >= s.start_ms && R.t < s.end_ms)) {
    rvSetAudio(R.t, R.t + 300000, t('rv.fromHere'));
    R.driver = 'audio'; R.audio.play().catch((e) => { R.msg.textContent = e.message; });
  } else R.driver = 'clock';
  R.tickAt = performance.now();
  R.playBtn.classList.add('primary');
  cancelAnimationFrame(R.raf); R.raf = requestAnimationFrame(rvTick);
}
function rvPause() {
  const R = S.rv; if (!R.driver) return;
  R.driver = null; cancelAnimationFrame(R.raf);
  for (const cam of RV_CAMS) if (R.videos[cam]) R.videos[cam].pause();
  if (!R.audio.paused) R.audio.pause();
  R.playBtn.classList.remove('primary');
  rvUpdate();
}
function rvStop() { try { rvPause(); } catch { /* nothing built yet */ } }
function rvTick(now) {
  const R = S.rv; if (!R.driver) return;
  if (!R.el.isConnected) { rvPause(); return; } // the reviewer left the session page
  if (R.driver === 'video') {
    const m = R.master; rvSeek(m.rec.started_at + m.v.currentTime * 1000, m.v);
    for (const cam of RV_CAMS) {
      const v = R.videos[cam]; if (!v || v === m.v) continue;
      const rec = rvRecording(cam, R.t);
      if (!rec) { if (!v.paused) v.pause(); continue; }
      const want = (R.t - rec.started_at) / 1000;
      if (Math.abs(v.currentTime - want) > 0.3) v.currentTime = want; // keep the two cameras within a few frames
      if (v.paused) v.play().catch(() => {});
    }
    if (m.v.ended) { rvPause(); return; }
  } else if (R.driver === 'audio') {
    rvSeek(R.audioSpan.from + R.audio.currentTime * 1000, R.audio);
    rvAnswerProgress();
  } else {
    rvSeek(R.t + (now - R.tickAt)); R.tickAt = now;
  }
  R.raf = requestAnimationFrame(rvTick);
}

// Timeline: clicking anywhere seeks; a line shows the review time.
function rvTimelineClick(e, lo, hi) {
  const lane = e.currentTarget.querySelector('.lane'); if (!lane) return;
  const r = lane.getBoundingClientRect();
  if (e.clientX < r.left || e.clientX > r.right) return;
  rvPause();
  rvSeek(lo + ((e.clientX - r.left) / r.width) * (hi - lo));
}
function rvPlayhead(lo, hi) {
  S.rv.tl = { lo, hi };
  const x = ((S.rv.t - lo) / (hi - lo)) * 100;
  return h('div', { class: 'rv-headwrap' }, h('div', { class: 'rv-head', id: 'rv-head', style: `left:${Math.max(0, Math.min(100, x))}%` }));
}

// Answers: each plays its audio (keys 1–9, or two digits quickly for 10–25), with a small
// waveform on which the spotted closing phrase is marked.
function rvAnswerCell(a) {
  const c = h('canvas', { width: 140, height: 26, class: 'rv-wave', id: 'rv-wave-' + a.question, title: t('rv.waveHelp') });
  const b = h('button', { type: 'button', class: 'btn small rv-playans', id: 'rv-play-' + a.question, onclick: () => rvPlayAnswer(a.question) },
    '▶ ', a.question <= 9 ? h('kbd', {}, String(a.question)) : String(a.question));
  if (S.rv.playingQ === a.question && S.rv.driver === 'audio') b.classList.add('primary');
  setTimeout(() => rvWave(a, c), 0);
  return h('td', { class: 'rv-anscell' }, b, ' ', c);
}
function rvAnswerSpan(a) { return { from: a.start_ms, to: a.end_ms && a.end_ms > a.start_ms ? a.end_ms + 500 : a.start_ms + 60000 }; }
async function rvWave(a, canvas) {
  const sp = rvAnswerSpan(a); const key = `${sp.from}-${sp.to}`;
  let pk = S.rv.peaks[key];
  if (!pk) {
    try { pk = (await api('GET', rvURL(`/audio/peaks?from=${sp.from}&to=${Math.min(sp.to, sp.from + 900000)}&n=140`))).peaks; } catch (e) { pk = e.status === 410 ? 'purged' : 'none'; }
    S.rv.peaks[key] = pk;
  }
  rvDrawWave(canvas, a, pk, -1);
}
function rvDrawWave(canvas, a, pk, progress) {
  const g = canvas.getContext('2d'); const W = canvas.width; const H = canvas.height; const sp = rvAnswerSpan(a);
  g.clearRect(0, 0, W, H);
  const xs = (ms) => ((ms - sp.from) / (sp.to - sp.from)) * W;
  // The spotted phrases inside the answer (the closing one ends it).
  g.fillStyle = 'rgba(63,127,90,.28)';
  for (const p of ((S.answers && S.answers.phrases) || [])) {
    if (p.end_ms < sp.from || p.start_ms > sp.to) continue;
    g.fillRect(xs(p.start_ms), 0, Math.max(2, xs(p.end_ms) - xs(p.start_ms)), H);
  }
  if (!Array.isArray(pk)) {
    g.fillStyle = '#8a96a3'; g.font = '10px sans-serif';
    g.fillText(pk === 'purged' ? t('rv.purgedShort') : pk === 'none' ? t('rv.noAudio') : '…', 4, H / 2 + 3);
    canvas.dataset.state = pk || 'loading';
    return;
  }
  g.fillStyle = '#3d5a80';
  const n = pk.length;
  for (let i = 0; i < n; i++) { const v = Math.max(1, pk[i] * (H - 2)); g.fillRect((i / n) * W, (H - v) / 2, Math.max(1, W / n - 0.5), v); }
  if (progress >= 0) { g.fillStyle = '#d33'; g.fillRect(xs(progress), 0, 2, H); }
  canvas.dataset.state = 'drawn';
}
function rvAnswerProgress() {
  const R = S.rv; const A = (S.answers && S.answers.answers) || []; const a = A.find((x) => x.question === R.playingQ);
  if (!a) return;
  const c = document.getElementById('rv-wave-' + a.question); const pk = S.rv.peaks[`${rvAnswerSpan(a).from}-${rvAnswerSpan(a).to}`];
  if (c && Array.isArray(pk)) rvDrawWave(c, a, pk, R.t);
}
function rvPlayAnswer(n) {
  const A = (S.answers && S.answers.answers) || []; const a = A.find((x) => x.question === n);
  if (!a || !S.rv.el) { toast(t('rv.noAnswer', { n }), true); return; }
  rvPause();
  const sp = rvAnswerSpan(a);
  rvSetAudio(sp.from, sp.to, t('rv.answer', { n }));
  S.rv.playingQ = n;
  // Sound first: the filmstrip's window loads while the audio buffers.
  S.rv.audio.play().catch((e) => { S.rv.msg.textContent = e.message; });
  rvSeek(sp.from);
  S.rv.driver = 'audio'; S.rv.tickAt = performance.now(); S.rv.playBtn.classList.add('primary');
  cancelAnimationFrame(S.rv.raf); S.rv.raf = requestAnimationFrame(rvTick);
  document.querySelectorAll('.rv-playans.primary').forEach((b) => b.classList.remove('primary'));
  const b = document.getElementById('rv-play-' + n); if (b) b.classList.add('primary');
}
// rvDigit: 1–9 play that answer; with 10 or more questions a second digit within 0.6 s makes
// a two-digit number.
function rvDigit(k) {
  const R = S.rv; const nq = ((S.answers && S.answers.answers) || []).length;
  clearTimeout(R.digitTimer);
  R.digits += k;
  const n = Number(R.digits);
  if (R.digits.length >= 2 || n * 10 > nq) { R.digits = ''; if (n > 0) rvPlayAnswer(n); return; }
  R.digitTimer = setTimeout(() => { R.digits = ''; if (n > 0) rvPlayAnswer(n); }, 600);
}
const RV_HELP_KEYS = { arrows: '← →', o: 'o', p: 'p', digits: '1–9' };

// ---- keyboard --------------------------------------------------------------------------
function showHelp() {
  const box = $('#help');
  if (!box.hidden) { box.hidden = true; return; }
  const keys = ['j', 'k', 'enter', 'c', 'd', 'x', 'C', 'D', 'u', 'n', 'e', 'r', 'q', 'l', ...Object.keys(RV_HELP_KEYS), '?'];
  box.replaceChildren(h('div', { class: 'box' }, h('h2', {}, t('help.title')),
    h('table', {}, keys.map((k) => h('tr', {}, h('td', {}, h('kbd', {}, RV_HELP_KEYS[k] || (k === 'enter' ? 'Enter' : k))), h('td', {}, t('help.' + k))))),
    h('p', { class: 'muted' }, t('help.close'))));
  box.hidden = false;
}
function moveFlag(d) {
  if (!S.flags.length) return;
  S.fsel = Math.max(0, Math.min(S.flags.length - 1, S.fsel + d)); renderSession();
}
document.addEventListener('keydown', (e) => {
  if (!S.me || e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = (e.target.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || tag === 'select') {
    if (e.key === 'Escape' || (e.key === 'Enter' && e.target.id === 'note')) { e.target.blur(); e.preventDefault(); }
    return;
  }
  const k = e.key;
  if (k === 'Escape') { $('#help').hidden = true; return; }
  if (k === '?') { showHelp(); e.preventDefault(); return; }
  if (k === 'l') { setLang(S.lang === 'zh' ? 'en' : 'zh'); route(); renderTop(); return; }
  if (S.view === 'queue') {
    if (k === 'j' || k === 'ArrowDown') { S.qsel = Math.min(S.queue.length - 1, S.qsel + 1); renderQueueRows(); }
    else if (k === 'k' || k === 'ArrowUp') { S.qsel = Math.max(0, S.qsel - 1); renderQueueRows(); }
    else if (k === 'Enter' || k === 'o') { const s = S.queue[S.qsel]; if (s) location.hash = '#/session/' + encodeURIComponent(s.id); }
    else if (k === 'n') { const s = S.queue.find((x) => x.open_flags > 0); if (s) location.hash = '#/session/' + encodeURIComponent(s.id); else toast(t('toast.noNext')); }
    else if (k === 'u') undo();
    else return;
    e.preventDefault();
  } else if (S.view === 'session') {
    if (k === 'j' || k === 'ArrowDown') moveFlag(1);
    else if (k === 'k' || k === 'ArrowUp') moveFlag(-1);
    else if (k === 'c') verdict('confirmed');
    else if (k === 'd') verdict('dismissed');
    else if (k === 'C') bulk('confirmed');
    else if (k === 'D') bulk('dismissed');
    else if (k === 'x') { const f = S.flags[S.fsel]; if (f) togglePick(f.id); }
    else if (k === 'u') undo();
    else if (k === 'n') nextSession();
    else if (k === 'z') { S.zoom = !S.zoom; renderSession(); }
    else if (k === 'e') { const n = $('#note'); if (n) n.focus(); }
    else if (k === 'r') { const a = $('#report'); if (a) window.open(a.href, '_blank', 'noopener'); }
    else if (k === 'q') location.hash = '#/queue' + (S.qquery ? '?' + S.qquery : '');
    else if (k === 'ArrowLeft') rvStep(-1);
    else if (k === 'ArrowRight') rvStep(1);
    else if (k === 'o') rvToggleOverlays();
    else if (k === 'p') rvTogglePlay();
    else if (/^[0-9]$/.test(k)) rvDigit(k);
    else return;
    e.preventDefault();
  }
});

// ---- start -----------------------------------------------------------------------------
async function boot() {
  S.L = await (await fetch('/ui/i18n.json', { credentials: 'same-origin' })).json();
  const pref = localStorage.getItem('lang');
  setLang(pref || ((navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en'));
  $('#langBtn').addEventListener('click', () => { setLang(S.lang === 'zh' ? 'en' : 'zh'); renderTop(); route(); });
  $('#helpBtn').addEventListener('click', showHelp);
  $('#signout').addEventListener('click', async () => { try { await api('POST', '/v1/auth/logout'); } catch { /* signed out anyway */ } S.me = null; location.hash = '#/login'; showLogin(); });
  window.addEventListener('hashchange', route);
  try { S.me = await api('GET', '/v1/me'); } catch { S.me = null; }
  if (S.me) { startLive(); route(); } else showLogin();
}
boot();
