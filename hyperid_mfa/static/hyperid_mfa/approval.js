/*
 * The approval page of django-hyperid-mfa. Loaded as a static file (no inline
 * script), configured by the JSON in #hyperid-mfa-config.
 *
 * While the request is pending it polls config.statusUrl at the interval the server
 * asks for, backing off on errors. On approval it submits #hyperid-mfa-resubmit,
 * which carries the original request's method, URL and fields (and a fresh CSRF
 * token), so the gated view runs; where the server gave no URL (a request a form
 * cannot repeat) it asks the user to send the request again instead. On denial, expiry
 * or cancel it says so in the heading, takes the code away, and offers "Try again",
 * which sends the original request again (a new push), and "Back", to the page the
 * user came from. "Try again" waits for as long as the server says a new push would
 * be refused (the cooldown after a denial, the push limit, a Retry-After), counting
 * down, so that it never leads to a page that only says to wait.
 */
(function () {
  "use strict";

  var configElement = document.getElementById("hyperid-mfa-config");
  var root = document.getElementById("hyperid-mfa");
  if (!configElement || !root) {
    return;
  }
  var config = JSON.parse(configElement.textContent);
  var messages = config.messages || {};
  var statusElement = document.getElementById("hyperid-mfa-status");
  var form = document.getElementById("hyperid-mfa-resubmit");
  var retryButton = document.getElementById("hyperid-mfa-retry");
  var cancelButton = document.getElementById("hyperid-mfa-cancel");
  var backLink = document.getElementById("hyperid-mfa-back");
  var heading = document.getElementById("hyperid-mfa-heading");
  var matching = document.getElementById("hyperid-mfa-matching");
  var countdownElement = document.getElementById("hyperid-mfa-countdown");

  var MAX_DELAY = 30000;
  // The server's interval, never below a quarter second whatever it says.
  var MIN_DELAY = 250;
  var baseDelay = Math.max(MIN_DELAY, (Number(config.pollInterval) || 0.5) * 1000);
  var delay = baseDelay;
  var finished = false;
  var timer = null;
  var countdownTimer = null;

  function show(state, text) {
    root.setAttribute("data-state", state);
    if (statusElement && text) {
      statusElement.textContent = text;
    }
  }

  function csrfToken() {
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) {
      return input.value;
    }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function clock(seconds) {
    var rest = seconds % 60;
    return Math.floor(seconds / 60) + ":" + (rest < 10 ? "0" : "") + rest;
  }

  // Keep "Try again" disabled for `seconds`, saying how long is left each second.
  function countDown(seconds) {
    if (countdownTimer) {
      clearInterval(countdownTimer);
    }
    var end = Date.now() + seconds * 1000;
    function tick() {
      var left = Math.ceil((end - Date.now()) / 1000);
      if (left > 0) {
        countdownElement.textContent = (messages.retryIn || "").replace("%(time)s", clock(left));
        return;
      }
      clearInterval(countdownTimer);
      countdownTimer = null;
      countdownElement.textContent = messages.retryNow || "";
      if (retryButton) {
        retryButton.disabled = false;
      }
    }
    if (retryButton) {
      retryButton.disabled = true;
    }
    if (countdownElement) {
      countdownElement.hidden = false;
      tick();
      countdownTimer = setInterval(tick, 1000);
    } else {
      setTimeout(function () {
        if (retryButton) {
          retryButton.disabled = false;
        }
      }, seconds * 1000);
    }
  }

  function offerRetry(retryAfter) {
    if (cancelButton) {
      cancelButton.hidden = true;
    }
    if (retryButton) {
      retryButton.hidden = false;
    }
    if (Number(retryAfter) > 0) {
      countDown(Math.ceil(Number(retryAfter)));
    }
  }

  function finish(state, retryAfter) {
    finished = true;
    if (timer) {
      clearTimeout(timer);
    }
    show(state, messages[state] || state);
    // Ended without approval: say so where the page asked to approve, take the code
    // away (there is nothing left to match), and offer a way back.
    if (heading && messages[state + "Title"]) {
      heading.textContent = messages[state + "Title"];
    }
    if (matching) {
      matching.hidden = true;
    }
    if (backLink) {
      backLink.hidden = false;
    }
    offerRetry(retryAfter);
  }

  function resubmit() {
    finished = true;
    if (!config.resubmit || !config.resubmit.url) {
      // A request a form cannot repeat: the user sends it again from where it came.
      show("approved", messages.sendAgain);
      offerRetry();
      if (backLink) {
        backLink.hidden = false;
      }
      return;
    }
    if (config.resubmit.has_files) {
      // Files cannot be put back into a form by a script: the user submits again.
      show("approved", messages.filesLost);
      offerRetry();
      return;
    }
    show("approved", messages.approved);
    form.submit();
  }

  function schedule() {
    if (!finished) {
      timer = setTimeout(poll, delay);
    }
  }

  function poll() {
    fetch(config.statusUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (data.poll_interval) {
          baseDelay = Math.max(MIN_DELAY, Number(data.poll_interval) * 1000);
        }
        delay = baseDelay;
        if (data.state === "approved") {
          resubmit();
        } else if (data.state === "pending") {
          show("pending", messages.pending);
          schedule();
        } else {
          finish(data.state, data.retry_after);
        }
      })
      .catch(function () {
        show("error", messages.error);
        delay = Math.min(delay * 2, MAX_DELAY);
        schedule();
      });
  }

  function cancel() {
    cancelButton.disabled = true;
    fetch(config.cancelUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    })
      .then(function (response) {
        if (response.ok) {
          return response
            .json()
            .catch(function () {
              return {};
            })
            .then(function (data) {
              finish("canceled", data.retry_after);
            });
        }
        if (response.status !== 409) {
          throw new Error("HTTP " + response.status);
        }
        // Too late to cancel: the request finished another way, which the body says.
        return response.json().then(function (data) {
          if (data.state === "approved") {
            resubmit();
          } else {
            finish(data.state || "canceled", data.retry_after);
          }
        });
      })
      .catch(function () {
        cancelButton.disabled = false;
        show("error", messages.cancelFailed);
      });
  }

  if (retryButton && retryButton.type === "button") {
    retryButton.addEventListener("click", function () {
      form.submit();
    });
  }
  if (config.retryAfter) {
    // Wait as long as the server asked before offering to try again.
    countDown(Math.ceil(Number(config.retryAfter)));
  }
  if (cancelButton && config.cancelUrl) {
    cancelButton.addEventListener("click", cancel);
  }
  if (config.state === "pending" && config.statusUrl) {
    schedule();
  }
})();
