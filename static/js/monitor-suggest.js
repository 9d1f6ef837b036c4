// Monitor editor: offers what the chosen source holds (GET /sources/<id>/schema): its
// measurements, and for the measurement typed, its fields and "tag=value" pairs; with "One
// alert per" filled in, which series the fleet monitor would watch now (#series-match).
(function () {
  "use strict";
  var form = document.getElementById("monitor-form");
  if (!form) return;
  var source = form.elements.source, measurement = form.elements.measurement;
  var groupBy = form.elements.group_by, seriesFilter = form.elements.series_filter;
  var fixedTags = form.elements.tags, matchNote = document.getElementById("series-match");
  var lists = {
    measurements: document.getElementById("measurement-suggestions"),
    fields: document.getElementById("field-suggestions"),
    tags: document.getElementById("tag-suggestions")
  };
  var timer = null, asked = "";

  function fill(list, values, keepStatic) {
    if (!list) return;
    Array.prototype.slice.call(list.querySelectorAll("option[data-from-source]")).forEach(
      function (option) { option.remove(); });
    var present = {};
    Array.prototype.forEach.call(list.options, function (o) { present[o.value] = true; });
    values.forEach(function (value) {
      if (present[value]) return;
      var option = document.createElement("option");
      option.value = value;
      option.setAttribute("data-from-source", "");
      option.label = "in this source";
      list.appendChild(option);
    });
    if (!keepStatic) list.setAttribute("data-loaded", "true");
  }

  function keys(text) {
    return (text || "").split(",").map(function (p) { return p.trim(); })
      .filter(function (p) { return p; });
  }

  function pairs(text, many) {  // "a=1, b=2" or, with many, "device=g-*|shed"
    var out = {};
    (text || "").split(many ? /[,\n]/ : ",").forEach(function (part) {
      var i = part.indexOf("=");
      if (i <= 0) return;
      var value = part.slice(i + 1).trim();
      out[part.slice(0, i).trim()] = many ? value.split("|").map(function (v) {
        return v.trim(); }).filter(function (v) { return v; }) : value;
    });
    return out;
  }

  function seriesQuery() {
    var grouped = keys(groupBy ? groupBy.value : "");
    if (!grouped.length) return "";
    return "&group_by=" + encodeURIComponent(grouped.join(",")) +
      "&series_filter=" + encodeURIComponent(JSON.stringify(pairs(seriesFilter && seriesFilter.value, true))) +
      "&tags=" + encodeURIComponent(JSON.stringify(pairs(fixedTags && fixedTags.value, false)));
  }

  function showMatch(found, asking) {
    if (!matchNote) return;
    if (!asking) { matchNote.hidden = true; matchNote.textContent = ""; return; }
    matchNote.hidden = false;
    if (!found) { matchNote.textContent = "Could not list the matching series."; return; }
    var names = found.series.map(function (s) { return s.label; });
    var more = found.matched - names.length;
    matchNote.textContent = found.matched === 0
      ? "Matches no series now."
      : "Matches " + found.matched + " series now: " + names.join(", ") +
        (more > 0 ? " and " + more + " more" : "") + (found.complete ? "" : " (the first 10,000 read)") + ".";
  }

  function ask() {
    if (!source || !source.value) return;
    var grouped = seriesQuery();
    var key = source.value + "|" + (measurement ? measurement.value.trim() : "") + grouped;
    if (key === asked) return;
    asked = key;
    var url = "/sources/" + encodeURIComponent(source.value) + "/schema?measurement=" +
      encodeURIComponent(measurement ? measurement.value.trim() : "") + grouped;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (key !== asked) return;
        var none = { matched: 0, series: [], complete: true };  // no such measurement
        showMatch(data ? data.series || none : null, grouped && measurement && measurement.value.trim());
        if (!data) return;
        fill(lists.measurements, data.measurements || []);
        fill(lists.fields, data.fields || [], true);
        var pairs = [];
        Object.keys(data.tags || {}).forEach(function (tag) {
          (data.tags[tag] || []).forEach(function (value) { pairs.push(tag + "=" + value); });
        });
        fill(lists.tags, pairs);
      })
      .catch(function () { /* suggestions are a help, not a need */ });
  }

  function later() { clearTimeout(timer); timer = setTimeout(ask, 300); }
  if (source) source.addEventListener("change", ask);
  if (measurement) measurement.addEventListener("input", later);
  [groupBy, seriesFilter, fixedTags].forEach(function (input) {
    if (input) input.addEventListener("input", later);
  });
  ask();
})();
