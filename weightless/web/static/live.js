// Weightless pages: copy buttons, and live swarm counts on an entry's page.
// Every page works without this file; it only adds to what the server rendered.
(function () {
  "use strict";

  function copyText(field) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(field.value);
    }
    field.select();
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject();
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.dataset.copy);
    if (!field) {
      return;
    }
    var label = button.textContent;
    button.hidden = false;
    field.addEventListener("focus", function () { field.select(); });
    button.addEventListener("click", function () {
      copyText(field).then(function () {
        button.textContent = "Copied";
      }, function () {
        field.select();
        button.textContent = "Press Ctrl+C";
      });
      window.setTimeout(function () { button.textContent = label; }, 2000);
    });
  });

  var live = document.querySelector("[data-live-hash]");
  if (!live) {
    return;
  }
  var every = Math.max(1, Number(live.dataset.refresh) || 5) * 1000;
  var url = "/api/registry?info_hash=" + encodeURIComponent(live.dataset.liveHash);

  function refresh() {
    if (document.hidden) {
      window.setTimeout(refresh, every);
      return;
    }
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (entry) {
        if (entry) {
          live.querySelectorAll("[data-live]").forEach(function (el) {
            var value = entry[el.dataset.live];
            if (typeof value === "number") {
              el.textContent = String(value);
              var unit = el.nextElementSibling;  // "1 seeder", "2 seeders"
              if (unit && unit.dataset.one) {
                unit.textContent = value === 1 ? unit.dataset.one : unit.dataset.many;
              }
            }
          });
        }
      }, function () {})
      .then(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
