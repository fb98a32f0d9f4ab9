// relay-git-sync history browser: shows times in the viewer's time zone
// and, on a timeline's first page, offers new snapshots as they arrive.
"use strict";
(function () {
  function localTimes() {
    var fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.title = el.textContent;
        el.textContent = fmt.format(d);
      }
    });
  }
  function live() {
    var box = document.getElementById("live");
    if (!box || !window.EventSource) return;
    var latest = Number(box.dataset.latest);
    var es = new EventSource(box.dataset.events);
    es.addEventListener("snapshot", function (ev) {
      var n = JSON.parse(ev.data).latest - latest;
      if (n <= 0) return;
      box.textContent = "";
      box.append(n + (n === 1 ? " new snapshot — " : " new snapshots — "));
      var a = document.createElement("a");
      a.href = window.location.pathname;
      a.textContent = "reload";
      box.append(a);
      box.hidden = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
    live();
  });
})();
