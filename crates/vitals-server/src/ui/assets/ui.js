// Vitals web UI: live status updates over server-sent events. Progressive enhancement only:
// every page is complete without this script.
(function () {
  "use strict";
  if (!window.EventSource) return;
  var LABEL = { ok: "OK", warn: "WARN", crit: "CRIT", unknown: "UNKNOWN", pending: "PENDING" };
  var live = document.getElementById("live");
  function setBadge(el, s) {
    if (!el) return;
    el.className = "status status-" + s;
    el.textContent = LABEL[s] || s;
  }
  function apply(msg) {
    if (msg.reload) { window.location.reload(); return; }
    var all = 0;
    Object.keys(msg.counts || {}).forEach(function (k) {
      all += msg.counts[k];
      var el = document.querySelector('[data-count="' + k + '"]');
      if (el) el.textContent = msg.counts[k];
    });
    var total = document.querySelector('[data-count="all"]');
    if (total) total.textContent = all;
    Object.keys(msg.changed || {}).forEach(function (id) {
      var s = msg.changed[id];
      var sel = window.CSS && CSS.escape ? CSS.escape(id) : id.replace(/["\\]/g, "\\$&");
      var row = document.querySelector('tr[data-asset="' + sel + '"]');
      if (row) {
        row.setAttribute("data-status", s);
        setBadge(row.querySelector(".status"), s);
      }
      var head = document.querySelector('#asset-status[data-asset="' + sel + '"]');
      if (head) setBadge(head.querySelector(".status"), s);
      // Other live badges (pipelines, jobs): any element marked with its asset.
      document.querySelectorAll('[data-live="' + sel + '"]').forEach(function (el) {
        setBadge(el.querySelector(".status"), s);
      });
    });
  }
  var es = new EventSource("/ui/events");
  es.addEventListener("status", function (e) {
    try { apply(JSON.parse(e.data)); } catch (err) { /* a bad event is skipped */ }
    if (live) live.textContent = "live · updated " + new Date().toLocaleTimeString();
  });
  es.onerror = function () { if (live) live.textContent = "live updates paused; reload to refresh"; };
})();
