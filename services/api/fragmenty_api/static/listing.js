/* One listing: its price as a step chart with events marked, in TON or USD, live, drawn over
   the fair value's 80 % band (updated live when an event carries a new estimate). */
(function () {
  "use strict";

  const F = window.Fragmenty;
  const chart = document.getElementById("chart");
  const history = F.config.history.slice();
  let valuation = F.config.valuation;  // {expected_ton, low_ton, high_ton, ...} or null
  let currency = "ton";
  const MARKED = { listed: "Listed", sold: "Sold", status_changed: "Status", auction_extended: "Extended", delisted: "Delisted" };

  function priceOf(point) {
    const value = currency === "ton" ? point.price_ton : point.price_usd;
    return value === null || value === undefined ? null : Number(value);
  }

  /* USD per TON at the listing's last observed rate (the band is estimated in TON). */
  function usdPerTon() {
    const last = history.filter(function (p) { return p.price_ton && p.price_usd; }).pop();
    return last ? Number(last.price_usd) / Number(last.price_ton) : null;
  }

  function bandTraces(start, unit) {
    if (!valuation) return [];
    const rate = currency === "ton" ? 1 : usdPerTon();
    if (rate === null) return [];
    const x = [start, new Date().toISOString()];
    const at = function (value) { const v = Number(value) * rate; return [v, v]; };
    return [
      {
        type: "scatter", mode: "lines", name: "80 % band", x: x, y: at(valuation.low_ton),
        line: { width: 0 }, showlegend: false, hoverinfo: "skip",
      },
      {
        type: "scatter", mode: "lines", name: "Fair value band (80 %)", x: x,
        y: at(valuation.high_ton), fill: "tonexty", fillcolor: "rgba(52, 168, 83, 0.18)",
        line: { width: 0 }, hoverinfo: "skip",
      },
      {
        type: "scatter", mode: "lines", name: "Fair value", x: x, y: at(valuation.expected_ton),
        line: { color: "#34a853", width: 1.5, dash: "dash" },
        hovertemplate: "Fair value %{y:,.0f}" + unit + "<extra></extra>",
      },
    ];
  }

  function traces() {
    const priced = history.filter(function (p) { return priceOf(p) !== null; });
    const marked = priced.filter(function (p) { return MARKED[p.type]; });
    const unit = currency === "ton" ? " TON" : " USD";
    const start = priced.length ? priced[0].at : new Date(Date.now() - 864e5).toISOString();
    const result = bandTraces(start, unit).concat([
      {
        type: "scatter", mode: "lines+markers", name: "Price",
        x: priced.map(function (p) { return p.at; }),
        y: priced.map(priceOf),
        line: { shape: "hv", color: "#1a73e8", width: 2 },
        marker: { size: 6 },
        hovertemplate: "%{y:,}" + unit + "<br>%{x|%Y-%m-%d %H:%M} UTC<extra></extra>",
      },
      {
        type: "scatter", mode: "markers+text", name: "Events",
        x: marked.map(function (p) { return p.at; }),
        y: marked.map(priceOf),
        text: marked.map(function (p) { return MARKED[p.type]; }),
        textposition: "top center",
        marker: { size: 12, symbol: "diamond", color: "#e8711a" },
        hovertemplate: "%{text}: %{y:,}" + unit + "<extra></extra>",
      },
    ]);
    if (priced.length) {
      // The last price holds until now: draw that final step without adding a data point.
      const last = priced[priced.length - 1];
      result.push({
        type: "scatter", mode: "lines", name: "Now", showlegend: false, hoverinfo: "skip",
        x: [last.at, new Date().toISOString()], y: [priceOf(last), priceOf(last)],
        line: { shape: "hv", color: "#1a73e8", width: 2, dash: "dot" },
      });
    }
    return result;
  }

  const layout = {
    margin: { l: 64, r: 12, t: 12, b: 40 },
    yaxis: { title: { text: "Price (TON)" }, rangemode: "tozero" },
    xaxis: { type: "date" },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    hovermode: "closest",
  };
  const options = { responsive: true, displaylogo: false };

  function redraw() {
    layout.yaxis.title.text = currency === "ton" ? "Price (TON)" : "Price (USD)";
    return Plotly.react(chart, traces(), layout, options);
  }

  document.querySelectorAll("button.currency").forEach(function (button) {
    button.addEventListener("click", function () {
      currency = button.dataset.currency;
      document.querySelectorAll("button.currency").forEach(function (other) {
        other.setAttribute("aria-pressed", String(other === button));
      });
      redraw();
    });
  });

  /* The newest change goes on top of the "Changes" table; text only, never markup. */
  function addChangeRow(event, state) {
    const body = document.querySelector("#changes tbody");
    if (!body) return;
    const empty = body.querySelector("td.muted");
    if (empty) empty.parentNode.remove();
    const row = document.createElement("tr");
    const cells = [String(event.occurred_at).slice(0, 16).replace("T", " "), event.type,
      state.status || "", state.price_ton || "", state.price_usd || ""];
    cells.forEach(function (text, index) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (index >= 3) cell.className = "num";
      row.appendChild(cell);
    });
    body.insertBefore(row, body.firstChild);
  }

  function apply(event) {
    if (event.asset !== F.config.asset || event.slug !== F.config.slug) return;
    const state = event.new || {};
    history.push({
      at: event.occurred_at, type: event.type, status: state.status || null,
      price_ton: state.price_ton === undefined ? null : state.price_ton,
      price_usd: state.price_usd === undefined ? null : state.price_usd,
    });
    if (state.price_ton !== undefined) {
      const price = document.getElementById("fact-price");
      price.textContent = state.price_ton + " TON" + (state.price_usd ? " ≈ $" + state.price_usd : "");
    }
    if (state.status) {
      const status = document.getElementById("fact-status");
      status.textContent = state.status;
    }
    addChangeRow(event, state);
    redraw().then(function () {
      chart.dataset.liveEvents = String(Number(chart.dataset.liveEvents || 0) + 1);
    });
  }

  Plotly.newPlot(chart, traces(), layout, options).then(function () {
    chart.dataset.ready = "1";
  });
  F.connect({ assets: [F.config.asset], slugs: [F.config.slug] }, apply);
})();
