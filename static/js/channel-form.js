// The channels page: "Send to" explains what the chosen kind takes (all kinds show without JS).
(function () {
  "use strict";
  var kind = document.getElementById("id_kind");
  var help = document.getElementById("kind-help");
  if (!kind || !help) return;
  function show() {
    help.querySelectorAll("[data-help-kind]").forEach(function (item) {
      item.hidden = item.getAttribute("data-help-kind") !== kind.value;
    });
  }
  kind.addEventListener("change", show);
  show();
})();
