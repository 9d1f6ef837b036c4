// Monitor editor: offers what the chosen source holds (GET /sources/<id>/schema): its
// measurements, and for the measurement typed, its fields and "tag=value" pairs.
(function () {
  "use strict";
  var form = document.getElementById("monitor-form");
  if (!form) return;
  var source = form.elements.source, measurement = form.elements.measurement;
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

  function ask() {
    if (!source || !source.value) return;
    var key = source.value + "|" + (measurement ? measurement.value.trim() : "");
    if (key === asked) return;
    asked = key;
    var url = "/sources/" + encodeURIComponent(source.value) + "/schema?measurement=" +
      encodeURIComponent(measurement ? measurement.value.trim() : "");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data || key !== asked) return;
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
  ask();
})();
