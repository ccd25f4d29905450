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

  /* The band as shapes below the traces (not traces: their indices stay the price's). */
  function bandShapes() {
    if (!valuation) return { shapes: [], annotations: [] };
    const rate = currency === "ton" ? 1 : usdPerTon();
    if (rate === null) return { shapes: [], annotations: [] };
    const low = Number(valuation.low_ton) * rate;
    const high = Number(valuation.high_ton) * rate;
    const expected = Number(valuation.expected_ton) * rate;
    const across = { xref: "paper", x0: 0, x1: 1, yref: "y", layer: "below" };
    return {
      shapes: [
        Object.assign({ type: "rect", y0: low, y1: high, line: { width: 0 },
          fillcolor: "rgba(52, 168, 83, 0.16)" }, across),
        Object.assign({ type: "line", y0: expected, y1: expected,
          line: { color: "#34a853", width: 1.5, dash: "dash" } }, across),
      ],
      annotations: [{
        xref: "paper", x: 1, xanchor: "right", yref: "y", y: high, yanchor: "bottom",
        showarrow: false, font: { size: 11, color: "#1e7e34" },
        text: "fair value " + Math.round(expected).toLocaleString("en-US") +
          (currency === "ton" ? " TON" : " USD") + " (80 % band)",
      }],
    };
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
    Object.assign(layout, bandShapes());
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
    if (event.valuation) {  // the event's own estimate: the band follows it live
      valuation = Object.assign({}, valuation, {
        expected_ton: event.valuation.fair_value_ton,
        low_ton: event.valuation.low_ton,
        high_ton: event.valuation.high_ton,
      });
      const fair = document.getElementById("fact-fair-value");
      if (fair) {
        fair.textContent = event.valuation.fair_value_ton + " TON (80 % band " +
          event.valuation.low_ton + "–" + event.valuation.high_ton + ")";
      }
      const discount = document.getElementById("fact-discount");
      if (discount) {
        const pct = event.valuation.discount_pct;
        discount.textContent = Math.abs(pct).toFixed(1) + (pct >= 0 ? " % under" : " % over");
      }
    }
    addChangeRow(event, state);
    redraw().then(function () {
      chart.dataset.liveEvents = String(Number(chart.dataset.liveEvents || 0) + 1);
    });
  }

  Object.assign(layout, bandShapes());
  Plotly.newPlot(chart, traces(), layout, options).then(function () {
    chart.dataset.ready = "1";
  });
  F.connect({ assets: [F.config.asset], slugs: [F.config.slug] }, apply);
})();
