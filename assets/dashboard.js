// Tollgate dashboard: live refresh and admin actions. Plain script, no build step.
//
// Live refresh: the server sends an `update` event (Server-Sent Events) when something of the
// installation changes; the page then fetches itself and swaps in the new `#live` section. When
// the event stream is unavailable or broken, the page polls instead until the stream is back.
//
// Admin actions: a `<button data-action="URL">` POSTs to the JSON API with the session's CSRF
// token (from `<meta name="csrf-token">`); `data-prompt` asks for a reason first, sent as
// `{"reason": ...}`; `data-confirm` asks for confirmation.
(function () {
  "use strict";
  var POLL_MS = 15000;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var eventsUrl = document.body.getAttribute("data-events");
  var pollTimer = null;
  var refreshTimer = null;

  function refresh() {
    var live = document.getElementById("live");
    if (!live) return;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (next && next.innerHTML !== live.innerHTML) {
          live.innerHTML = next.innerHTML;
          live.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the next event or poll tries again */ });
  }

  // Several changes in a burst make one refresh.
  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, 250);
  }

  function startPolling() {
    if (!pollTimer) pollTimer = setInterval(refresh, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  var source = null;

  function connect() {
    if (!window.EventSource) {
      startPolling();
      document.body.setAttribute("data-live", "polling");
      return;
    }
    source = new EventSource(eventsUrl);
    source.addEventListener("update", scheduleRefresh);
    source.onopen = function () {
      stopPolling();
      document.body.setAttribute("data-live", "stream");
    };
    source.onerror = function () {
      startPolling();
      document.body.setAttribute("data-live", "polling");
    };
  }

  if (eventsUrl && document.getElementById("live")) {
    connect();
    // A page left for another must not keep its stream open: browsers allow few connections
    // per host, and a page kept in the back-forward cache would hold one.
    window.addEventListener("pagehide", function () {
      if (source) { source.close(); source = null; }
      stopPolling();
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted && !source) { connect(); refresh(); }
    });
  }

  function say(text, failed) {
    var status = document.getElementById("action-status");
    if (!status) return;
    status.textContent = text;
    status.className = failed ? "failed" : "done";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-action]") : null;
    if (!button) return;
    event.preventDefault();
    var body = {};
    if (button.getAttribute("data-prompt")) {
      var reason = window.prompt(button.getAttribute("data-prompt"));
      if (reason === null) return;
      body.reason = reason;
    }
    if (button.getAttribute("data-confirm") && !window.confirm(button.getAttribute("data-confirm"))) return;
    button.disabled = true;
    fetch(button.getAttribute("data-action"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (response.ok) {
            say(button.getAttribute("data-done") || "Done.", false);
          } else {
            say(answer.error || ("Failed (" + response.status + ")"), true);
          }
        });
      })
      .catch(function () { say("Tollgate could not be reached.", true); })
      .then(function () { button.disabled = false; refresh(); });
  });
})();
