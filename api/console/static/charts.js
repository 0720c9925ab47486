// Draws every chart of the page with uPlot from its data-chart attribute: JSON built on the
// server by api/console/charts.py ({kind: "line" | "bars", x, labels, series: [{label,
// values}], unit, y_range}). The same figures are in a table next to each chart, so the page
// says everything without this file; the charts only draw them.
(function () {
  "use strict";
  var COLOURS = ["#0b4f9c", "#9b1c1c", "#1d5e20", "#7a4b00", "#5b2c83"];
  var HEIGHT = 240;
  var COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 1e5, 2e5, 5e5, 1e6];

  function widthOf(box) {
    return Math.max(200, Math.floor(box.getBoundingClientRect().width));
  }

  function yRange(spec) {
    if (spec.y_range) {
      return spec.y_range;
    }
    var top = 0;
    spec.series.forEach(function (s) {
      s.values.forEach(function (v) {
        if (v !== null && v > top) {
          top = v;
        }
      });
    });
    return [0, top > 0 ? Math.ceil(top * 1.1) : 1];
  }

  function options(spec, width) {
    var bars = spec.kind === "bars";
    var series = [{}];
    spec.series.forEach(function (s, i) {
      var colour = COLOURS[i % COLOURS.length];
      var one = { label: s.label, stroke: colour, width: 2, points: { show: true, size: 6 } };
      if (bars) {
        one.fill = colour;
        one.points = { show: false };
        one.paths = uPlot.paths.bars({ size: [0.6, 120] });
      }
      series.push(one);
    });
    var xAxis = { stroke: "#1a1a1a" };
    if (bars) {
      xAxis.splits = function () { return spec.x; };
      xAxis.values = function (u, splits) {
        return splits.map(function (v) { return spec.labels[v] === undefined ? "" : spec.labels[v]; });
      };
      xAxis.size = 40;
    }
    var yAxis = { stroke: "#1a1a1a", label: spec.unit, size: 50 };
    if (bars) {
      yAxis.incrs = COUNTS; // counts: whole-number ticks only
    }
    var range = yRange(spec);
    return {
      width: width,
      height: HEIGHT,
      series: series,
      legend: { show: spec.series.length > 1 },
      cursor: { show: !bars, drag: { x: !bars, y: false } }, // drag to zoom a line chart
      scales: {
        x: bars
          ? { time: false, range: function () { return [-0.5, spec.x.length - 0.5]; } }
          : { time: true },
        y: { range: function () { return range; } }
      },
      axes: [xAxis, yAxis]
    };
  }

  function draw(box) {
    var spec = JSON.parse(box.getAttribute("data-chart"));
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var plot = new uPlot(options(spec, widthOf(box)), data, box);
    box.setAttribute("data-drawn", "true");
    return { box: box, plot: plot };
  }

  function start() {
    var drawn = Array.prototype.map.call(document.querySelectorAll("[data-chart]"), draw);
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        drawn.forEach(function (d) { d.plot.setSize({ width: widthOf(d.box), height: HEIGHT }); });
      }, 100);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
