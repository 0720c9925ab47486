// The audit log's chart of events over time (uPlot). Its data comes from the JSON route named in
// the chart's data-src (the same filters as the page); nothing is inline, so the strict CSP
// holds. Without JavaScript the page still lists the events.
(function () {
  "use strict";
  var COLOURS = { success: "#1d5e20", failure: "#8a4b00", denied: "#9b1c1c" };

  function draw(box, data) {
    var names = Object.keys(data.series);
    var series = [{}].concat(names.map(function (name) {
      return { label: name, stroke: COLOURS[name] || "#1a1a1a", width: 2, points: { show: false } };
    }));
    var columns = [data.t].concat(names.map(function (name) { return data.series[name]; }));
    var width = Math.max(280, Math.floor(box.getBoundingClientRect().width));
    var options = {
      width: width,
      height: 220,
      series: series,
      scales: { x: { time: true } },
      axes: [{}, { label: "events per " + describe(data.step_seconds) }],
    };
    box.textContent = "";
    var plot = new uPlot(options, columns, box);
    box.setAttribute("data-total", String(data.total));
    box.setAttribute("aria-label", "Audit events over time, by outcome: " + data.total +
      " events in " + data.t.length + " steps of " + describe(data.step_seconds));
    var summary = document.getElementById("chart-summary");
    if (summary) {
      summary.textContent = data.total + " events, counted per " + describe(data.step_seconds) +
        " (" + names.map(function (n) { return n + " " + sum(data.series[n]); }).join(", ") + ").";
    }
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(280, Math.floor(box.getBoundingClientRect().width)), height: 220 });
    });
  }

  function sum(values) {
    return values.reduce(function (a, b) { return a + b; }, 0);
  }

  function describe(seconds) {
    if (seconds % 86400 === 0) { return seconds / 86400 === 1 ? "day" : seconds / 86400 + " days"; }
    if (seconds % 3600 === 0) { return seconds / 3600 === 1 ? "hour" : seconds / 3600 + " hours"; }
    return seconds / 60 === 1 ? "minute" : seconds / 60 + " minutes";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("audit-chart");
    if (!box || typeof uPlot === "undefined") { return; }
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { draw(box, data); })
      .catch(function (error) {
        var summary = document.getElementById("chart-summary");
        if (summary) { summary.textContent = "The chart could not be loaded (" + error.message + ")."; }
      });
  });
})();
