// A copy of the original Fragmenty front end (its Play app's public/javascripts/main.js),
// written from its described behaviour: open /ws/auctions and, on every message, redraw the
// chart from JSON.parse(event.data) with Plotly.newPlot. Every message replaces the chart, so
// every message must be the whole list. The one change for the tests: the socket's address
// comes from ?socket= (the original used "ws://" + location.host + "/ws/auctions").
var socketUrl = new URLSearchParams(window.location.search).get("socket") ||
  "ws://" + window.location.host + "/ws/auctions";
var socket = new WebSocket(socketUrl);

socket.onmessage = function (event) {
  var auctions = JSON.parse(event.data);
  Plotly.newPlot("chart", [{
    x: auctions.map(function (a) { return a.auctionEndTimestamp; }),
    y: auctions.map(function (a) { return a.minimumBid; }),
    text: auctions.map(function (a) { return a.number; }),
    customdata: auctions.map(function (a) { return a.id; }),
    marker: { color: auctions.map(function (a) { return a.memorabilityScore; }), colorscale: "Viridis" },
    mode: "markers",
    type: "scatter",
    hovertemplate: "%{text}<br>%{y} TON<br>ends %{x}<extra></extra>"
  }], {
    xaxis: { title: { text: "Auction end" } },
    yaxis: { title: { text: "Minimum bid (TON)" }, type: "log" }
  });
};
