// One file on purpose (over 600 lines): the page loads no bundler or modules, and one script keeps its handlers and their shared state together.
// The settings page inside the Bitrix24 iframe: saving the form, the
// department picker, the status panel's buttons and its refresh. Plain JS,
// no library. Data from the server (department names, messages, report rows)
// reaches the page through textContent only, never innerHTML; the status
// panel and the activation form come as HTML the server rendered (and
// escaped) and take their old element's place whole.
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

  // ---- A change is proven again with Bitrix24 on the user's own access
  // token. The session carries the one of the open, which lives an hour;
  // BX24.js, when it is there, has the current one (or fetches it).
  function userToken() {
    return new Promise(function (resolve) {
      var done = false;
      function finish(a) {
        if (done) return;
        done = true;
        resolve(a && a.access_token ? String(a.access_token) : '');
      }
      if (!bxReady) { finish(null); return; }
      try {
        var a = window.BX24.getAuth();
        if (a && a.access_token) { finish(a); return; }
        setTimeout(function () { finish(null); }, 3000);
        window.BX24.refreshAuth(finish);
      } catch (e) { finish(null); }
    });
  }

  // ---- Requests carry the session token in a header, never in the URL.
  function request(method, url, body) {
    var opts = { method: method, headers: { 'X-Session': session }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.body = body;
      opts.headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    // Reads too: the server proves an admin with Bitrix24 on every request
    // naming employees (reports, the search, the status panel's preview).
    return withUserToken(opts.headers).then(function () { return send(url, opts); });
  }

  // withUserToken adds the user's current Bitrix24 token, when BX24.js has
  // one, for the server to prove the session's admin with once the
  // session's own is over its hour.
  function withUserToken(headers) {
    return userToken().then(function (tok) {
      if (tok) headers['X-B24-Auth'] = tok;
    });
  }

  function send(url, opts) {
    return fetch(url, opts).then(function (res) {
      return res.text().then(function (t) {
        var data = null;
        try { data = JSON.parse(t); } catch (e) { /* plain-text error */ }
        return { status: res.status, data: data, text: t, retryAfter: +res.headers.get('Retry-After') || 0 };
      });
    });
  }

  function failureText(r) {
    if (r.status === 401) return texts.session_ended;
    if (r.status === 403) return texts.readonly;
    if (r.data && r.data.message) return r.data.message;
    return unavailableText(r) || texts.network_error;
  }

  // unavailableText is the server's own reason of a 503 (Bitrix24 could not
  // confirm the admin's rights just now) or a 429 (too many requests, or
  // too many checks of the admin's rights with Bitrix24: try again in a
  // while), which it answers as plain text; a proxy's page is not shown.
  function unavailableText(r) {
    var t = r && (r.status === 503 || r.status === 429) && r.text ? r.text.trim() : '';
    return t && t.length < 300 && t.indexOf('<') < 0 ? t : '';
  }

  function showNotice(el, ok, text) {
    el.textContent = text;
    el.classList.toggle('ok', !!ok);
    el.classList.toggle('bad', !ok);
    el.hidden = !text;
    fit();
  }

  // ---- The alert address's confirmation: its state under the field and
  // the button that sends the link (again).
  var alertStateText = document.getElementById('alert-state-text');
  var alertSend = document.getElementById('alert-send');
  function showAlertState(d) {
    if (!alertStateText || !d || d.alert_state === undefined) return;
    alertStateText.textContent = d.alert_state_text || '';
    if (alertSend) alertSend.hidden = !(d.alert_state === 'pending' || d.alert_state === 'unsent');
    fit();
  }
  if (alertSend && admin) {
    alertSend.addEventListener('click', function () {
      alertSend.disabled = true;
      request('POST', '/app/alert-confirmation', '').then(function (r) {
        var ok = r.status === 200 && r.data && r.data.ok;
        showNotice(document.getElementById('form-result'), ok, ok ? r.data.message : failureText(r));
        if (ok) showAlertState(r.data);
      }, function () {
        showNotice(document.getElementById('form-result'), false, texts.network_error);
      }).then(function () { alertSend.disabled = false; });
    });
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

  // The field mapping's choices come once (fieldmap-sources); every row's
  // list gets them here, keeping the row's saved choice selected.
  function fillFieldMapChoices() {
    var dataEl = document.getElementById('fieldmap-sources');
    if (!dataEl) return;
    var sources;
    try { sources = JSON.parse(dataEl.textContent) || []; } catch (e) { return; }
    var choices = document.createDocumentFragment();
    sources.forEach(function (src) {
      var o = document.createElement('option');
      o.value = src.code;
      o.textContent = src.label;
      choices.appendChild(o);
    });
    Array.prototype.forEach.call(document.querySelectorAll('select[data-map]'), function (sel) {
      var saved = sel.value;
      while (sel.options.length > 1) sel.remove(1);
      sel.appendChild(choices.cloneNode(true));
      sel.value = saved;
    });
  }
  fillFieldMapChoices();

  // A card without fields (the account not saved yet, or Learn did not
  // answer) is asked for again after a save and put in place, with its
  // fields once the saved account gives them: no reopening of the app.
  function refreshFieldMap() {
    var card = document.getElementById('field-map');
    if (!card || document.getElementById('fieldmap-sources')) return;
    request('GET', '/app/fieldmap').then(function (r) {
      var fresh = r.status === 200 && new DOMParser().parseFromString(r.text, 'text/html').getElementById('field-map');
      var old = document.getElementById('field-map');
      if (!fresh || !old) return;
      old.replaceWith(fresh);
      fillFieldMapChoices();
      fit();
    }, function () { /* the card keeps its note; the next open shows the fields */ });
  }

  // The field mapping goes as one JSON object, Learn field -> Bitrix24 field
  // ("" for none), in the hidden input field_map.
  function storeFieldMap() {
    var input = document.getElementById('field_map-input');
    if (!input) return;
    var m = {};
    Array.prototype.forEach.call(form.querySelectorAll('select[data-map]'), function (sel) {
      m[sel.getAttribute('data-map')] = sel.value;
    });
    input.value = JSON.stringify(m);
  }

  if (form && admin) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      clearErrors();
      if (tree) tree.store();
      storeFieldMap();
      var params = new URLSearchParams(new FormData(form));
      params.delete('session');
      saveBtn.disabled = true;
      saving.hidden = false;
      result.hidden = true;
      request('POST', '/app/settings', params.toString()).then(function (r) {
        if (r.status === 200 && r.data && r.data.ok) {
          showNotice(result, true, r.data.message);
          showAlertState(r.data);
          var pw = document.getElementById('learn_password');
          pw.value = '';
          document.getElementById('password-hint').hidden = !r.data.has_password;
          document.getElementById('learn_client_secret').value = '';
          document.getElementById('client-secret-hint').hidden = !r.data.has_client_secret;
          refreshStatus(); // Preview, Sync now and the next runs follow the saved settings
          refreshFieldMap();
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

  // ---- Status panel. The server renders it, in the page and as the answer
  // of GET /app/status; while a sync or preview is queued or running the page
  // asks again and puts the answer in the panel's place. The panel's
  // data-poll says when to ask next (ms; 0: not until an action).

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
  function fillLocalTimes(root) {
    Array.prototype.forEach.call(root.querySelectorAll('[data-local-for]'), function (el) {
      var s = localTime(el.getAttribute('data-local-for'));
      if (s) el.textContent = s;
    });
  }

  // The buttons' notice belongs to the page, not to the panel: each new
  // panel gets it again, until the run it announced is over.
  var notice = null; // {ok, text}
  var actionPending = false; // "started" is shown until the job is gone
  function setNotice(ok, text) {
    notice = text ? { ok: ok, text: text } : null;
    var box = document.getElementById('action-result');
    if (box) showNotice(box, ok, text || '');
  }

  var pollTimer = 0;
  var polling = false;
  var again = false; // asked for while a request was out: its answer may be stale
  var misses = 0; // failed asks in a row: the next waits longer
  function schedule(ms) {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = 0; }
    if (ms) pollTimer = setTimeout(refreshStatus, ms);
  }
  function panelPoll() {
    var p = document.getElementById('status');
    return p ? (+p.getAttribute('data-poll') || 0) : 0;
  }
  // missed keeps the panel the page has (a 503 says the server could not
  // ask Bitrix24 now, a 429 that it will not yet; neither that the admin
  // lost their rights) and asks again, each time later, and not before the
  // server's Retry-After. One miss says nothing, nor do two, unless the
  // server said to wait; from the third the panel says quietly that it is
  // not current, with the server's reason if it gave one.
  function missed(r) {
    misses++;
    var wait = r && r.retryAfter ? r.retryAfter * 1000 : 0;
    schedule(Math.max(Math.min(2000 * Math.pow(2, misses), 30000), wait));
    if (misses < 3 && !(r && r.status === 429)) return;
    var panel = document.getElementById('status');
    if (!panel) return;
    var note = document.getElementById('status-stale');
    if (!note) {
      note = document.createElement('p');
      note.id = 'status-stale';
      note.className = 'hint';
      note.setAttribute('role', 'status');
      var job = document.getElementById('job-state');
      if (job) job.after(note); else panel.appendChild(note);
    }
    note.textContent = unavailableText(r) || texts.network_error;
  }
  function refreshStatus() {
    schedule(0);
    if (polling) { again = true; return; }
    polling = true;
    request('GET', '/app/status').then(function (r) {
      polling = false;
      var fresh = r.status === 200 && new DOMParser().parseFromString(r.text, 'text/html').getElementById('status');
      var old = document.getElementById('status');
      if (!fresh || !old) {
        if (r.status === 401) { // the session ended: stop asking
          var job = document.getElementById('job-state');
          if (job) job.hidden = true;
          return;
        }
        missed(r);
        return;
      }
      misses = 0;
      fresh = document.importNode(fresh, true);
      old.replaceWith(fresh);
      fillLocalTimes(fresh);
      var stale = again;
      again = false;
      var next = panelPoll();
      if (actionPending && !next && !stale) {
        actionPending = false;
        notice = null; // the result is in the panel now
      }
      if (notice) setNotice(notice.ok, notice.text);
      if (stale) refreshStatus();
      else schedule(next);
      fit();
    }, function () {
      polling = false;
      missed(null);
    });
  }
  fillLocalTimes(document);
  schedule(panelPoll());

  function runAction(btn) {
    btn.disabled = true;
    // Approve names the held run it shows: the server approves that one only.
    var run = btn.getAttribute('data-run');
    var body = run ? 'run=' + encodeURIComponent(run) : '';
    request('POST', '/app/' + btn.getAttribute('data-action'), body).then(function (r) {
      var ok = r.status === 202 && r.data && r.data.ok;
      setNotice(ok, ok ? r.data.message : failureText(r));
      if (ok) { actionPending = true; refreshStatus(); }
    }, function () {
      setNotice(false, texts.network_error);
    }).then(function () { btn.disabled = false; });
  }

  // ---- Run reports: the dialog outside the panel; its body comes as HTML
  // the server rendered (and escaped) in the page's language and takes the
  // old body's place whole.
  var report = document.getElementById('report');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // after, when set, is the row id a later page of the report starts after.
  function openReport(id, after) {
    var url = '/app/runs/' + encodeURIComponent(id) + (after ? '?after=' + encodeURIComponent(after) : '');
    request('GET', url).then(function (r) {
      var fresh = r.status === 200 && new DOMParser().parseFromString(r.text, 'text/html').getElementById('report-body');
      var old = document.getElementById('report-body');
      if (!fresh || !old) { setNotice(false, failureText(r)); return; }
      fresh = document.importNode(fresh, true);
      old.replaceWith(fresh);
      fillLocalTimes(fresh);
      report.hidden = false;
      fit();
      report.scrollIntoView({ block: 'nearest' });
    }, function () { setNotice(false, texts.network_error); });
  }
  function downloadCSV(id) {
    var headers = { 'X-Session': session };
    withUserToken(headers).then(function () {
      return fetch('/app/runs/' + encodeURIComponent(id) + '/csv', { headers: headers, credentials: 'same-origin' });
    }).then(function (res) {
      if (!res.ok) throw new Error(String(res.status));
      return res.blob();
    }).then(function (blob) {
      var a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'run-' + id + '.csv';
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    }).catch(function () { setNotice(false, texts.network_error); });
  }
  // Delegated: the panel is replaced while runs progress.
  document.addEventListener('click', function (ev) {
    var t = ev.target;
    if (!t || !t.closest) return;
    var b = t.closest('button[data-action]');
    if (b) { runAction(b); return; }
    b = t.closest('[data-report]');
    if (b) { openReport(b.getAttribute('data-report'), b.getAttribute('data-after')); return; }
    b = t.closest('[data-csv]');
    if (b) downloadCSV(b.getAttribute('data-csv'));
  });
  var closeBtn = document.getElementById('report-close');
  if (closeBtn) closeBtn.addEventListener('click', function () { report.hidden = true; fit(); });

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
          setNotice(false, failureText(r));
        }
        fit();
      }, function () {
        if (btn) btn.disabled = false;
        setNotice(false, texts.network_error);
      });
    });
  }

  // ---- People (admins only): the search, one person's view and "Sync
  // this employee". The results and the person come as HTML the server
  // rendered (and escaped) and take their box's place whole; after a sync
  // the person's view is asked again while the job waits or runs.
  var people = document.getElementById('people');
  if (people) {
    var peopleErr = document.getElementById('people-error');
    var personTimer = 0;
    var swap = function (id, html) {
      var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById(id);
      var old = document.getElementById(id);
      if (!fresh || !old) return null;
      fresh = document.importNode(fresh, true);
      old.replaceWith(fresh);
      fillLocalTimes(fresh);
      fit();
      return fresh;
    };
    var peopleFail = function (r) { showNotice(peopleErr, false, r ? failureText(r) : texts.network_error); };
    var openPerson = function (id, job) {
      if (personTimer) { clearTimeout(personTimer); personTimer = 0; }
      var url = '/app/people/' + encodeURIComponent(id) + (job ? '?job=' + encodeURIComponent(job) : '');
      request('GET', url).then(function (r) {
        if (r.status !== 200) { peopleFail(r); return; }
        peopleErr.hidden = true;
        var box = swap('person-box', r.text);
        if (!box) { peopleFail(r); return; }
        var ms = +box.getAttribute('data-poll') || 0;
        if (ms && job) {
          personTimer = setTimeout(function () { openPerson(id, job); }, ms);
        } else if (job) {
          refreshStatus(); // the run list shows the finished on-demand run
        }
      }, function () { peopleFail(null); });
    };
    document.getElementById('people-search').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var q = document.getElementById('people-q').value.trim();
      request('GET', '/app/people?q=' + encodeURIComponent(q)).then(function (r) {
        if (r.status !== 200 || !swap('people-results', r.text)) { peopleFail(r); return; }
        peopleErr.hidden = true;
      }, function () { peopleFail(null); });
    });
    people.addEventListener('click', function (ev) {
      var t = ev.target;
      if (!t || !t.closest) return;
      var b = t.closest('[data-person]');
      if (b) { openPerson(b.getAttribute('data-person'), 0); return; }
      b = t.closest('[data-provision]');
      if (!b) return;
      var id = b.getAttribute('data-provision');
      b.disabled = true;
      request('POST', '/app/provision', 'user_id=' + encodeURIComponent(id)).then(function (r) {
        var box = document.getElementById('person-result');
        if (r.status === 202 && r.data && r.data.ok) {
          if (box) showNotice(box, true, r.data.message);
          refreshStatus();
          openPerson(id, r.data.job_id);
        } else {
          b.disabled = false;
          if (box) showNotice(box, false, failureText(r));
        }
      }, function () { b.disabled = false; peopleFail(null); });
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
