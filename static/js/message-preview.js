/* A channel's page (growalert/pages/channel_page.py): the preview follows the templates as they
   are typed. 400 ms after the last keystroke the form is posted as "Preview" (nothing is
   saved) and the preview and the field errors are taken from the answer. Without JS the
   Preview button does the same with a page load. */
(function () {
  "use strict";
  var form = document.getElementById("message-form");
  var preview = document.querySelector("[data-testid=message-preview]");
  if (!form || !preview || !window.fetch || !window.DOMParser) return;
  var timer = null;
  var asked = 0;

  function swap(fresh, selector) {
    var next = fresh.querySelector(selector);
    var now = document.querySelector(selector);
    if (next && now) now.replaceWith(document.importNode(next, true));
  }

  function ask() {
    var body = new FormData(form);
    body.set("action", "preview");
    var mine = ++asked;
    fetch(form.getAttribute("action") || window.location.pathname, {
      method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "text/html" }
    }).then(function (response) { return response.text(); }).then(function (html) {
      if (mine !== asked) return;  // a later keystroke's answer is on its way
      var fresh = new DOMParser().parseFromString(html, "text/html");
      swap(fresh, "[data-testid=message-preview]");
      ["subject_template", "body_template"].forEach(function (name) {
        var next = fresh.getElementById("id_" + name);
        var field = document.getElementById("id_" + name);
        var errors = next && next.closest(".field") && next.closest(".field").querySelector(".errorlist");
        var shown = field && field.closest(".field") && field.closest(".field").querySelector(".errorlist");
        if (shown) shown.remove();
        if (!field) return;
        if (errors) {
          field.insertAdjacentElement("beforebegin", document.importNode(errors, true));
          field.setAttribute("aria-invalid", "true");
        } else {
          field.removeAttribute("aria-invalid");
        }
      });
    }).catch(function () { /* the Preview button still works */ });
  }

  form.addEventListener("input", function () {
    if (timer) clearTimeout(timer);
    timer = setTimeout(ask, 400);
  });
})();
