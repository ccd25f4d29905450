/* The market over time: floor (and median) price and sold volume per asset, per day. */
(function () {
  "use strict";

  const F = window.Fragmenty;
  const series = F.config.series;
  const today = F.config.today;
  const COLORS = { number: "#1a73e8", username: "#11865b" };
  const NAMES = { number: "Numbers", username: "Usernames" };
  const floorChart = document.getElementById("floor-chart");
  const volumeChart = document.getElementById("volume-chart");
  const options = { responsive: true, displaylogo: false };
  const narrow = window.matchMedia("(max-width: 600px)").matches;

  function layout(title, logScale) {
    return {
      margin: { l: narrow ? 52 : 64, r: 12, t: 12, b: 40 },
      // Floors of numbers and usernames differ by orders of magnitude: a log axis shows both.
      yaxis: logScale ? { title: { text: title }, type: "log" } : { title: { text: title }, rangemode: "tozero" },
      xaxis: { type: "date" },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      barmode: "group",
      hovermode: "x unified",
    };
  }

  function num(values) {
    return values.map(function (v) { return v === null ? null : Number(v); });
  }

  function floorTraces() {
    const traces = [];
    Object.keys(series).forEach(function (asset) {
      const s = series[asset];
      traces.push({ type: "scatter", mode: "lines+markers", name: NAMES[asset] + " floor",
        x: s.day, y: num(s.floor), line: { color: COLORS[asset], width: 2, shape: "hv" }, marker: { size: 4 } });
      traces.push({ type: "scatter", mode: "lines", name: NAMES[asset] + " median",
        x: s.day, y: num(s.median), line: { color: COLORS[asset], width: 1, dash: "dot", shape: "hv" } });
    });
    return traces;
  }

  function volumeTraces() {
    return Object.keys(series).map(function (asset) {
      const s = series[asset];
      return { type: "bar", name: NAMES[asset], x: s.day, y: num(s.volume),
        marker: { color: COLORS[asset] }, customdata: s.sold,
        hovertemplate: "%{y:,} TON (%{customdata} sold)<extra>" + NAMES[asset] + "</extra>" };
    });
  }

  function todayIndex(s) {
    let index = s.day.indexOf(today);
    if (index === -1) {
      s.day.push(today); s.floor.push(null); s.median.push(null); s.volume.push("0"); s.sold.push(0);
      index = s.day.length - 1;
    }
    return index;
  }

  function apply(event) {
    const s = series[event.asset];
    const state = event.new;
    if (!s || !state || state.price_ton === undefined) return;
    const i = todayIndex(s);
    if (event.type === "sold") {
      s.volume[i] = String(Number(s.volume[i]) + Number(state.price_ton));
      s.sold[i] += 1;
    } else if (state.status === "auction" || state.status === "sale") {
      if (s.floor[i] === null || Number(state.price_ton) < Number(s.floor[i])) s.floor[i] = state.price_ton;
    } else {
      return;
    }
    Promise.all([
      Plotly.react(floorChart, floorTraces(), layout("TON", true), options),
      Plotly.react(volumeChart, volumeTraces(), layout("TON"), options),
    ]).then(function () {
      floorChart.dataset.liveEvents = String(Number(floorChart.dataset.liveEvents || 0) + 1);
    });
  }

  Promise.all([
    Plotly.newPlot(floorChart, floorTraces(), layout("TON", true), options),
    Plotly.newPlot(volumeChart, volumeTraces(), layout("TON"), options),
  ]).then(function () {
    floorChart.dataset.ready = "1";
    volumeChart.dataset.ready = "1";
  });
  F.connect({ types: ["sold", "listed", "price_changed"] }, apply);
})();
