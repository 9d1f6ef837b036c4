/* Forms with data-confirm="question" ask before they submit (instead of inline onsubmit=
   handlers, which the Content-Security-Policy forbids). */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);
})();
