/* Monitor editor live preview: posts the form as the API's JSON to POST /monitors/preview
   (a 24 h backtest) and draws the series, the thresholds and every would-be firing as SVG. */
(function () {
  "use strict";
  var form = document.getElementById("monitor-form");
  if (!form) return;
  var summary = document.getElementById("preview-summary");
  var holder = document.getElementById("preview-chart");
  var SVG = "http://www.w3.org/2000/svg";
  var UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  var timer = null;
  var generation = 0;

  function seconds(text) {
    text = (text || "").trim().toLowerCase().replace(/\s+/g, "");
    if (!text) return null;
    if (/^\d+(\.\d+)?$/.test(text)) return parseFloat(text);
    var total = 0, rest = text.replace(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g, function (_, n, u) {
      total += parseFloat(n) * UNITS[u];
      return "";
    });
    return rest ? NaN : total;
  }

  function tags(text) {
    var out = {};
    (text || "").split(/[,\n]/).forEach(function (part) {
      part = part.trim();
      if (!part) return;
      var i = part.indexOf("=");
      if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    });
    return out;
  }

  function list(text) {
    return (text || "").split(",").map(function (p) { return p.trim(); })
      .filter(function (p) { return p; });
  }

  function choices(text) {
    var out = {};
    (text || "").split(/[,\n]/).forEach(function (part) {
      var i = part.indexOf("=");
      if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).split("|")
        .map(function (v) { return v.trim(); }).filter(function (v) { return v; });
    });
    return out;
  }

  function value(name) {
    var el = form.elements[name];
    return el ? el.value : "";
  }

  function number(name) {
    var v = value(name).trim();
    return v === "" ? null : Number(v);
  }

  function payload() {
    var body = {
      name: value("name") || "preview",
      source: value("source") ? Number(value("source")) : null,
      measurement: value("measurement"),
      field: value("field"),
      tags: tags(value("tags")),
      group_by: list(value("group_by")),
      series_filter: choices(value("series_filter")),
      aggregation: value("aggregation"),
      percentile: number("percentile"),
      comparator: value("comparator"),
      critical: number("critical"),
      critical_high: number("critical_high"),
      warning: number("warning"),
      warning_high: number("warning_high"),
      recovery: number("recovery"),
      lights_on: value("lights_on") || null,
      lights_off: value("lights_off") || null,
      night_critical: number("night_critical"),
      night_critical_high: number("night_critical_high"),
      night_warning: number("night_warning"),
      night_warning_high: number("night_warning_high"),
      night_recovery: number("night_recovery"),
      pending_for: value("pending_for").trim() || "1",  // checks, or a duration like 10m
      recover_after: number("recover_after") || 1,
      no_data_policy: value("no_data_policy"),
      error_policy: value("error_policy"),
      flap_detection: !!(form.elements.flap_detection && form.elements.flap_detection.checked),
      hours: 24
    };
    ["window", "interval", "repeat_every"].forEach(function (name) {
      var s = seconds(value(name));
      if (s !== null && !isNaN(s)) body[name] = String(s);
    });
    return body;
  }

  function ready(body) {
    return body.source && body.measurement && body.field && body.critical !== null &&
      !isNaN(body.critical) && body.window && body.interval;
  }

  function csrf() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function el(name, attrs) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function drawSeries(rows) {
    var list = document.createElement("ol");
    list.className = "preview-series";
    rows.slice(0, 50).forEach(function (s) {
      var item = document.createElement("li");
      item.dataset.series = s.key;
      item.textContent = (s.label || s.key) + ": " + (s.fired === 1 ? "fired once" : s.fired ? "fired " + s.fired + " times" : "never fired");
      list.appendChild(item);
    });
    holder.appendChild(list);
  }

  function draw(result, body) {
    holder.textContent = "";
    if (result.per_series) { drawSeries(result.per_series); return; }
    var points = result.series || [];
    if (!points.length) {
      holder.innerHTML = '<div class="chart chart-empty">No data in the last 24 hours</div>';
      return;
    }
    var W = 600, H = 180;
    var lines = [["critical", body.critical], ["critical", body.critical_high],
                 ["warning", body.warning], ["warning", body.warning_high]]
      .filter(function (l) { return l[1] !== null && !isNaN(l[1]); });
    var ts = points.map(function (p) { return p.time; });
    var vs = points.map(function (p) { return p.value; }).concat(lines.map(function (l) { return l[1]; }));
    var t0 = Math.min.apply(null, ts), t1 = Math.max.apply(null, ts);
    if (t1 === t0) { t0 -= 60000; t1 += 60000; }
    var lo = Math.min.apply(null, vs), hi = Math.max.apply(null, vs);
    var pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
    lo -= pad; hi += pad;
    function x(t) { return ((t - t0) / (t1 - t0) * W).toFixed(2); }
    function y(v) { return (H - (v - lo) / (hi - lo) * H).toFixed(2); }
    var fired = (result.events || []).filter(function (e) { return e.kind === "fired"; });
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img",
      "aria-label": "Backtest: " + points.length + " points, fired " + fired.length + " times",
      "data-fired": String(fired.length) });
    var firing = null;
    (result.evaluations || []).forEach(function (e, i, all) {
      if (e.status === "firing" && firing === null) firing = e.time;
      var end = e.status !== "firing" || i === all.length - 1;
      if (firing !== null && end) {
        svg.appendChild(el("rect", { "class": "band band-critical", x: x(firing), y: 0,
          width: Math.max(x(e.time) - x(firing), 1), height: H }));
        firing = null;
      }
    });
    lines.forEach(function (l) {
      var line = el("line", { "class": "threshold threshold-" + l[0], x1: 0, x2: W, y1: y(l[1]), y2: y(l[1]) });
      svg.appendChild(line);
    });
    (result.events || []).forEach(function (e) {
      if (e.kind !== "fired" && e.kind !== "resolved" && e.kind !== "flapping_started") return;
      svg.appendChild(el("line", { "class": "mark mark-" + e.kind, "data-kind": e.kind,
        x1: x(e.time), x2: x(e.time), y1: 0, y2: H }));
    });
    svg.appendChild(el("polyline", { "class": "series", "vector-effect": "non-scaling-stroke",
      points: points.map(function (p) { return x(p.time) + "," + y(p.value); }).join(" ") }));
    var figure = document.createElement("figure");
    figure.className = "chart";
    figure.appendChild(svg);
    var caption = document.createElement("figcaption");
    caption.className = "chart-legend";
    caption.textContent = "red dashed: critical · orange: warning · red marks: would have fired · green marks: resolved";
    figure.appendChild(caption);
    holder.appendChild(figure);
  }

  function describe(status, data) {
    if (status === 402) return "An active subscription is required to preview monitors.";
    if (data && typeof data === "object") {
      return Object.keys(data).map(function (k) {
        var v = data[k];
        return (k === "non_field_errors" || k === "detail" ? "" : k + ": ") + (Array.isArray(v) ? v.join(" ") : v);
      }).join("; ");
    }
    return "The preview is unavailable right now.";
  }

  function refresh() {
    var body = payload();
    if (!ready(body)) return;
    var mine = ++generation;
    summary.textContent = "Replaying the last 24 hours…";
    fetch(form.dataset.previewUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(), "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return [response.status, data]; },
                                   function () { return [response.status, null]; });
    }).then(function (pair) {
      if (mine !== generation) return;  // a newer edit already asked again
      var status = pair[0], data = pair[1];
      if (status !== 200) { summary.textContent = describe(status, data); holder.textContent = ""; return; }
      var s = data.summary || {};
      summary.textContent = data.error ? "Preview failed: " + data.error :
        "Over the last 24 hours this monitor " + s.text + " (" + s.fired + " fired, " +
        s.resolved + " resolved, " + s.flapped + " flapped).";
      summary.dataset.fired = String(s.fired);
      draw(data, body);
    }).catch(function () {
      if (mine === generation) summary.textContent = "The preview is unavailable right now.";
    });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  refresh();
})();
