/* Signup (register.html's four steps) and device purchases (account page) with Stripe.js.
   Server calls: GET /config, POST /create-customer, POST /create-subscription, POST /charge.
   A declined card keeps the same subscription and client secret, so retrying never creates a
   second customer or subscription. */
var growalertPayments = (function () {
  "use strict";
  var STRIPE_TIMEOUT_MS = 10000;
  var state = { config: null, notConfigured: false, stripe: null, card: null, stripeFailed: false, onStripe: null,
                subscriptionId: null, clientSecret: null, busy: false };

  function $(id) { return document.getElementById(id); }

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function api(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf() },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function errorOf(result) {
    var error = (result.data && result.data.error) || {};
    return { message: error.message || "Something went wrong (HTTP " + result.status + "). Please try again.",
             code: error.code || "", fields: error.fields || {} };
  }

  function say(text, kind) {
    var box = $("register-status");
    if (!box) return;
    box.hidden = !text;
    box.textContent = text || "";
    box.className = "notice " + (kind || "");
  }

  function money(cents, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: (currency || "usd").toUpperCase() })
        .format((cents || 0) / 100);
    } catch (e) { return ((cents || 0) / 100).toFixed(2) + " " + (currency || "").toUpperCase(); }
  }

  /* --- Stripe.js ------------------------------------------------------------------------ */

  function stripeLoaded() {
    if (state.stripe || !state.config || !state.config.publishableKey) {
      if (!state.config) state.onStripe = stripeLoaded;  // /config not back yet
      return;
    }
    if (typeof window.Stripe !== "function") { stripeFailed(); return; }
    state.stripe = window.Stripe(state.config.publishableKey);
    state.card = state.stripe.elements().create("card", { hidePostalCode: false });
    state.card.mount("#card-element");
    if (state.card.on) {
      state.card.on("change", function (event) {
        var box = $("card-errors") || $("charge-message");
        if (box) box.textContent = event.error ? event.error.message : "";
      });
    }
  }

  function stripeFailed() {
    state.stripeFailed = true;
    if (state.stripe || state.notConfigured) return;  // that message says more
    var text = "The payment form could not load (Stripe.js did not load from js.stripe.com). " +
      "Check your connection or any content blocker, then reload the page.";
    say(text, "error");
    var box = $("card-errors") || $("charge-message");
    if (box) box.textContent = text;
    var pay = $("pay") || $("charge-submit");
    if (pay) pay.disabled = true;
  }

  /* Stripe.js is added from here (not by a <script onload=...> tag: the Content-Security-Policy
     allows no inline handlers); js.stripe.com is allowed on the pages that load this file. */
  function watchStripe() {
    var script = document.createElement("script");
    script.src = "https://js.stripe.com/v3/";
    script.async = true;
    script.addEventListener("load", stripeLoaded);
    script.addEventListener("error", stripeFailed);
    document.head.appendChild(script);
    setTimeout(function () { if (!state.stripe && !window.Stripe) stripeFailed(); }, STRIPE_TIMEOUT_MS);
  }

  function loadConfig() {
    return api("GET", "/config").then(function (result) {
      if (!result.ok || !result.data.configured) {
        state.notConfigured = true;
        say("Payments are not available: Stripe is not configured on this server. " +
            "Please contact the administrator.", "error");
        document.querySelectorAll("#register button, #charge-submit").forEach(function (b) { b.disabled = true; });
        return null;
      }
      state.config = result.data;
      if (state.onStripe || window.Stripe) stripeLoaded();
      return state.config;
    }, function () {
      say("The server could not be reached. Check your connection and reload the page.", "error");
    });
  }

  /* --- register.html ---------------------------------------------------------------------- */

  function show(step) {
    document.querySelectorAll("#register section[data-step]").forEach(function (s) {
      s.hidden = s.dataset.step !== String(step);
    });
    document.querySelectorAll(".steps li").forEach(function (li) {
      if (li.dataset.step === String(step)) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    var heading = $("s" + step);
    if (heading) { heading.tabIndex = -1; heading.focus(); }
    if (step === 4) summarise();
  }

  function plans() {
    var prices = (state.config.prices || []).filter(function (p) { return p.type === "recurring" || p.recurring; });
    var box = $("plans");
    box.textContent = "";
    prices.forEach(function (price, i) {
      var label = document.createElement("label");
      label.className = "plan";
      var input = document.createElement("input");
      input.type = "radio"; input.name = "plan"; input.value = price.id; input.checked = i === 0;
      label.appendChild(input);
      var name = (price.product && price.product.name) || price.nickname || "growalert";
      label.appendChild(document.createTextNode(name + " — " + money(price.unit_amount, price.currency) + " per " +
        ((price.recurring && price.recurring.interval) || "month")));
      box.appendChild(label);
    });
    if (!prices.length) box.textContent = "No plan is on sale at the moment.";
    var device = devicePrice();
    $("device-price").textContent = device ? money(device.unit_amount, device.currency) + " each, billed once" :
      "Devices are not on sale at the moment.";
  }

  function devicePrice() {
    var id = state.config && state.config.devicePriceId;
    return (state.config.prices || []).filter(function (p) { return p.id === id; })[0] || null;
  }

  function chosenPlan() {
    var checked = document.querySelector("input[name=plan]:checked");
    return checked ? (state.config.prices || []).filter(function (p) { return p.id === checked.value; })[0] : null;
  }

  function quantity() { return parseInt($("quantity").value || "0", 10); }

  function summarise() {
    var plan = chosenPlan(), device = devicePrice(), n = quantity();
    var text = "Monthly plan " + money(plan.unit_amount, plan.currency);
    var total = plan.unit_amount;
    if (n > 0 && device) {
      text += " + " + n + " GRO-01 device" + (n === 1 ? "" : "s") + " " + money(device.unit_amount * n, device.currency);
      total += device.unit_amount * n;
    }
    $("order-summary").textContent = text + ". Due today: " + money(total, plan.currency) + ".";
  }

  function fieldError(id, text) {
    var box = $(id + "-error");
    var input = $(id);
    if (box) box.textContent = text || "";
    if (input) { if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid"); }
  }

  function account(form) {
    if (form.dataset.signedIn === "true" && form.dataset.hasCustomer === "true") return Promise.resolve(true);
    var body = {};
    if (form.dataset.signedIn !== "true") {
      body = { email: $("email").value.trim(), password: $("password").value, name: $("name").value.trim() };
      fieldError("email", body.email ? "" : "Enter your email address.");
      fieldError("password", body.password ? "" : "Choose a password.");
      if (!body.email || !body.password) return Promise.resolve(false);
    }
    return api("POST", "/create-customer", body).then(function (result) {
      if (result.ok) {
        form.dataset.signedIn = "true"; form.dataset.hasCustomer = "true";
        form.dataset.email = body.email || form.dataset.email;
        var token = result.data && document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
        if (token) form.querySelector("input[name=csrfmiddlewaretoken]").value = decodeURIComponent(token[1]);
        return true;
      }
      var error = errorOf(result);
      if (error.code === "email_taken") fieldError("email", error.message);
      else if (error.code === "weak_password") fieldError("password", error.message);
      else if (error.fields.email) fieldError("email", [].concat(error.fields.email).join(" "));
      else if (error.fields.password) fieldError("password", [].concat(error.fields.password).join(" "));
      else say(error.message, "error");
      return false;
    });
  }

  function next(form, step) {
    say("");
    if (step === 1) {
      return account(form).then(function (ok) { if (ok) show(2); });
    }
    if (step === 2) {
      if (!chosenPlan()) { say("Choose a plan.", "error"); return; }
      show(3);
      return;
    }
    var n = quantity(), max = parseInt($("quantity").max, 10);
    if (isNaN(n) || n < 0 || n > max) {
      $("quantity").setAttribute("aria-invalid", "true");
      say("Choose between 0 and " + max + " devices.", "error");
      return;
    }
    $("quantity").removeAttribute("aria-invalid");
    show(4);
  }

  function subscription() {
    if (state.clientSecret) return Promise.resolve(state.clientSecret);
    return api("POST", "/create-subscription", { priceId: chosenPlan().id, quantity: quantity() })
      .then(function (result) {
        if (!result.ok) {
          var error = errorOf(result);
          if (error.code === "already_subscribed") { window.location.assign("/app/"); }
          throw new Error(error.message);
        }
        state.subscriptionId = result.data.subscriptionId;
        state.clientSecret = result.data.clientSecret;
        // The order is fixed from here on: a retry pays this same subscription.
        document.querySelectorAll("[data-back='4']").forEach(function (b) { b.hidden = true; });
        return state.clientSecret;
      });
  }

  function pay(form) {
    if (state.busy) return;
    var errors = $("card-errors");
    if (!state.stripe) {
      errors.textContent = state.stripeFailed ? "The payment form could not load. Reload the page to try again." :
        "The payment form is still loading. Please wait a moment.";
      return;
    }
    state.busy = true;
    $("pay").disabled = true;
    errors.textContent = "";
    say("Processing your payment…");
    subscription().then(function (secret) {
      return state.stripe.confirmCardPayment(secret, {
        payment_method: { card: state.card, billing_details: { email: form.dataset.email || undefined } }
      });
    }).then(function (result) {
      if (result.error) {
        say("");
        errors.textContent = result.error.message + " You can try again with another card.";
        $("pay").textContent = "Try again";
        return;
      }
      if (result.paymentIntent && result.paymentIntent.status === "succeeded") {
        say("Payment received. Taking you to your dashboard…", "success");
        window.location.assign("/app/?welcome=1");
        return;
      }
      say("");
      errors.textContent = "The payment was not completed. Please try again.";
    }).catch(function (error) {
      say("");
      errors.textContent = error.message || "The payment could not be started. Please try again.";
    }).then(function () {
      state.busy = false;
      $("pay").disabled = false;
    });
  }

  function register() {
    var form = $("register");
    watchStripe();
    loadConfig().then(function (config) { if (config) plans(); });
    form.addEventListener("click", function (event) {
      var target = event.target;
      if (target.dataset.next) next(form, parseInt(target.dataset.next, 10));
      if (target.dataset.back) show(parseInt(target.dataset.back, 10) - 1);
    });
    form.addEventListener("keydown", function (event) {
      var section = event.target.closest && event.target.closest("section[data-step]");
      if (event.key === "Enter" && section && section.dataset.step !== "4" && event.target.tagName === "INPUT") {
        event.preventDefault();
        next(form, parseInt(section.dataset.step, 10));
      }
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); pay(form); });
  }

  /* --- account page: buy more devices (/charge) ------------------------------------------ */

  function charge() {
    var form = $("charge-form");
    if (!form) return;
    var message = $("charge-message");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!state.stripe) { message.textContent = "The payment form is not ready."; return; }
      $("charge-submit").disabled = true;
      message.textContent = "Processing…";
      state.stripe.createToken(state.card).then(function (result) {
        if (result.error) throw new Error(result.error.message);
        return api("POST", "/charge", { token: result.token.id, quantity: parseInt($("charge-quantity").value, 10) });
      }).then(function (result) {
        if (!result.ok) throw new Error(errorOf(result).message);
        if (result.data.requiresAction) {
          return state.stripe.handleCardAction(result.data.clientSecret).then(function (action) {
            if (action.error) throw new Error(action.error.message);
            message.textContent = "Payment authenticated. Your devices appear here once Stripe confirms it.";
          });
        }
        message.textContent = "Payment received. Thank you!";
        window.location.reload();
      }).catch(function (error) {
        message.textContent = error.message;
      }).then(function () { $("charge-submit").disabled = false; });
    });
  }

  function accountPage() {
    watchStripe();
    loadConfig();
    charge();
  }

  return { register: register, stripeLoaded: stripeLoaded, stripeFailed: stripeFailed,
           charge: function () { stripeLoaded(); }, account: accountPage };
})();

/* <script src="payments.js" data-page="register|account"> starts that page's part. */
(function () {
  "use strict";
  var script = document.currentScript;
  var page = script && script.getAttribute("data-page");
  if (page === "register" || page === "account") growalertPayments[page]();
})();
