/* One listing: its price as a step chart with events marked, in TON or USD, live. */
(function () {
  "use strict";

  const F = window.Fragmenty;
  const chart = document.getElementById("chart");
  const history = F.config.history.slice();
  let currency = "ton";
  const MARKED = { listed: "Listed", sold: "Sold", status_changed: "Status", auction_extended: "Extended", delisted: "Delisted" };

  function priceOf(point) {
    const value = currency === "ton" ? point.price_ton : point.price_usd;
    return value === null || value === undefined ? null : Number(value);
  }

  function traces() {
    const priced = history.filter(function (p) { return priceOf(p) !== null; });
    const marked = priced.filter(function (p) { return MARKED[p.type]; });
    const unit = currency === "ton" ? " TON" : " USD";
    const result = [
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
    ];
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
