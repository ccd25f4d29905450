/* A market map: memorability (numbers) or length (usernames) against price (log), size by
 * time left, colour by status. */
(function () {
  "use strict";

  const F = window.Fragmenty;
  const chart = document.getElementById("chart");
  const mode = F.config.mode;
  const asset = F.config.asset;
  const byLength = asset === "username";
  const STATUSES = [
    ["auction", "On auction", "#1a73e8"],
    ["sale", "For sale", "#11865b"],
    ["sold", "Sold", "#7a7f87"],
  ];
  const points = new Map();
  const columns = F.config.points;
  for (let i = 0; i < columns.slug.length; i++) {
    points.set(columns.slug[i], {
      slug: columns.slug[i], title: columns.title[i], status: columns.status[i],
      memorability: columns.memorability[i], length: columns.length[i], ton: columns.ton[i], usd: columns.usd[i],
      endsAt: columns.ends_at[i],
    });
  }

  function markerSize(endsAt, now) {
    if (!endsAt) return 8;
    const hours = (new Date(endsAt) - now) / 3600000;
    if (hours <= 0) return 6;
    // Square root: a day left is clearly bigger than an hour, a month does not swamp the plot.
    return 8 + 26 * Math.min(1, Math.sqrt(hours / (24 * 14)));
  }

  /* Usernames of one length would sit on one vertical line: spread them by up to +-0.3,
   * the same for a name on every draw (a hash of it), so live updates do not make them jump. */
  function spread(slug) {
    let hash = 0;
    for (let i = 0; i < slug.length; i++) hash = (hash * 31 + slug.charCodeAt(i)) | 0;
    return ((Math.abs(hash) % 1000) / 1000 - 0.5) * 0.6;
  }

  function xOf(p) { return byLength ? p.length + spread(p.slug) : p.memorability; }

  function placeable(p) {
    return byLength ? p.length !== undefined : p.memorability !== null && p.memorability !== undefined;
  }

  function traces() {
    const now = new Date();
    return STATUSES.map(function (status) {
      const rows = Array.from(points.values()).filter(function (p) { return p.status === status[0]; });
      return {
        type: "scatter", mode: "markers", name: status[1],
        x: rows.map(xOf),
        y: rows.map(function (p) { return Number(p.ton); }),
        text: rows.map(function (p) { return F.escapeLabel(p.title); }),
        customdata: rows.map(function (p) {
          return [p.slug, p.usd === null ? "n/a" : "$" + Number(p.usd).toLocaleString("en-US"),
                  F.timeLeftText(p.endsAt, now), Number(p.ton).toLocaleString("en-US")];
        }),
        marker: {
          color: status[2], opacity: 0.72, sizemode: "diameter",
          size: rows.map(function (p) { return markerSize(p.endsAt, now); }),
          line: { width: 0.5, color: "#ffffff" },
        },
        hovertemplate: "<b>%{text}</b><br>%{customdata[3]} TON · %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
      };
    });
  }

  const narrow = window.matchMedia("(max-width: 600px)").matches;
  const layout = {
    margin: { l: narrow ? 56 : 72, r: 12, t: 12, b: 60 },
    xaxis: byLength
      ? { title: { text: F.config.xTitle }, zeroline: false, dtick: 1 }
      : { title: { text: F.config.xTitle }, range: [-0.03, 1.03], zeroline: false },
    // Whole prices on every tick: within one decade Plotly's default labels only the digit ("2"
    // for 20), which reads as a price of 2.
    yaxis: { title: { text: "Price (TON)" }, type: "log", tickformat: ",~r" },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    hovermode: "closest",
    paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
  };
  const options = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function belongs(point, now) {
    if (mode === "all") return true;
    const current = point.status !== "sold" && !point.delisted &&
      (!point.endsAt || new Date(point.endsAt) > now);
    return mode === "current" ? current : !current;
  }

  function apply(event) {
    if (event.asset !== asset) return;
    const known = points.get(event.slug);
    const state = event.new;
    const point = Object.assign({}, known || { slug: event.slug, title: event.title, length: event.slug.length });
    if (event.type === "delisted" || !state) {
      point.delisted = true;
    } else {
      point.status = state.status;
      point.ton = state.price_ton;
      point.usd = state.price_usd === undefined ? null : state.price_usd;
      point.endsAt = state.ends_at || null;
    }
    if (event.memorability !== null && event.memorability !== undefined) point.memorability = event.memorability;
    if (!placeable(point) || point.ton === undefined) return;
    if (belongs(point, new Date())) points.set(event.slug, point);
    else points.delete(event.slug);
    Plotly.react(chart, traces(), layout, options);
    chart.dataset.liveEvents = String(Number(chart.dataset.liveEvents || 0) + 1);
  }

  Plotly.newPlot(chart, traces(), layout, options).then(function () {
    chart.dataset.ready = "1";
  });
  chart.on("plotly_click", function (data) {
    const point = data.points && data.points[0];
    if (point && point.customdata) {
      window.location.href = "/listing/" + asset + "/" + encodeURIComponent(point.customdata[0]);
    }
  });
  F.connect({ assets: [asset] }, apply);
})();
