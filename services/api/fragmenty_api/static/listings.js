/* The listings table: a sparkline of recent prices per row, time left that counts down, and
 * rows that follow the notifier's events (price, status, end) without a reload. */
(function () {
  "use strict";

  const F = window.Fragmenty;
  const table = document.getElementById("listings");
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_PRICES = 20;

  function drawSparkline(svg) {
    let prices = (svg.dataset.prices || "").split(" ").filter(Boolean).map(Number);
    // One known price is a flat line: no change seen yet.
    if (prices.length === 1) prices = [prices[0], prices[0]];
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (prices.length === 0) return;
    const low = Math.min.apply(null, prices);
    const high = Math.max.apply(null, prices);
    const y = function (p) { return high === low ? 12 : 21 - ((p - low) / (high - low)) * 18; };
    const x = function (i) { return prices.length === 1 ? 50 : 3 + (i / (prices.length - 1)) * 94; };
    if (prices.length > 1) {
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", prices.map(function (p, i) { return x(i) + "," + y(p); }).join(" "));
      line.setAttribute("class", "spark-line");
      svg.appendChild(line);
    }
    const last = document.createElementNS(SVG, "circle");
    last.setAttribute("cx", x(prices.length - 1));
    last.setAttribute("cy", y(prices[prices.length - 1]));
    last.setAttribute("r", 2.2);
    last.setAttribute("class", "spark-dot");
    svg.appendChild(last);
    const title = document.createElementNS(SVG, "title");
    title.textContent = prices.map(function (p) { return p.toLocaleString("en-US"); }).join(" → ") + " TON";
    svg.appendChild(title);
  }

  function refreshTimeLeft(now) {
    table.querySelectorAll("td.time-left[data-ends-at]").forEach(function (cell) {
      if (cell.dataset.endsAt) cell.textContent = F.timeLeftText(cell.dataset.endsAt, now);
    });
  }

  function grouped(text) {
    const parts = String(text).split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }

  function apply(event) {
    const row = table.querySelector('tr[data-id="' + event.asset + ":" + event.slug + '"]');
    if (!row) return;
    const state = event.new;
    const status = row.querySelector("td.status");
    if (event.type === "delisted" || !state) {
      status.textContent = status.textContent.replace(/ \(delisted\)$/, "") + " (delisted)";
    } else {
      status.textContent = state.status;
      status.className = "status status-" + state.status;
      row.querySelector("td.price").textContent = grouped(state.price_ton);
      row.querySelector("td.usd").textContent =
        state.price_usd === null || state.price_usd === undefined ? "" : "$" + grouped(state.price_usd);
      const cell = row.querySelector("td.time-left");
      cell.dataset.endsAt = state.status === "sold" ? "" : state.ends_at || "";
      cell.textContent = state.status === "sold" ? "sold" : F.timeLeftText(state.ends_at || null, new Date());
      const svg = row.querySelector("svg.spark");
      const prices = (svg.dataset.prices || "").split(" ").filter(Boolean);
      prices.push(String(state.price_ton));
      svg.dataset.prices = prices.slice(-MAX_PRICES).join(" ");
      drawSparkline(svg);
    }
    row.classList.remove("updated");
    void row.offsetWidth;  // restart the highlight
    row.classList.add("updated");
    table.dataset.liveEvents = String(Number(table.dataset.liveEvents || 0) + 1);
  }

  /* Blank fields are "not set": leave them out of the URL, so it stays short and shareable. */
  const form = document.getElementById("listing-filters");
  form.addEventListener("submit", function () {
    Array.from(form.elements).forEach(function (field) {
      if ((field.tagName === "INPUT" && field.type !== "checkbox") || field.tagName === "SELECT") {
        if (field.value.trim() === "") field.disabled = true;
      }
    });
  });
  // Coming back (bfcache) to a page whose fields were disabled on the way out.
  window.addEventListener("pageshow", function () {
    Array.from(form.elements).forEach(function (field) { field.disabled = false; });
  });

  table.querySelectorAll("svg.spark").forEach(drawSparkline);
  refreshTimeLeft(new Date());
  setInterval(function () { refreshTimeLeft(new Date()); }, 30000);
  table.dataset.ready = "1";
  F.connect(F.config.asset ? { assets: [F.config.asset] } : {}, apply);
})();
