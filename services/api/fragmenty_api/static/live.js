/* Shared by every page: the page's config, escaping, and live events from the notifier.
 * Pages work without the notifier: the socket retries with backoff and the badge says offline. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const seen = new Set();

  /* Plotly reads a small HTML subset in labels; scraped text must never become markup. */
  function escapeLabel(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function setLive(on) {
    const badge = document.getElementById("live-status");
    if (!badge) return;
    badge.className = on ? "live on" : "live off";
    badge.textContent = on ? "live" : "offline";
  }

  function timeLeftText(endsAt, now) {
    if (!endsAt) return "no end";
    const ms = new Date(endsAt) - now;
    if (ms <= 0) return "ended";
    const hours = ms / 3600000;
    if (hours < 1) return Math.max(1, Math.round(ms / 60000)) + " min left";
    if (hours < 48) return Math.round(hours) + " h left";
    return Math.round(hours / 24) + " days left";
  }

  /* Subscribe on the notifier's /ws and call onEvent(PriceEvent) once per event_id. */
  function connect(filter, onEvent) {
    if (!config.notifierUrl || typeof WebSocket === "undefined") return;
    let delay = 1000;
    function open() {
      let socket;
      try {
        socket = new WebSocket(config.notifierUrl);
      } catch (error) {
        retry();
        return;
      }
      socket.addEventListener("open", function () {
        delay = 1000;
        setLive(true);
        socket.send(JSON.stringify({ action: "subscribe", id: "page", filter: filter }));
      });
      socket.addEventListener("message", function (message) {
        let frame;
        try {
          frame = JSON.parse(message.data);
        } catch (error) {
          return;
        }
        if (!frame || frame.type !== "event" || !frame.event || !frame.event.event_id) return;
        if (seen.has(frame.event.event_id)) return;
        seen.add(frame.event.event_id);
        if (seen.size > 5000) seen.clear();
        onEvent(frame.event);
      });
      socket.addEventListener("close", function () {
        setLive(false);
        retry();
      });
    }
    function retry() {
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 60000);
    }
    open();
  }

  window.Fragmenty = { config: config, connect: connect, escapeLabel: escapeLabel, timeLeftText: timeLeftText };
})();
