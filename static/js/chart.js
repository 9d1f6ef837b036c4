/* Hover or tap a chart (growalert/pages/charts.py) to read a point: a cursor line at the
   nearest point and its time and value under the chart. Arrow keys move it when the chart has
   focus. The points come from the figure's data-points; a chart marked data-chart-refresh is
   fetched again when the live counter says something changed (below). */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function setUp(figure) {
    var svg = figure.querySelector("svg");
    var output = figure.querySelector(".chart-readout");
    if (!svg || !output) return;
    var points;
    try { points = JSON.parse(figure.getAttribute("data-points") || "[]"); } catch (e) { return; }
    if (!points.length) return;
    var d = function (name) { return parseFloat(figure.getAttribute("data-" + name)); };
    var t0 = d("t0"), t1 = d("t1"), left = d("left"), right = d("right");
    var top = d("top"), bottom = d("bottom"), low = d("low"), high = d("high"), width = d("width");
    var unit = figure.getAttribute("data-unit") || "";
    var decimals = parseInt(figure.getAttribute("data-decimals"), 10) || 0;
    var timeZone = figure.getAttribute("data-tz") || undefined;
    var clock;
    try {
      clock = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: timeZone });
    } catch (e) {
      clock = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    }
    var cursor = document.createElementNS(SVG, "line");
    cursor.setAttribute("class", "cursor");
    cursor.setAttribute("y1", top);
    cursor.setAttribute("y2", bottom);
    var dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("class", "cursor-dot");
    dot.setAttribute("r", 3);
    var index = points.length - 1;

    function x(t) { return left + (t - t0) / (t1 - t0) * (right - left); }
    function y(v) { return bottom - (v - low) / (high - low) * (bottom - top); }

    function nearest(t) {
      var lo = 0, hi = points.length - 1;
      while (hi - lo > 1) {
        var mid = (lo + hi) >> 1;
        if (points[mid][0] < t) lo = mid; else hi = mid;
      }
      return Math.abs(points[lo][0] - t) <= Math.abs(points[hi][0] - t) ? lo : hi;
    }

    function show(i) {
      index = Math.max(0, Math.min(points.length - 1, i));
      var p = points[index];
      cursor.setAttribute("x1", x(p[0]));
      cursor.setAttribute("x2", x(p[0]));
      dot.setAttribute("cx", x(p[0]));
      dot.setAttribute("cy", y(p[1]));
      if (!cursor.parentNode) { svg.appendChild(cursor); svg.appendChild(dot); }
      output.textContent = clock.format(new Date(p[0])) + " · " +
        p[1].toFixed(decimals) + (unit ? "\u202f" + unit : "");
    }

    function at(event) {
      var box = svg.getBoundingClientRect();
      if (!box.width) return;
      var vx = (event.clientX - box.left) / box.width * width;
      show(nearest(t0 + (vx - left) / (right - left) * (t1 - t0)));
    }

    svg.addEventListener("pointermove", at);
    svg.addEventListener("pointerdown", at);
    svg.setAttribute("tabindex", "0");
    svg.addEventListener("keydown", function (event) {
      if (event.key === "ArrowLeft") { show(index - 1); event.preventDefault(); }
      if (event.key === "ArrowRight") { show(index + 1); event.preventDefault(); }
    });
    svg.addEventListener("focus", function () { show(index); });
  }

  function all(root) {
    root.querySelectorAll("figure[data-chart]").forEach(function (figure) {
      if (!figure.hasAttribute("data-chart-ready")) {
        figure.setAttribute("data-chart-ready", "");
        setUp(figure);
      }
    });
  }
  // A chart inside [data-chart-refresh] is fetched again when the live counter moves
  // (static/js/live.js fires growalert:live; not for its once-a-minute refresh of the same
  // version), at most one request at a time per chart and
  // one every few seconds: its data (points, incidents, silences) follow without a reload.
  var REFRESH_GAP = 3000;

  function refresh(holder) {
    var now = Date.now();
    if (holder.refreshing) { holder.refreshAgain = true; return; }
    var wait = (holder.refreshedAt || 0) + REFRESH_GAP - now;
    if (wait > 0) {
      if (!holder.refreshTimer) {
        holder.refreshTimer = setTimeout(function () { holder.refreshTimer = null; refresh(holder); }, wait);
      }
      return;
    }
    holder.refreshing = true;
    holder.refreshedAt = now;
    fetch(holder.getAttribute("data-chart-refresh"), {
      credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (!response.ok) throw new Error("chart: HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").body;
      holder.replaceChildren.apply(holder, Array.prototype.map.call(fresh.childNodes, function (node) {
        return document.importNode(node, true);
      }));
      holder.setAttribute("data-chart-version", String((parseInt(holder.getAttribute("data-chart-version"), 10) || 0) + 1));
      all(holder);
    }).catch(function () { /* the chart on screen stays; the next change tries again */ })
      .then(function () {
        holder.refreshing = false;
        if (holder.refreshAgain) { holder.refreshAgain = false; refresh(holder); }
      });
  }

  all(document);
  document.addEventListener("growalert:live", function (event) {
    all(document);
    if (!window.fetch || !window.DOMParser) return;
    if (event.detail && event.detail.changed === false) return;  // a refresh, nothing moved
    document.querySelectorAll("[data-chart-refresh]").forEach(refresh);
  });
})();
