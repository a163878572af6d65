/*
 * console.js — the Kizuna web console: a view of the /v1 API for people at
 * a desk, served by every node at /ui/ (docs/ARCHITECTURE.md, "Web console").
 *
 * The page holds no authority: the browser's client certificate (the same
 * TLS certificates as the CLI) authenticates every call, and the API
 * decides what its role may see. A refused call shows the API's error
 * (HTTP status, code, request_id) as it came. Nothing is sent anywhere but
 * this node (CSP connect-src 'self'); nothing personal is kept in storage
 * (only the chosen language and the last search purpose, per tab).
 *
 * X-Purpose: browsers send header values as bytes of Latin-1 only, so the
 * purposes offered are ASCII phrases; a purpose typed by hand that is not
 * ASCII is sent percent-encoded (RFC 3986) and stored so in the audit log.
 */
'use strict';

(function () {
  const I18N = window.KZ_I18N;
  const CLUSTER_EVERY_MS = 2000;
  const CALL_TIMEOUT_MS = 8000;

  let lang = localStorage.getItem('kz.lang') === 'en' ? 'en' : 'ja';
  let view = '';
  let clusterTimer = null;
  let clusterBusy = false;
  let lastCluster = null;
  let lastSearch = null;
  let lastVictim = null;
  let lastSummary = null;
  let lastAudit = null;
  let auditAfter = null;

  const $ = (id) => document.getElementById(id);

  function t(key, vars) {
    let s = (I18N[lang] && I18N[lang][key]) || I18N.ja[key] || key;
    if (vars) {
      for (const k of Object.keys(vars)) s = s.split('{' + k + '}').join(String(vars[k]));
    }
    return s;
  }

  /* Elements are built with textContent only: record fields never become
   * markup. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else e.setAttribute(k, v);
      }
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function headerPurpose(p) {
    return /^[\x20-\x7e]*$/.test(p) ? p : encodeURIComponent(p);
  }

  /* ---- calls --------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, code, message, requestId) {
      super(message || code);
      this.status = status;
      this.code = code;
      this.requestId = requestId;
    }
  }

  /* GET path (same origin); resolves to {body, headers} (body parsed as JSON
   * unless as === 'blob'), rejects with an ApiError. */
  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: opts.as === 'blob' ? 'image/jpeg' : 'application/json' };
    if (opts.purpose) headers['X-Purpose'] = headerPurpose(opts.purpose);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), CALL_TIMEOUT_MS);
    let resp;
    try {
      resp = await fetch(path, { headers, credentials: 'same-origin', cache: 'no-store', signal: ctl.signal });
    } catch (e) {
      throw new ApiError(0, 'network', t('error_network'), '');
    } finally {
      clearTimeout(timer);
    }
    const rid = resp.headers.get('X-Request-Id') || '';
    if (!resp.ok) {
      let code = 'http_' + resp.status, message = resp.statusText, requestId = rid;
      try {
        const b = await resp.json();
        if (b && b.error) {
          code = b.error.code || code;
          message = b.error.message || message;
          requestId = b.error.request_id || rid;
        }
      } catch (e) { /* not JSON: keep the status */ }
      throw new ApiError(resp.status, code, message, requestId);
    }
    const body = opts.as === 'blob' ? await resp.blob() : await resp.json();
    return { body, headers: resp.headers };
  }

  function showError(err) {
    const box = $('error');
    clear(box);
    if (!err) {
      box.hidden = true;
      box.removeAttribute('data-code');
      return;
    }
    box.setAttribute('data-code', err.code || 'error');
    box.appendChild(el('strong', { text: t('error') }));
    if (err.status) box.appendChild(el('span', { class: 'status', text: ' ' + t('error_status') + ' ' + err.status }));
    box.appendChild(document.createTextNode(' · ' + t('error_code') + ' '));
    box.appendChild(el('code', { class: 'code', text: err.code || '-' }));
    if (err.requestId) {
      box.appendChild(document.createTextNode(' · ' + t('error_request') + ' '));
      box.appendChild(el('code', { class: 'request-id', text: err.requestId }));
    }
    if (err.message) box.appendChild(el('div', { class: 'message', text: err.message }));
    box.hidden = false;
  }

  function served(headers) {
    let s = t('served', {
      node: headers.get('X-Kizuna-Node') || '?',
      region: headers.get('X-Kizuna-Region') || '?',
      index: headers.get('X-Kizuna-Index') || '?'
    });
    const stale = headers.get('X-Kizuna-Stale-Ms');
    if (stale !== null) s += t('stale', { ms: stale });
    return s;
  }

  /* ---- cluster map --------------------------------------------------- */

  function regionState(nodes) {
    const up = nodes.filter((n) => n.reachable).length;
    return up === 0 ? 'down' : up < nodes.length ? 'degraded' : 'ok';
  }

  function renderCluster() {
    const c = lastCluster;
    if (!c) return;
    $('cluster-leader').textContent = c.body.leader === null ? '-' : String(c.body.leader);
    $('cluster-term').textContent = String(c.body.term);
    $('cluster-served').textContent = String(c.body.served_by);
    $('cluster-updated').textContent = c.at.toLocaleTimeString(lang === 'ja' ? 'ja-JP' : 'en-GB');
    const byRegion = new Map();
    for (const n of c.body.nodes || []) {
      if (!n) continue;
      if (!byRegion.has(n.region)) byRegion.set(n.region, []);
      byRegion.get(n.region).push(n);
    }
    const box = $('regions');
    clear(box);
    for (const [region, nodes] of byRegion) {
      const st = regionState(nodes);
      const rows = nodes.map((n) => {
        const leader = c.body.leader !== null && n.id === c.body.leader;
        return el('tr', { class: (n.reachable ? 'up' : 'unreachable') + (leader ? ' leader' : ''), 'data-node': String(n.id) },
          el('td', null, String(n.id), leader ? el('span', { class: 'badge leader', text: '★ ' + t('leader_mark') }) : null,
            el('div', { class: 'addr', text: String(n.address || '').replace(/^https:\/\//, '') })),
          el('td', null, t('state_' + n.state), el('div', { class: 'addr', text: n.role })),
          el('td', { class: 'reach', text: n.reachable ? t('yes') : t('no') }),
          el('td', { class: 'num', text: n.applied_index === null ? '-' : String(n.applied_index) }),
          el('td', { class: 'num', text: n.lag === null || n.lag === undefined ? '-' : String(n.lag) }));
      });
      box.appendChild(el('section', { class: 'region ' + st, 'data-region': region, 'data-state': st },
        el('h3', null, region + ' ', el('span', { class: 'badge state', text: t('region_' + st) })),
        el('table', { class: 'nodes' },
          el('thead', null, el('tr', null,
            el('th', { text: t('node') }), el('th', { text: t('node_state') }), el('th', { text: t('node_reachable') }),
            el('th', { text: t('node_applied') }), el('th', { text: t('node_lag') }))),
          el('tbody', null, ...rows))));
    }
  }

  async function pollCluster() {
    clusterTimer = null;
    if (view !== 'cluster' || clusterBusy) return;
    clusterBusy = true;
    try {
      const r = await api('/v1/cluster');
      lastCluster = { body: r.body, at: new Date() };
      if (view === 'cluster') showError(null);
      renderCluster();
    } catch (e) {
      if (view === 'cluster') showError(e);
    } finally {
      clusterBusy = false;
      if (view === 'cluster' && clusterTimer === null) clusterTimer = setTimeout(pollCluster, CLUSTER_EVERY_MS);
    }
  }

  /* ---- victims ------------------------------------------------------- */

  function code(prefix, v) {
    return v === undefined || v === null ? '' : t(prefix + v);
  }

  function renderSearch() {
    const s = lastSearch;
    const table = $('search-results');
    const tbody = table.querySelector('tbody');
    clear(tbody);
    if (!s) return;
    const items = s.body.items || [];
    let meta = items.length ? t('search_count', { n: items.length }) : t('search_none');
    if (s.body.next_cursor || s.body.truncated) meta += t('search_more');
    $('search-meta').textContent = meta + ' · ' + served(s.headers);
    for (const v of items) {
      tbody.appendChild(el('tr', { 'data-id': v.id },
        el('td', null, el('a', { href: '#victim/' + encodeURIComponent(v.id), class: 'victim-link', text: v.name })),
        el('td', { text: v.name_kana || '' }),
        el('td', { text: v.dob || '' }),
        el('td', { text: code('status_', v.status) }),
        el('td', { text: v.shelter_id || '' })));
    }
    table.hidden = items.length === 0;
  }

  async function search(ev) {
    ev.preventDefault();
    const q = $('search-q').value.trim();
    const purpose = $('search-purpose').value;
    if (!purpose) {
      showError({ status: 0, code: 'purpose_required', message: t('purpose_missing') });
      return;
    }
    sessionStorage.setItem('kz.purpose', purpose);
    const qs = new URLSearchParams({ q, limit: '50', consistency: $('search-consistency').value });
    try {
      const r = await api('/v1/victims?' + qs.toString(), { purpose });
      lastSearch = r;
      showError(null);
      renderSearch();
    } catch (e) {
      lastSearch = null;
      renderSearch();
      $('search-meta').textContent = '';
      showError(e);
    }
  }

  function renderVictim() {
    const v = lastVictim && lastVictim.body;
    const dl = $('victim-fields');
    clear(dl);
    clear($('victim-notes'));
    if (!v) return;
    $('victim-name').textContent = v.name;
    $('victim-kana').textContent = v.name_kana || '';
    const fields = [
      ['id', v.id], ['version', v.version], ['dob', v.dob], ['sex', code('sex_', v.sex)],
      ['address', v.address], ['household_id', v.household_id], ['damage', code('damage_', v.damage)],
      ['needs', (v.needs || []).map((n) => t('need_' + n)).join('、')],
      ['shelter_id', v.shelter_id], ['status', code('status_', v.status)], ['contact', v.contact],
      ['created_at', v.created_at], ['updated_at', v.updated_at]
    ];
    for (const [k, val] of fields) {
      if (val === undefined || val === null || val === '') continue;
      dl.appendChild(el('dt', { text: t('f_' + k) }));
      const dd = el('dd', { 'data-field': k });
      if (k === 'shelter_id') dd.appendChild(el('a', { href: '#shelters/' + encodeURIComponent(val), text: String(val) }));
      else dd.textContent = String(val);
      dl.appendChild(dd);
    }
    const notes = v.notes || [];
    if (!notes.length) $('victim-notes').appendChild(el('li', { text: t('no_notes') }));
    for (const n of notes) {
      $('victim-notes').appendChild(el('li', null,
        el('strong', { text: code('status_', n.status) + ' ' }),
        (n.text || '') + (n.last_known_location ? ' — ' + n.last_known_location : '') +
        (n.at ? ' (' + n.at + ')' : '')));
    }
  }

  async function openVictim(id) {
    lastVictim = null;
    renderVictim();
    $('victim-name').textContent = '';
    $('victim-kana').textContent = '';
    resetPhoto();
    const purpose = sessionStorage.getItem('kz.purpose');
    if (!purpose) {
      showError({ status: 0, code: 'purpose_required', message: t('purpose_missing') });
      return;
    }
    try {
      lastVictim = await api('/v1/victims/' + encodeURIComponent(id), { purpose });
      showError(null);
      renderVictim();
    } catch (e) {
      showError(e);
    }
  }

  function resetPhoto() {
    const img = $('photo-img');
    if (img.src && img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
    img.removeAttribute('src');
    img.hidden = true;
    $('photo-purpose').value = '';
    $('photo-other').value = '';
    $('photo-other-label').hidden = true;
  }

  /* The photo is fetched only now, with the purpose just chosen: the
   * API audits the view (who, whose, why) before it answers. */
  async function showPhoto(ev) {
    ev.preventDefault();
    const v = lastVictim && lastVictim.body;
    if (!v) return;
    let purpose = $('photo-purpose').value;
    if (purpose === 'other') purpose = $('photo-other').value.trim();
    if (!purpose) {
      showError({ status: 0, code: 'purpose_required', message: t('purpose_missing') });
      return;
    }
    try {
      const r = await api('/v1/photos/' + encodeURIComponent(v.id), { purpose, as: 'blob' });
      showError(null);
      const img = $('photo-img');
      img.src = URL.createObjectURL(r.body);
      img.alt = t('photo_shown');
      img.hidden = false;
    } catch (e) {
      showError(e);
    }
  }

  /* ---- shelters ------------------------------------------------------ */

  function countTable(title, obj, prefix) {
    const rows = Object.keys(obj).map((k) =>
      el('tr', null, el('th', { text: t(prefix + k) }), el('td', { class: 'num', text: String(obj[k]) })));
    return el('div', { class: 'counts' }, el('h4', { text: title }), el('table', { class: 'list' }, el('tbody', null, ...rows)));
  }

  function renderSummary() {
    const box = $('shelter-summary');
    clear(box);
    const s = lastSummary && lastSummary.body;
    if (!s) return;
    box.appendChild(el('h3', { text: (s.name ? s.name + ' ' : '') + '(' + s.shelter_id + ')' }));
    const top = el('p', { class: 'totals' },
      el('span', { 'data-count': 'total', text: t('sum_total') + ': ' + s.total }),
      ' · ' + t('sum_infants') + ': ' + s.infants + ' · ' + t('sum_elderly') + ': ' + s.elderly +
      (s.capacity !== undefined ? ' · ' + t('sum_capacity') + ': ' + s.capacity : ''));
    box.appendChild(top);
    box.appendChild(el('div', { class: 'count-grid' },
      countTable(t('sum_by_sex'), s.by_sex || {}, 'sex_'),
      countTable(t('sum_by_status'), s.by_status || {}, 'status_'),
      countTable(t('sum_needs'), s.needs || {}, 'need_')));
    box.appendChild(el('p', { class: 'meta', text: served(lastSummary.headers) }));
  }

  async function openShelter(id) {
    $('shelter-id').value = id;
    try {
      lastSummary = await api('/v1/shelters/' + encodeURIComponent(id) + '/summary');
      showError(null);
    } catch (e) {
      lastSummary = null;
      showError(e);
    }
    renderSummary();
  }

  /* ---- audit --------------------------------------------------------- */

  function renderAudit() {
    const table = $('audit-results');
    const tbody = table.querySelector('tbody');
    clear(tbody);
    const a = lastAudit && lastAudit.body;
    if (!a) {
      table.hidden = true;
      return;
    }
    for (const r of a.items || []) {
      tbody.appendChild(el('tr', null,
        el('td', { class: 'num', text: String(r.seq) }),
        el('td', { text: r.at || '' }),
        el('td', { text: (r.org || '-') + ' / ' + (r.role || '-') }),
        el('td', { text: (r.action || '') + (r.outcome ? ' (' + r.outcome + ')' : '') }),
        el('td', { class: 'addr', text: r.subject || '' }),
        el('td', { text: r.purpose || '' }),
        el('td', { text: (r.node || '') + (r.region ? ' ' + r.region : '') })));
    }
    $('audit-meta').textContent = t('audit_count', { n: (a.items || []).length }) + ' · ' + served(lastAudit.headers);
    table.hidden = false;
  }

  async function loadAudit(ev) {
    if (ev) ev.preventDefault();
    const qs = new URLSearchParams({ limit: '200' });
    const subject = $('audit-subject').value.trim();
    if (subject) qs.set('subject', subject);
    if (auditAfter !== null) qs.set('after', String(auditAfter));
    try {
      lastAudit = await api('/v1/audit?' + qs.toString());
      showError(null);
    } catch (e) {
      lastAudit = null;
      showError(e);
    }
    renderAudit();
  }

  async function verifyAudit() {
    try {
      const r = await api('/v1/audit/verify');
      showError(null);
      $('audit-meta').textContent = r.body.ok
        ? t('audit_verified_ok', { entries: r.body.entries, head: r.body.head })
        : t('audit_verified_bad', { entries: r.body.entries });
    } catch (e) {
      showError(e);
    }
  }

  /* ---- navigation and language --------------------------------------- */

  function show(name) {
    for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + name;
    for (const a of document.querySelectorAll('.tabs a')) {
      const on = a.id === 'tab-' + (name === 'victim' ? 'search' : name);
      a.classList.toggle('active', on);
      if (on) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function route() {
    const h = decodeURIComponent(location.hash.replace(/^#/, ''));
    const [name, arg] = [h.split('/')[0] || 'cluster', h.split('/').slice(1).join('/')];
    const known = ['cluster', 'search', 'victim', 'shelters', 'audit'];
    const next = known.includes(name) ? name : 'cluster';
    if (next !== view) showError(null);
    view = next;
    show(view);
    document.body.setAttribute('data-view', view);
    if (view === 'cluster') {
      if (clusterTimer !== null) clearTimeout(clusterTimer);
      clusterTimer = null;
      pollCluster();
    }
    if (view === 'victim' && arg) openVictim(arg);
    if (view === 'shelters' && arg) openShelter(arg);
  }

  function applyLang() {
    document.documentElement.lang = lang;
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.getAttribute('data-i18n'));
    $('lang').textContent = t('lang_other');
    document.title = 'Kizuna — ' + t('title');
    renderCluster();
    if (lastSearch) renderSearch();
    renderVictim();
    renderSummary();
    if (lastAudit) renderAudit();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('lang').addEventListener('click', () => {
      lang = lang === 'ja' ? 'en' : 'ja';
      localStorage.setItem('kz.lang', lang);
      applyLang();
    });
    $('search-form').addEventListener('submit', search);
    $('photo-form').addEventListener('submit', showPhoto);
    $('photo-purpose').addEventListener('change', () => {
      $('photo-other-label').hidden = $('photo-purpose').value !== 'other';
    });
    $('shelter-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('shelter-id').value.trim();
      if (location.hash === '#shelters/' + encodeURIComponent(id)) openShelter(id);
      else location.hash = '#shelters/' + encodeURIComponent(id);
    });
    $('audit-form').addEventListener('submit', (ev) => {
      auditAfter = null;
      loadAudit(ev);
    });
    $('audit-verify').addEventListener('click', verifyAudit);
    window.addEventListener('hashchange', route);
    applyLang();
    route();
  });
})();
