/* Live pages (growalert/pages/live.py): ask the page's live URL every 1.5 s with the version
   last seen (If-None-Match). 304: nothing changed. 200: the page's HTML without its charts;
   every element marked data-live-region is swapped for its new copy, dashboard cards
   (data-live-item) take their new status and order, and a change of status is announced to
   screen readers. A full answer is asked for at least once a minute (times like "3 minutes
   ago" move on; If-None-Match "refresh", which matches no version), a new token every few
   minutes (no If-None-Match: only Django gives tokens), and nothing while the tab is hidden.
   No build step, no inline script. */
(function () {
  "use strict";
  var config = document.querySelector("[data-live-url]");
  if (!config || !window.fetch || !window.DOMParser) return;
  var url = config.getAttribute("data-live-url");
  var token = config.getAttribute("data-live-token");
  var version = config.getAttribute("data-live-version");
  var period = parseInt(config.getAttribute("data-live-poll"), 10) || 1000;
  var renewEvery = parseInt(config.getAttribute("data-live-renew"), 10) || 240000;
  // This session's CSRF token: an answer rendered for another tab of the account carries that
  // session's in its forms, which Django would refuse from this one.
  var csrf = config.getAttribute("data-live-csrf");
  var FULL_EVERY = 60000;
  var lastFull = Date.now();
  var tokenAt = Date.now();
  var failures = 0;
  var timer = null;

  function schedule(delay) {
    if (timer) clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(poll, delay);
  }

  function poll() {
    timer = null;
    var headers = { "Accept": "application/json" };
    var now = Date.now();
    if (version !== "" && version !== null && now - tokenAt < renewEvery) {
      headers["If-None-Match"] = now - lastFull >= FULL_EVERY ? '"refresh"' : '"' + version + '"';
    }
    fetch(url + "?t=" + encodeURIComponent(token), {
      headers: headers, credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      if (response.status === 304) return null;
      if (!response.ok) throw new Error("live: HTTP " + response.status);
      return response.json();
    }).then(function (answer) {
      failures = 0;
      if (answer) apply(answer);
      schedule(period);
    }).catch(function () {
      failures += 1;  // back off while the server or the network is away, up to a minute
      schedule(Math.min(60000, period * Math.pow(2, failures)));
    });
  }

  function apply(answer) {
    lastFull = Date.now();
    var previous = version;
    version = answer.version === null ? "" : String(answer.version);
    if (answer.token) { token = answer.token; tokenAt = Date.now(); }
    var fresh = new DOMParser().parseFromString(answer.html, "text/html");
    if (!sameItems(fresh)) { window.location.reload(); return; }
    var changes = updateItems(fresh);
    document.querySelectorAll("[data-live-region]").forEach(function (old) {
      var key = old.getAttribute("data-live-region");
      var replacement = fresh.querySelector('[data-live-region="' + cssEscape(key) + '"]');
      if (replacement && csrf) {
        replacement.querySelectorAll('input[name="csrfmiddlewaretoken"]').forEach(function (input) {
          input.setAttribute("value", csrf);
        });
      }
      if (replacement && replacement.outerHTML !== old.outerHTML) {
        old.replaceWith(document.importNode(replacement, true));
      }
    });
    // changed: false for the once-a-minute refresh of an unchanged version (times move on,
    // nothing else did): a chart is not fetched again for it (static/js/chart.js).
    document.dispatchEvent(new CustomEvent("growalert:live", {
      detail: { version: version, changed: version === "" || version !== previous }
    }));
    var region = document.querySelector("[data-live-announce]");
    if (region && changes.length) region.textContent = changes.join(". ");
  }

  function ids(root) {
    return Array.prototype.map.call(root.querySelectorAll("[data-live-item]"), function (el) {
      return el.getAttribute("data-live-item");
    });
  }

  function sameItems(fresh) {
    var now = ids(document).slice().sort().join(","), next = ids(fresh).slice().sort().join(",");
    return now === next;
  }

  // Cards keep their chart: only their class, status and place in the list change.
  function updateItems(fresh) {
    var changes = [];
    var list = document.querySelector("[data-live-list]");
    var reorder = list && ids(document).join(",") !== ids(fresh).join(",");
    fresh.querySelectorAll("[data-live-item]").forEach(function (next) {
      var id = next.getAttribute("data-live-item");
      var card = document.querySelector('[data-live-item="' + cssEscape(id) + '"]');
      if (!card) return;
      if (card.getAttribute("data-status") !== next.getAttribute("data-status")) {
        changes.push(next.getAttribute("data-live-name") + ": " + next.getAttribute("data-live-words"));
      }
      ["class", "data-status", "data-live-name", "data-live-words"].forEach(function (name) {
        card.setAttribute(name, next.getAttribute(name) || "");
      });
      if (reorder) list.appendChild(card);  // in the new order: appending moves it to the end
    });
    var state = fresh.querySelector('[data-live-region="state"] [data-testid="status"]');
    var shown = document.querySelector('[data-live-region="state"] [data-testid="status"]');
    if (state && shown && state.textContent !== shown.textContent) {
      changes.push("Status: " + state.textContent);
    }
    return changes;
  }

  function cssEscape(text) {
    return window.CSS && CSS.escape ? CSS.escape(text) : String(text).replace(/"/g, '\\"');
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) schedule(0);
  });
  schedule(period);
})();
