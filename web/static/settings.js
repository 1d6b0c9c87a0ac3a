// The settings page inside the Bitrix24 iframe: saving the form, the
// department picker and the status panel's buttons. Plain JS, no library.
// Data from the server (department names, messages, report rows) reaches the
// page through textContent only, never innerHTML.
(function () {
  'use strict';

  var app = document.getElementById('app');
  if (!app) return;
  var session = app.getAttribute('data-session') || '';
  var admin = app.getAttribute('data-admin') === 'true';
  var lang = app.getAttribute('data-lang') || 'en';
  var texts = {};
  Array.prototype.forEach.call(document.querySelectorAll('#texts [data-key]'), function (el) {
    texts[el.getAttribute('data-key')] = el.textContent;
  });

  // ---- BX24.js: optional. The page works without it; with it, the frame
  // is sized to the content after every change of height.
  var bxReady = false;
  var fitPending = false;
  function fit() {
    if (!bxReady || fitPending) return;
    fitPending = true;
    window.requestAnimationFrame(function () {
      fitPending = false;
      try { window.BX24.fitWindow(); } catch (e) { /* not inside Bitrix24 */ }
    });
  }
  (function loadBX24() {
    var src = app.getAttribute('data-bx24');
    if (!src || window.parent === window) return; // not framed: nothing to resize
    var s = document.createElement('script');
    s.async = true;
    s.src = src;
    s.onload = function () {
      try {
        window.BX24.init(function () { bxReady = true; fit(); });
      } catch (e) { /* an unexpected BX24 build: keep going without it */ }
    };
    document.head.appendChild(s);
  })();

  // ---- Requests carry the session token in a header, never in the URL.
  function request(method, url, body) {
    var opts = { method: method, headers: { 'X-Session': session }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.body = body;
      opts.headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    return fetch(url, opts).then(function (res) {
      return res.text().then(function (t) {
        var data = null;
        try { data = JSON.parse(t); } catch (e) { /* plain-text error */ }
        return { status: res.status, data: data, text: t };
      });
    });
  }

  function failureText(r) {
    if (r.status === 401) return texts.session_ended;
    if (r.status === 403) return texts.readonly;
    if (r.data && r.data.message) return r.data.message;
    return texts.network_error;
  }

  function showNotice(el, ok, text) {
    el.textContent = text;
    el.classList.toggle('ok', !!ok);
    el.classList.toggle('bad', !ok);
    el.hidden = !text;
    fit();
  }

  // ---- Department picker.
  var tree = setupTree();

  // ---- The form.
  var form = document.getElementById('settings-form');
  var result = document.getElementById('form-result');
  var saving = document.getElementById('saving');
  var saveBtn = document.getElementById('save-btn');

  function clearErrors() {
    Array.prototype.forEach.call(form.querySelectorAll('[data-error-for]'), function (el) { el.textContent = ''; });
    Array.prototype.forEach.call(form.querySelectorAll('.has-error'), function (el) { el.classList.remove('has-error'); });
  }

  function showErrors(errors) {
    var first = null;
    Object.keys(errors).forEach(function (name) {
      var box = form.querySelector('[data-error-for="' + name + '"]');
      if (!box) return;
      box.textContent = errors[name];
      var field = form.querySelector('[data-field="' + name + '"]');
      if (field) field.classList.add('has-error');
      if (!first) first = document.getElementById(name) || field;
    });
    if (first && first.focus) first.focus();
  }

  if (form && admin) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors();
      if (tree) tree.store();
      var params = new URLSearchParams(new FormData(form));
      params.delete('session');
      saveBtn.disabled = true;
      saving.hidden = false;
      result.hidden = true;
      request('POST', '/app/settings', params.toString()).then(function (r) {
        if (r.status === 200 && r.data && r.data.ok) {
          showNotice(result, true, r.data.message);
          var pw = document.getElementById('learn_password');
          pw.value = '';
          document.getElementById('password-hint').hidden = false;
          refreshStatus(); // Preview, Sync now and the next runs follow the saved settings
          return;
        }
        var errs = (r.data && r.data.errors) || {};
        var formMsg = errs.form;
        delete errs.form;
        showErrors(errs);
        showNotice(result, false, formMsg ? failureText(r) + ' ' + formMsg : failureText(r));
      }, function () {
        showNotice(result, false, texts.network_error);
      }).then(function () {
        saveBtn.disabled = false;
        saving.hidden = true;
        fit();
      });
    });
  }

  // ---- Status panel.
  // localTime writes an instant in the admin's own time zone.
  function localTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    var s;
    try {
      s = d.toLocaleString(lang === 'ru' ? 'ru-RU' : 'en-GB', {
        weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZoneName: 'short'
      });
    } catch (e) { s = d.toString(); }
    return '(' + texts.local_time + ': ' + s + ')';
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-local-for]'), function (el) {
    var s = localTime(el.getAttribute('data-local-for'));
    if (s) el.textContent = s;
  });

  var actionResult = document.getElementById('action-result');
  Array.prototype.forEach.call(document.querySelectorAll('[data-action]'), function (btn) {
    btn.addEventListener('click', function () {
      btn.disabled = true;
      request('POST', '/app/' + btn.getAttribute('data-action'), '').then(function (r) {
        var ok = r.status === 202 && r.data && r.data.ok;
        showNotice(actionResult, ok, ok ? r.data.message : failureText(r));
        if (ok) { actionPending = true; refreshStatus(); }
      }, function () {
        showNotice(actionResult, false, texts.network_error);
      }).then(function () { btn.disabled = false; });
    });
  });

  var report = document.getElementById('report');
  var reportBody = document.getElementById('report-body');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function showReport(rep) {
    reportBody.textContent = '';
    var head = el('p', 'muted', rep.started_at + ' · ' + rep.trigger + ' · ' + rep.status);
    reportBody.appendChild(head);
    if (rep.error) reportBody.appendChild(el('p', 'error', rep.error));
    if (!rep.items || rep.items.length === 0) {
      reportBody.appendChild(el('p', 'muted', texts.report_empty));
    } else {
      var wrap = el('div', 'table-wrap');
      var table = el('table', 'list s-report-table');
      var thead = el('thead');
      var hr = el('tr');
      ['col_kind', 'col_name', 'col_action', 'col_status', 'col_reason'].forEach(function (k) { hr.appendChild(el('th', null, texts[k])); });
      thead.appendChild(hr);
      table.appendChild(thead);
      var tb = el('tbody');
      rep.items.forEach(function (it) {
        var tr = el('tr');
        tr.appendChild(el('td', null, it.kind + ' #' + it.b24_id));
        tr.appendChild(el('td', null, it.name));
        tr.appendChild(el('td', null, it.action));
        tr.appendChild(el('td', null, it.status));
        tr.appendChild(el('td', null, [it.reason, it.changes].filter(Boolean).join(' — ')));
        tb.appendChild(tr);
      });
      table.appendChild(tb);
      wrap.appendChild(table);
      reportBody.appendChild(wrap);
    }
    report.hidden = false;
    fit();
    report.scrollIntoView({ block: 'nearest' });
  }
  function openReport(id) {
    request('GET', '/app/runs/' + encodeURIComponent(id)).then(function (r) {
      if (r.status === 200 && r.data) showReport(r.data);
      else showNotice(actionResult, false, failureText(r));
    }, function () { showNotice(actionResult, false, texts.network_error); });
  }
  function downloadCSV(id) {
    fetch('/app/runs/' + encodeURIComponent(id) + '/csv', { headers: { 'X-Session': session }, credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error(String(res.status));
        return res.blob();
      }).then(function (blob) {
        var a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = 'run-' + id + '.csv';
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      }).catch(function () { showNotice(actionResult, false, texts.network_error); });
  }
  // Delegated: the run list is redrawn while runs progress.
  document.addEventListener('click', function (ev) {
    var t = ev.target;
    if (!t || !t.closest) return;
    var b = t.closest('[data-report]');
    if (b) { openReport(b.getAttribute('data-report')); return; }
    b = t.closest('[data-csv]');
    if (b) downloadCSV(b.getAttribute('data-csv'));
  });
  var closeBtn = document.getElementById('report-close');
  if (closeBtn) closeBtn.addEventListener('click', function () { report.hidden = true; fit(); });

  // ---- Live status: GET /app/status once on open, then every 2 s while a
  // sync or preview is queued or running, so progress and the result show
  // without a reload. Everything from the server goes in as text.
  var pollTimer = 0;
  var polling = false;
  var actionPending = false; // "started" is shown until the job is gone
  function refreshStatus() {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = 0; }
    if (polling) return;
    polling = true;
    request('GET', '/app/status').then(function (r) {
      polling = false;
      if (r.status !== 200 || !r.data) {
        if (r.status === 401) { showJob(null); return; } // the session ended: stop asking
        pollTimer = setTimeout(refreshStatus, 10000);
        return;
      }
      renderStatus(r.data);
      if (actionPending && !r.data.busy && !r.data.job) {
        actionPending = false;
        actionResult.hidden = true; // the result is in the panel now
      }
      var next = r.data.busy ? 2000 : r.data.job ? 15000 : 0;
      if (next) pollTimer = setTimeout(refreshStatus, next);
    }, function () {
      polling = false;
      pollTimer = setTimeout(refreshStatus, 10000);
    });
  }

  function showJob(st) {
    var box = document.getElementById('job-state');
    if (!box) return;
    var text = '';
    if (st && st.job) {
      text = st.job.text;
      var cur = st.runs && st.runs[0];
      if (cur && cur.running && cur.counts_text && cur.counts_text !== '—') text += ' ' + cur.counts_text;
    } else if (st && st.runs && st.runs[0] && st.runs[0].running) {
      text = st.runs[0].status_text + ' ' + st.runs[0].counts_text;
    }
    box.textContent = text;
    box.hidden = !text;
  }

  function runLine(run) {
    var wrap = el('div', 's-last');
    wrap.id = 'last-run';
    wrap.setAttribute('data-status', run.status);
    var l1 = el('div');
    var tm = el('time', null, run.started);
    tm.setAttribute('datetime', run.started_at);
    l1.appendChild(tm);
    l1.appendChild(document.createTextNode(' · ' + run.trigger_text));
    wrap.appendChild(l1);
    var l2 = el('div');
    l2.appendChild(el('span', 'badge ' + run.status, run.status_text));
    l2.appendChild(document.createTextNode(' '));
    l2.appendChild(el('span', 's-counts', run.counts_text));
    l2.appendChild(document.createTextNode(' · ' + run.duration));
    wrap.appendChild(l2);
    if (run.error) wrap.appendChild(el('div', 'error', run.error));
    return wrap;
  }

  // Report links only for users who may open reports (admins).
  function runsTable(runs, reports) {
    var table = el('table', 'list s-runs');
    var thead = el('thead');
    var hr = el('tr');
    (reports ? ['col_started', 'col_result', 'col_report'] : ['col_started', 'col_result']).forEach(function (k) { hr.appendChild(el('th', null, texts[k])); });
    thead.appendChild(hr);
    table.appendChild(thead);
    var tb = el('tbody');
    runs.forEach(function (run) {
      var tr = el('tr');
      var c1 = el('td');
      var tm = el('time', null, run.started);
      tm.setAttribute('datetime', run.started_at);
      c1.appendChild(tm);
      c1.appendChild(el('div', 'muted', run.trigger_text + ' · ' + run.duration));
      tr.appendChild(c1);
      var c2 = el('td');
      c2.appendChild(el('span', 'badge ' + run.status, run.status_text));
      c2.appendChild(el('div', 'muted', run.counts_text));
      tr.appendChild(c2);
      if (!reports) { tb.appendChild(tr); return; }
      var c3 = el('td', 's-nowrap');
      var ob = el('button', 'linkbtn', texts.open_report);
      ob.type = 'button';
      ob.setAttribute('data-report', String(run.id));
      var cb = el('button', 'linkbtn', texts.csv);
      cb.type = 'button';
      cb.setAttribute('data-csv', String(run.id));
      c3.appendChild(ob);
      c3.appendChild(cb);
      tr.appendChild(c3);
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    return table;
  }

  function previewBody(pv) {
    var body = el('div');
    var head = el('p', 'muted');
    head.appendChild(document.createTextNode(pv.started + ' · '));
    head.appendChild(el('span', 'badge ' + pv.status, pv.status_text));
    body.appendChild(head);
    if (pv.running) {
      body.appendChild(el('p', 'muted', texts.preview_running));
      return body;
    }
    if (pv.error) body.appendChild(el('p', 'error', pv.error));
    if (!pv.items || pv.items.length === 0) {
      if (!pv.error) body.appendChild(el('p', null, texts.preview_none));
      return body;
    }
    body.appendChild(el('p', 's-counts', pv.counts_text));
    var list = el('ul', 's-preview-list');
    pv.items.forEach(function (it) {
      var li = el('li');
      li.appendChild(el('span', 'badge ' + (it.status === 'refused' ? 'failed' : ''), texts['do_' + it.action] || it.action));
      li.appendChild(document.createTextNode(' ' + (texts['kind_' + it.kind] || it.kind) + ' · ' + (it.name || ('#' + it.b24_id))));
      // What a new object gets is its name; for the others, what changes.
      var why = [it.reason, it.action === 'create' ? '' : it.changes].filter(Boolean).join(' — ');
      if (why) li.appendChild(el('div', 'muted', why));
      list.appendChild(li);
    });
    body.appendChild(list);
    if (pv.total > pv.items.length) {
      var more = el('button', 'linkbtn', '+' + (pv.total - pv.items.length) + ' ' + texts.preview_more);
      more.type = 'button';
      more.setAttribute('data-report', String(pv.id));
      body.appendChild(more);
    }
    return body;
  }

  function renderStatus(st) {
    var badge = document.getElementById('activation-state');
    if (badge && st.activation) {
      badge.textContent = st.activation_text;
      badge.className = 'badge ' + st.activation;
      badge.setAttribute('data-state', st.activation);
    }
    var note = document.getElementById('activation-note');
    if (note) {
      note.textContent = st.activation_note || '';
      note.hidden = !st.activation_note;
    }
    var pv = document.querySelector('[data-action="preview"]');
    if (pv) pv.disabled = !admin || !st.configured;
    var sn = document.querySelector('[data-action="sync"]');
    if (sn) sn.disabled = !admin || !st.configured || st.activation !== 'active';
    var next = document.getElementById('next-box');
    if (next) {
      next.textContent = '';
      if (!st.configured) {
        next.appendChild(el('p', 'muted', texts.not_configured));
      } else {
        var ul = el('ul', 's-next');
        ul.id = 'next-runs';
        (st.next_runs || []).forEach(function (n) {
          var li = el('li');
          var tm = el('time', null, n.utc);
          tm.setAttribute('datetime', n.at);
          tm.setAttribute('data-utc', n.at);
          li.appendChild(tm);
          li.appendChild(el('span', 'muted s-local', localTime(n.at)));
          ul.appendChild(li);
        });
        next.appendChild(ul);
        if (st.activation !== 'active') next.appendChild(el('p', 'hint', texts.sync_now_inactive));
      }
    }
    var rc = document.getElementById('reconnect-note');
    if (rc) rc.hidden = !st.reconnect;
    var at = document.getElementById('attention-note');
    if (at) {
      at.textContent = st.attention ? texts.attention + ' ' + st.attention : '';
      at.hidden = !st.attention;
    }
    showJob(st);
    var lastBox = document.getElementById('last-run-box');
    if (lastBox) {
      lastBox.textContent = '';
      if (st.last_run) lastBox.appendChild(runLine(st.last_run));
      else { var none = el('p', 'muted', texts.no_runs); none.id = 'last-run'; lastBox.appendChild(none); }
    }
    [['licence-note', st.licence_note], ['conflict-note', st.conflict_note]].forEach(function (n) {
      var box = document.getElementById(n[0]);
      if (box) { box.textContent = n[1] || ''; box.hidden = !n[1]; }
    });
    var held = document.getElementById('held');
    if (held) {
      held.hidden = !st.held;
      if (st.held) document.getElementById('held-users').textContent = String(st.held.users);
    }
    var pbox = document.getElementById('preview-box');
    if (pbox) {
      var pbody = document.getElementById('preview-body');
      pbody.textContent = '';
      if (st.preview) pbody.appendChild(previewBody(st.preview));
      pbox.hidden = !st.preview;
    }
    var runsBox = document.getElementById('runs-box');
    if (runsBox) {
      runsBox.textContent = '';
      if (st.runs && st.runs.length) runsBox.appendChild(runsTable(st.runs, st.reports));
      else runsBox.appendChild(el('p', 'muted', texts.no_runs));
    }
    fit();
  }
  refreshStatus();

  // The activation form (its own handler) is sent in the background; the
  // answer is the form again, rendered and escaped by the server, which
  // takes the old one's place.
  var activation = document.getElementById('activation');
  if (activation) {
    activation.addEventListener('submit', function (ev) {
      var f = ev.target;
      if (!f || f.id !== 'activation-form') return;
      ev.preventDefault();
      var params = new URLSearchParams(new FormData(f));
      params.delete('session');
      var btn = f.querySelector('button[type=submit]');
      if (btn) btn.disabled = true;
      request('POST', f.getAttribute('action'), params.toString()).then(function (r) {
        var doc = new DOMParser().parseFromString(r.text, 'text/html');
        var box = doc.getElementById('activation-box');
        var old = document.getElementById('activation-box');
        if (box && old) {
          old.replaceWith(document.importNode(box, true));
          refreshStatus(); // the integration's state changes with a request
        } else {
          if (btn) btn.disabled = false;
          showNotice(actionResult, false, failureText(r));
        }
        fit();
      }, function () {
        if (btn) btn.disabled = false;
        showNotice(actionResult, false, texts.network_error);
      });
    });
  }

  fit();
  window.addEventListener('load', fit);

  // setupTree builds the picker over the JSON the server embedded once: ids,
  // parent indexes, names and direct employee counts in depth-first order,
  // so every subtree is one contiguous range [i, end[i]). Only the rows in
  // view are in the DOM, which keeps 5,000 departments instant.
  function setupTree() {
    var dataEl = document.getElementById('tree-data');
    var box = document.getElementById('tree');
    if (!dataEl || !box) return null;
    var inner = document.getElementById('tree-inner');
    var input = document.getElementById('departments-input');
    var search = document.getElementById('tree-search');
    var countEl = document.getElementById('tree-count');
    var data = JSON.parse(dataEl.textContent);
    var scope = JSON.parse(document.getElementById('scope-data').textContent) || {};
    var ids = data.i || [], par = data.p || [], names = data.n || [], cnt = data.c || [];
    var N = ids.length;
    var ROW = 30, MAXH = 420, OVERSCAN = 8;

    var end = new Int32Array(N), depth = new Int32Array(N), total = new Int32Array(N);
    var lower = new Array(N);
    var index = new Map();
    var i;
    for (i = 0; i < N; i++) {
      end[i] = i + 1;
      total[i] = cnt[i] || 0;
      depth[i] = par[i] >= 0 ? depth[par[i]] + 1 : 0;
      lower[i] = String(names[i]).toLowerCase();
      index.set(ids[i], i);
    }
    for (i = N - 1; i >= 0; i--) {
      var p = par[i];
      if (p >= 0) {
        if (end[i] > end[p]) end[p] = end[i];
        total[p] += total[i];
      }
    }

    // mark: 1 = selected (subtree in), -1 = excluded (subtree out), 0 = inherits.
    var mark = new Int8Array(N);
    (scope.selected || []).forEach(function (id) { if (index.has(id)) mark[index.get(id)] = 1; });
    (scope.excluded || []).forEach(function (id) { if (index.has(id)) mark[index.get(id)] = -1; });
    var eff = new Uint8Array(N), mixed = new Uint8Array(N);
    var expanded = new Uint8Array(N);
    for (i = 0; i < N; i++) if (par[i] < 0) expanded[i] = 1;
    // Open the way to every marked department so the selection is visible.
    for (i = 0; i < N; i++) {
      if (mark[i] !== 0) for (var a = par[i]; a >= 0; a = par[a]) expanded[a] = 1;
    }

    var query = '';
    var show = new Uint8Array(N);
    var rows = new Int32Array(N);
    var nrows = 0;

    function recompute() {
      var n = 0;
      for (var k = 0; k < N; k++) {
        eff[k] = mark[k] === 1 ? 1 : mark[k] === -1 ? 0 : (par[k] >= 0 ? eff[par[k]] : 0);
        n += eff[k];
      }
      mixed.fill(0);
      for (k = N - 1; k >= 0; k--) {
        var q = par[k];
        if (q >= 0 && (eff[k] !== eff[q] || mixed[k])) mixed[q] = 1;
      }
      countEl.textContent = String(n);
    }

    function store() {
      var sel = [], exc = [];
      for (var k = 0; k < N; k++) {
        if (mark[k] === 1) sel.push(ids[k]);
        else if (mark[k] === -1) exc.push(ids[k]);
      }
      input.value = JSON.stringify({ selected: sel, excluded: exc });
    }

    // toggle ticks or unticks k with its whole subtree. The subtree's own
    // marks are dropped; k gets a mark only where it differs from its parent,
    // so the stored selection stays minimal.
    function toggle(k) {
      var want = eff[k] && !mixed[k] ? 0 : 1;
      for (var j = k; j < end[k]; j++) mark[j] = 0;
      var ctx = par[k] >= 0 ? eff[par[k]] : 0;
      if (want !== ctx) mark[k] = want ? 1 : -1;
      recompute();
      store();
      paint();
    }

    function layout() {
      nrows = 0;
      var k = 0;
      if (query) {
        show.fill(0);
        for (k = N - 1; k >= 0; k--) {
          if (show[k] || lower[k].indexOf(query) !== -1) {
            show[k] = 1;
            if (par[k] >= 0) show[par[k]] = 1;
          }
        }
        k = 0;
        while (k < N) {
          if (!show[k]) { k = end[k]; continue; }
          rows[nrows++] = k;
          k++;
        }
      } else {
        while (k < N) {
          rows[nrows++] = k;
          k = expanded[k] ? k + 1 : end[k];
        }
      }
      var h = Math.max(nrows * ROW, ROW);
      inner.style.height = h + 'px';
      box.style.height = Math.min(h, MAXH) + 2 + 'px';
    }

    function makeRow(k, top) {
      var row = document.createElement('div');
      row.className = 'tree-row';
      row.setAttribute('role', 'treeitem');
      row.setAttribute('aria-level', String(depth[k] + 1));
      row.setAttribute('data-i', String(k));
      row.style.top = top + 'px';
      row.style.paddingLeft = (8 + depth[k] * 20) + 'px';
      var hasKids = end[k] > k + 1;
      var tg = document.createElement('span');
      tg.className = 'tree-tg';
      if (hasKids) {
        var open = query ? true : !!expanded[k];
        tg.className += open ? ' open' : '';
        tg.setAttribute('data-toggle', String(k));
        row.setAttribute('aria-expanded', String(open));
      }
      row.appendChild(tg);
      var label = document.createElement('label');
      label.className = 'tree-label';
      var cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.className = 'tree-cb';
      cb.setAttribute('data-check', String(k));
      cb.checked = !!eff[k] && !mixed[k];
      cb.indeterminate = !!mixed[k];
      cb.disabled = !admin;
      row.setAttribute('aria-checked', mixed[k] ? 'mixed' : String(!!eff[k]));
      label.appendChild(cb);
      var name = document.createElement('span');
      name.className = 'tree-name';
      name.textContent = names[k];
      label.appendChild(name);
      row.appendChild(label);
      var c = document.createElement('span');
      c.className = 'tree-cnt';
      c.textContent = String(total[k]);
      c.title = texts.employees;
      row.appendChild(c);
      return row;
    }

    function paint() {
      // Rows are rebuilt on every paint; keep the keyboard focus on the
      // same department's checkbox.
      var active = document.activeElement;
      var focused = active && active.hasAttribute && active.hasAttribute('data-check') ? active.getAttribute('data-check') : null;
      var top = box.scrollTop;
      var from = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
      var to = Math.min(nrows, Math.ceil((top + box.clientHeight) / ROW) + OVERSCAN);
      var frag = document.createDocumentFragment();
      if (nrows === 0) {
        frag.appendChild(el('div', 'tree-msg muted', texts.tree_empty));
      }
      for (var r = from; r < to; r++) frag.appendChild(makeRow(rows[r], r * ROW));
      inner.textContent = '';
      inner.appendChild(frag);
      if (focused !== null) {
        var again = inner.querySelector('[data-check="' + focused + '"]');
        if (again) again.focus({ preventScroll: true });
      }
    }

    // Keyboard: arrows move between rows, right and left open and close.
    inner.addEventListener('keydown', function (ev) {
      var t = ev.target;
      if (!t.hasAttribute || !t.hasAttribute('data-check')) return;
      var k = +t.getAttribute('data-check');
      var pos = -1;
      for (var r = 0; r < nrows; r++) if (rows[r] === k) { pos = r; break; }
      var next = -1;
      if (ev.key === 'ArrowDown') next = pos + 1;
      else if (ev.key === 'ArrowUp') next = pos - 1;
      else if ((ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') && !query && end[k] > k + 1) {
        expanded[k] = ev.key === 'ArrowRight' ? 1 : 0;
        ev.preventDefault();
        refresh();
        return;
      } else return;
      ev.preventDefault();
      if (next < 0 || next >= nrows) return;
      var y = next * ROW;
      if (y < box.scrollTop) box.scrollTop = y;
      else if (y + ROW > box.scrollTop + box.clientHeight) box.scrollTop = y + ROW - box.clientHeight;
      paint();
      var cb = inner.querySelector('[data-check="' + rows[next] + '"]');
      if (cb) cb.focus({ preventScroll: true });
    });

    function refresh() {
      layout();
      paint();
      fit();
    }

    box.addEventListener('scroll', paint, { passive: true });
    inner.addEventListener('click', function (ev) {
      var t = ev.target;
      if (t.hasAttribute && t.hasAttribute('data-toggle')) {
        if (query) return; // a search shows every match's path expanded
        var k = +t.getAttribute('data-toggle');
        expanded[k] = expanded[k] ? 0 : 1;
        refresh();
      }
    });
    inner.addEventListener('change', function (ev) {
      var t = ev.target;
      if (t.hasAttribute && t.hasAttribute('data-check') && admin) toggle(+t.getAttribute('data-check'));
    });
    if (search) {
      search.addEventListener('input', function () {
        var t0 = performance.now();
        query = search.value.trim().toLowerCase();
        box.scrollTop = 0;
        refresh();
        window.b24lTree.lastFilterMs = performance.now() - t0;
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll('[data-tree]'), function (btn) {
      btn.addEventListener('click', function () {
        var what = btn.getAttribute('data-tree');
        if (what === 'expand') { expanded.fill(1); refresh(); return; }
        if (what === 'collapse') {
          expanded.fill(0);
          for (var k = 0; k < N; k++) if (par[k] < 0) expanded[k] = 1;
          refresh();
          return;
        }
        if (!admin) return;
        mark.fill(0);
        if (what === 'all') for (var j = 0; j < N; j++) if (par[j] < 0) mark[j] = 1;
        recompute();
        store();
        paint();
      });
    });

    recompute();
    store();
    refresh();
    window.b24lTree = { size: N, lastFilterMs: 0 };
    return { store: store };
  }
})();
