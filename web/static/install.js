// The installer page's only job: tell Bitrix24 the install is done, once.
// It lives here, not inline, so the framed pages' CSP can allow scripts from
// this server and Bitrix24's library only.
(function () {
  var el = document.getElementById("install");
  var status = document.getElementById("install-status");
  if (window.parent === window) {
    status.textContent = el.dataset.outside;
    return;
  }
  if (typeof BX24 !== "undefined" && BX24.init) {
    BX24.init(function () { BX24.installFinish(); });
    return;
  }
  // No BX24.js (an offline demo): the same frame message it would send,
  // addressed to the portal's origin only.
  window.parent.postMessage("installFinish::" + ":" + el.dataset.appSid, el.dataset.origin);
})();
