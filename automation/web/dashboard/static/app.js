// The dashboard's only script of its own: draws each chart from the JSON beside it (uPlot).
// Pages work without it: every chart has its numbers in a table underneath.
(function () {
  "use strict";
  var COLOURS = ["#1b5e20", "#0d47a1", "#6a1b9a", "#b71c1c", "#e65100", "#37474f", "#00695c"];
  // A status keeps its colour on every chart.
  var BY_LABEL = {
    sent: "#1b5e20", queued: "#0d47a1", deferred: "#8d5a00", skipped: "#546e7a",
    suppressed: "#6a1b9a", failed: "#b71c1c", unknown: "#e65100",
  };

  function draw(box) {
    var holder = box.querySelector(".chart");
    var source = box.querySelector(".chart-data");
    if (!holder || !source || holder.dataset.drawn || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    var small = holder.classList.contains("small");
    var xs = data.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
    var series = [{}];
    var values = [xs];
    data.series.forEach(function (s, i) {
      series.push({ label: s[0], stroke: BY_LABEL[s[0]] || COLOURS[i % COLOURS.length], width: 2, points: { show: false } });
      values.push(s[1]);
    });
    var opts = {
      width: Math.max(holder.clientWidth || 300, small ? 80 : 200),
      height: parseInt(holder.dataset.height || "220", 10),
      series: series,
      legend: { show: !small },
      cursor: { show: !small },
      axes: small ? [{ show: false }, { show: false }] : [{}, {}],
      scales: { x: { time: true } },
    };
    holder.dataset.drawn = "1";
    new uPlot(opts, values, holder);
  }

  function drawAll(root) {
    (root || document).querySelectorAll(".chart-box").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
})();
