// relay-git-sync history browser: shows times in the viewer's time zone
// and, on a timeline's first page, adds new snapshots as they arrive.
"use strict";
(function () {
  function localTimes(root) {
    var fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d) && !el.title) {
        el.title = el.textContent;
        el.textContent = fmt.format(d);
      }
    });
  }
  // live inserts new snapshots at the top of the first timeline page as
  // they are recorded: the server sends an event, the page fetches itself
  // and takes the rows it does not have yet.
  function live() {
    var box = document.getElementById("live");
    var list = document.querySelector("ol.timeline");
    if (!box || !window.EventSource || !window.fetch) return;
    var latest = Number(box.dataset.latest);
    var busy = false;
    var es = new EventSource(box.dataset.events);
    es.addEventListener("snapshot", function (ev) {
      if (JSON.parse(ev.data).latest <= latest || busy) return;
      busy = true;
      fetch(window.location.pathname, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var rows = page.querySelectorAll("ol.timeline > li[id^='s']");
          var added = 0;
          if (!list) {
            list = page.querySelector("ol.timeline");
            if (!list) return;
            var empty = document.querySelector("main > p");
            (empty || box).after(list);
            added = list.children.length;
          } else {
            for (var i = rows.length - 1; i >= 0; i--) {
              if (Number(rows[i].id.slice(1)) > latest && !document.getElementById(rows[i].id)) {
                list.prepend(document.importNode(rows[i], true));
                added++;
              }
            }
            list.start = Number(page.querySelector("ol.timeline").getAttribute("start"));
          }
          rows.forEach(function (r) { latest = Math.max(latest, Number(r.id.slice(1))); });
          localTimes(list);
          box.textContent = added + (added === 1 ? " new snapshot added" : " new snapshots added");
          box.hidden = false;
        })
        .catch(function () {
          box.textContent = "New snapshots: reload to see them";
          box.hidden = false;
        })
        .finally(function () { busy = false; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
    live();
  });
})();
