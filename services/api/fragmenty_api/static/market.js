/* The market over time: floor (and median) price and sold volume per asset, per day. */
(function () {
  "use strict";

  const F = window.Fragmenty;
  const series = F.config.series;
  const today = F.config.today;
  const lastBackfilled = F.config.lastBackfilled;
  const DAY_MS = 86400000;
  const COLORS = { number: "#1a73e8", username: "#11865b" };
  const NAMES = { number: "Numbers", username: "Usernames" };
  const floorChart = document.getElementById("floor-chart");
  const volumeChart = document.getElementById("volume-chart");
  const options = { responsive: true, displaylogo: false };
  const narrow = window.matchMedia("(max-width: 600px)").matches;

  function dayMs(iso) { return Date.parse(iso + "T00:00:00Z"); }

  function isoDay(ms) { return new Date(ms).toISOString().slice(0, 10); }

  /* Whole days on the axis, even for a single day: the range runs from half a day before the
   * first day to half a day after the last, and ticks fall on midnights only. */
  function dayAxis() {
    let first = dayMs(today);
    let last = first;
    Object.keys(series).forEach(function (asset) {
      series[asset].day.forEach(function (day) {
        first = Math.min(first, dayMs(day));
        last = Math.max(last, dayMs(day));
      });
    });
    const span = (last - first) / DAY_MS + 1;
    const step = Math.max(1, Math.ceil(span / (narrow ? 4 : 10)));
    return {
      type: "date",
      range: [isoDay(first - DAY_MS / 2) + " 12:00", isoDay(last) + " 12:00"],
      tick0: isoDay(first), dtick: step * DAY_MS, tickformat: "%b %-d",
      hoverformat: "%b %-d, %Y",
    };
  }

  /* Backfilled days (before the first census) are shaded and labelled. */
  function backfillShapes() {
    if (!lastBackfilled) return { shapes: [], annotations: [] };
    return {
      shapes: [{ type: "rect", xref: "x", yref: "paper", layer: "below", line: { width: 0 },
        x0: "2000-01-01", x1: lastBackfilled + " 12:00",  // a bar spans its day's midnight +-12 h
        y0: 0, y1: 1, fillcolor: "#eceff3" }],
      annotations: [{ xref: "x", yref: "paper", x: lastBackfilled + " 12:00", y: 1, yanchor: "bottom",
        xanchor: "right", showarrow: false, text: "backfilled", font: { size: 11, color: "#5f6b7a" } }],
    };
  }

  function noSales() {
    return Object.keys(series).every(function (asset) {
      return series[asset].volume.every(function (v) { return Number(v) === 0; });
    });
  }

  function layout(title, logScale, volume) {
    const marks = backfillShapes();
    if (volume && noSales()) {
      marks.annotations.push({ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        text: "No sales in this period yet", font: { size: 14, color: "#5f6b7a" } });
    }
    return {
      margin: { l: narrow ? 52 : 64, r: 12, t: 28, b: 40 },
      // Floors of numbers and usernames differ by orders of magnitude: a log axis shows both.
      yaxis: logScale ? { title: { text: title }, type: "log", tickformat: ",~r" } : { title: { text: title }, rangemode: "tozero" },
      xaxis: dayAxis(),
      legend: { orientation: "h", x: 0, y: 1.08, yanchor: "bottom" },
      barmode: "group",
      hovermode: "x unified",
      shapes: marks.shapes,
      annotations: marks.annotations,
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
        x: s.day, y: num(s.floor), line: { color: COLORS[asset], width: 2, shape: "hv" },
        // A day or two are points, not lines yet: draw them big enough to see.
        marker: { size: s.day.length <= 3 ? 10 : 4 } });
      traces.push({ type: "scatter", mode: "lines", name: NAMES[asset] + " median",
        x: s.day, y: num(s.median), line: { color: COLORS[asset], width: 1, dash: "dot", shape: "hv" } });
    });
    return traces;
  }

  function volumeTraces() {
    return Object.keys(series).map(function (asset) {
      const s = series[asset];
      return { type: "bar", name: NAMES[asset], x: s.day, y: num(s.volume),
        // Backfilled days: the same colour, paler, so the first census's past sales read as such.
        marker: { color: COLORS[asset], opacity: s.backfilled.map(function (b) { return b ? 0.45 : 1; }) },
        customdata: s.sold.map(function (sold, i) { return [sold, s.backfilled[i] ? ", backfilled" : ""]; }),
        hovertemplate: "%{y:,} TON (%{customdata[0]} sold%{customdata[1]})<extra>" + NAMES[asset] + "</extra>" };
    });
  }

  /* The index of a day in a series, adding it (in order) when it is new. */
  function dayIndex(s, day) {
    let index = s.day.indexOf(day);
    if (index !== -1) return index;
    index = 0;
    while (index < s.day.length && s.day[index] < day) index++;
    s.day.splice(index, 0, day); s.floor.splice(index, 0, null); s.median.splice(index, 0, null);
    s.volume.splice(index, 0, "0"); s.sold.splice(index, 0, 0); s.backfilled.splice(index, 0, false);
    return index;
  }

  function apply(event) {
    const s = series[event.asset];
    const state = event.new;
    if (!s || !state || state.price_ton === undefined) return;
    if (event.type === "sold") {
      // A live sale is seen within a crawl of when it happened: it counts on that UTC day.
      const j = dayIndex(s, String(event.occurred_at).slice(0, 10));
      s.volume[j] = String(Number(s.volume[j]) + Number(state.price_ton));
      s.sold[j] += 1;
    } else if (state.status === "auction" || state.status === "sale") {
      const i = dayIndex(s, today);
      if (s.floor[i] === null || Number(state.price_ton) < Number(s.floor[i])) s.floor[i] = state.price_ton;
    } else {
      return;
    }
    Promise.all([
      Plotly.react(floorChart, floorTraces(), layout("TON", true), options),
      Plotly.react(volumeChart, volumeTraces(), layout("TON", false, true), options),
    ]).then(function () {
      floorChart.dataset.liveEvents = String(Number(floorChart.dataset.liveEvents || 0) + 1);
    });
  }

  Promise.all([
    Plotly.newPlot(floorChart, floorTraces(), layout("TON", true), options),
    Plotly.newPlot(volumeChart, volumeTraces(), layout("TON", false, true), options),
  ]).then(function () {
    floorChart.dataset.ready = "1";
    volumeChart.dataset.ready = "1";
  });
  F.connect({ types: ["sold", "listed", "price_changed"] }, apply);
})();
