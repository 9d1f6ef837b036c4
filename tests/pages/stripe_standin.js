/* A stand-in for https://js.stripe.com/v3/ in browser tests (tests only).

   Implements the few Stripe.js calls growalert's pages use: Stripe(key), elements(),
   create("card"), mount, on("change"), confirmCardPayment, createToken, handleCardAction.
   The card "element" is a plain input. Like the real Stripe.js it talks to api.stripe.com,
   which the test routes to Python (tests/pages/conftest.py) playing Stripe's part against
   FakeStripe; a card needing 3-D Secure opens a challenge dialog the test completes or fails. */
(function () {
  "use strict";
  var API = "https://api.stripe.com/v1";

  function post(path, body) {
    // text/plain keeps it a "simple" cross-origin request (no preflight)
    return fetch(API + path, { method: "POST", headers: { "Content-Type": "text/plain" },
                               body: JSON.stringify(body) })
      .then(function (response) { return response.json(); });
  }

  function cardElement() {
    var input = null, handlers = [];
    return {
      mount: function (selector) {
        var host = typeof selector === "string" ? document.querySelector(selector) : selector;
        input = document.createElement("input");
        input.className = "card-input";
        input.name = "cardnumber";
        input.setAttribute("aria-label", "Card number");
        input.setAttribute("autocomplete", "cc-number");
        input.setAttribute("data-testid", "card-number");
        input.addEventListener("input", function () {
          handlers.forEach(function (fn) { fn({ complete: number().length >= 16, error: undefined }); });
        });
        host.appendChild(input);
      },
      on: function (event, fn) { if (event === "change") handlers.push(fn); },
      number: number
    };
    function number() { return input ? input.value.replace(/\s+/g, "") : ""; }
  }

  function challenge() {
    return new Promise(function (resolve) {
      var dialog = document.createElement("div");
      dialog.setAttribute("role", "dialog");
      dialog.setAttribute("aria-modal", "true");
      dialog.setAttribute("aria-label", "3D Secure authentication");
      dialog.setAttribute("data-testid", "three-d-secure");
      dialog.style.cssText = "position:fixed;inset:20% 10%;background:#fff;border:2px solid #333;padding:1rem;z-index:1000";
      dialog.innerHTML = "<h2>3D Secure 2 Test Page</h2><p>Complete or fail the authentication.</p>";
      [["Complete authentication", true], ["Fail authentication", false]].forEach(function (pair) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = pair[0];
        button.addEventListener("click", function () { dialog.remove(); resolve(pair[1]); });
        dialog.appendChild(button);
      });
      document.body.appendChild(dialog);
    });
  }

  function Stripe(key) {
    if (!/^pk_/.test(key || "")) throw new Error("Stripe(): invalid publishable key " + key);
    return {
      elements: function () { return { create: function () { return cardElement(); } }; },
      confirmCardPayment: function (secret, data) {
        var card = data && data.payment_method && data.payment_method.card;
        var body = { client_secret: secret, number: card ? card.number() : "" };
        return post("/payment_intents/confirm", body).then(function (result) {
          if (result.error) return { error: result.error };
          if (result.status !== "requires_action") return { paymentIntent: result };
          return challenge().then(function (passed) {
            body.three_d_secure = passed ? "pass" : "fail";
            return post("/payment_intents/confirm", body);
          }).then(function (second) {
            return second.error ? { error: second.error } : { paymentIntent: second };
          });
        });
      },
      createToken: function (card) {
        return post("/tokens", { number: card.number() }).then(function (result) {
          return result.error ? { error: result.error } : { token: result };
        });
      },
      handleCardAction: function (secret) {
        return challenge().then(function (passed) {
          return passed ? { paymentIntent: { client_secret: secret, status: "requires_confirmation" } } :
            { error: { type: "card_error", message: "Authentication failed." } };
        });
      }
    };
  }

  window.Stripe = Stripe;
})();
