// Steward dashboard charts: draws each <figure class="chart"> from the JSON embedded in it
// (<script type="application/json" class="chart-data">) with the vendored uPlot
// (static/vendor/uplot). Hovering shows every series' value at that time in the legend; dragging
// across a chart zooms every chart of the page to that span and writes it into the URL
// (?range=FROM..TO, so a reload or a shared link shows it); a double click goes back to the
// page's range. Nothing is fetched.
"use strict";

(function () {
  const COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2"];
  const charts = [];
  window.stewardCharts = charts; // each {id, spec, plot, xs}: for the console and the tests

  function pageRange() {
    const box = document.getElementById("page-range");
    if (!box) return null;
    return { start: Number(box.dataset.start), end: Number(box.dataset.end), key: box.dataset.key };
  }

  function isoMinute(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 16);
  }

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  // Time ticks in UTC: days ("21 Nov") when ticks are a day or more apart, else hours ("14:00")
  // with the day at midnight; the year on the first of a month when the range spans a year.
  function timeTicks(u, splits) {
    const step = splits.length > 1 ? splits[1] - splits[0] : 86400;
    const span = u.scales.x.max - u.scales.x.min;
    return splits.map((value) => {
      if (value == null) return "";
      const moment = new Date(value * 1000);
      const day = moment.getUTCDate() + " " + MONTHS[moment.getUTCMonth()];
      const hours = isoMinute(value).slice(11);
      if (step < 86400 && hours !== "00:00") return hours;
      const yearly = span > 300 * 86400 && moment.getUTCDate() === 1;
      return yearly ? day + " " + moment.getUTCFullYear() : day;
    });
  }

  function stamp(seconds) {
    return isoMinute(seconds).replace("T", " ") + " UTC";
  }

  // How a value of each kind reads in the legend (hover) and on the y axis.
  function valueText(kind, value) {
    if (value == null || !Number.isFinite(value)) return "–";
    switch (kind) {
      case "share": return (value * 100).toFixed(2) + "%";
      case "points": return (value >= 0 ? "+" : "") + value.toFixed(2);
      case "count": return Math.round(value).toLocaleString("en-US");
      case "version": return "v" + Math.round(value);
      default: return String(Number(value.toPrecision(4)));
    }
  }

  function axisValues(kind) {
    return (u, splits) => {
      const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1;
      return splits.map((value) => {
        if (value == null) return "";
        if (kind === "share") return (value * 100).toFixed(step * 100 < 1 ? 1 : 0) + "%";
        if (kind === "version") return Number.isInteger(value) ? "v" + value : "";
        if (kind === "points") return (value > 0 ? "+" : "") + Number(value.toFixed(6));
        if (kind === "count") return value.toLocaleString("en-US");
        return String(Number(value.toPrecision(6)));
      });
    };
  }

  function yScale(spec) {
    if (spec.y_range) return { range: () => spec.y_range };
    if (spec.kind === "share") {
      return {
        range: (u, min, max) => {
          const [low, high] = uPlot.rangeNum(min, max, 0.1, true);
          return [Math.max(0, low), Math.min(1, high)];
        },
      };
    }
    if (spec.kind === "count") {
      return { range: (u, min, max) => [0, uPlot.rangeNum(0, Math.max(max, 1), 0.1, true)[1]] };
    }
    if (spec.kind === "version") return { range: (u, min, max) => [min - 0.5, max + 0.5] };
    return {};
  }

  // The series share one x array (the union of their times); a time a series lacks is
  // undefined (the line joins across it), a stored null stays null (a gap).
  function align(spec) {
    const xs = Array.from(new Set(spec.series.flatMap((s) => s.points.map((p) => p[0]))));
    xs.sort((a, b) => a - b);
    const columns = [];
    for (const s of spec.series) {
      const byX = new Map(s.points.map((p) => [p[0], p]));
      const pick = (i) => xs.map((x) => (byX.has(x) ? byX.get(x)[i] : undefined));
      const hasBand = s.points.some((p) => p[2] != null && p[3] != null);
      columns.push({ series: s, y: pick(1), lower: hasBand ? pick(2) : null, upper: hasBand ? pick(3) : null });
    }
    return { xs, columns };
  }

  function options(spec, figure, aligned) {
    const series = [{ label: "time (UTC)", value: (u, v) => (v == null ? "–" : stamp(v)) }];
    const data = [aligned.xs];
    const bands = [];
    const hidden = [];
    aligned.columns.forEach((column, index) => {
      const color = COLORS[(column.series.color ?? index) % COLORS.length];
      const main = data.length;
      series.push({
        label: column.series.name,
        stroke: color,
        width: 2,
        dash: column.series.dashed ? [6, 4] : undefined,
        paths: spec.step ? uPlot.paths.stepped({ align: 1 }) : undefined,
        points: { show: aligned.xs.length <= 60, size: 5 },
        value: (u, v, s, i) => {
          const text = valueText(spec.kind, v);
          if (!column.lower || i == null || v == null) return text;
          const low = column.lower[i], high = column.upper[i];
          if (low == null || high == null) return text;
          return text + " [" + valueText(spec.kind, low) + ", " + valueText(spec.kind, high) + "]";
        },
      });
      data.push(column.y);
      if (column.lower) {
        for (const [name, values] of [["upper", column.upper], ["lower", column.lower]]) {
          hidden.push(data.length);
          series.push({ label: column.series.name + " " + name, stroke: color + "33", width: 1, points: { show: false } });
          data.push(values);
        }
        bands.push({ series: [main + 1, main + 2], fill: color + "22" });
      }
    });
    const width = Math.max(320, figure.clientWidth - 4);
    const opts = {
      width: width,
      height: spec.height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: series,
      bands: bands,
      scales: { x: { time: true }, y: yScale(spec) },
      axes: [
        { grid: { show: true, stroke: "#eee" }, space: 70, values: timeTicks },
        { grid: { show: true, stroke: "#eee" }, values: axisValues(spec.kind), size: 60, space: 30,
          incrs: spec.kind === "version" ? [1, 2, 5, 10, 20, 50, 100] : undefined },
      ],
      legend: { live: true },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => () => { resetZoom(); return null; } },
      },
      hooks: { setSelect: [onSelect] },
    };
    return { opts, data, hidden };
  }

  function draw(figure) {
    const holder = figure.querySelector(".chart-plot");
    const source = figure.querySelector("script.chart-data");
    if (!holder || !source) return;
    const spec = JSON.parse(source.textContent);
    const aligned = align(spec);
    const built = options(spec, figure, aligned);
    const plot = new uPlot(built.opts, built.data, holder);
    built.hidden.forEach((index) => {
      const row = plot.root.querySelectorAll(".u-legend .u-series")[index];
      if (row) row.style.display = "none"; // uPlot's stylesheet would override [hidden]
    });
    figure.classList.add("drawn");
    charts.push({ id: spec.id, spec: spec, plot: plot, xs: aligned.xs });
  }

  let zoomed = null;

  function setAll(min, max) {
    charts.forEach((chart) => chart.plot.setScale("x", { min: min, max: max }));
  }

  function onSelect(u) {
    const select = u.select;
    if (select.width < 4) return;
    const min = u.posToVal(select.left, "x");
    const max = u.posToVal(select.left + select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    zoomTo(min, max);
  }

  // Zoom every chart to [min, max] (epoch seconds) and put the span in the URL.
  function zoomTo(min, max) {
    const low = Math.floor(min / 60) * 60;
    const high = Math.ceil(max / 60) * 60;
    zoomed = { start: low, end: high };
    setAll(low, high);
    const key = isoMinute(low) + ".." + isoMinute(high);
    const url = new URL(window.location.href);
    url.searchParams.delete("from");
    url.searchParams.delete("to");
    url.searchParams.set("range", key);
    window.history.pushState({ range: key }, "", url);
    const note = document.getElementById("zoom-note");
    if (note) {
      document.getElementById("zoom-span").textContent = stamp(low) + " to " + stamp(high);
      document.getElementById("zoom-load").href = url.toString();
      note.hidden = false;
    }
  }

  function resetZoom() {
    const page = pageRange();
    if (!page) return;
    zoomed = null;
    setAll(page.start, page.end);
    const url = new URL(window.location.href);
    url.searchParams.set("range", page.key);
    window.history.pushState({ range: page.key }, "", url);
    const note = document.getElementById("zoom-note");
    if (note) note.hidden = true;
  }

  function fitAll() {
    const page = pageRange();
    if (!page) return;
    const span = zoomed || page;
    setAll(span.start, span.end);
  }

  function start() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("figure.chart").forEach(draw);
    fitAll();
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        charts.forEach((chart) => {
          const figure = document.getElementById(chart.spec.id);
          chart.plot.setSize({ width: Math.max(320, figure.clientWidth - 4), height: chart.spec.height });
        });
      }, 150);
    });
    window.addEventListener("popstate", () => window.location.reload());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
