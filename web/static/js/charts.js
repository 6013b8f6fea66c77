// Charts over uPlot (vendored): the histogram of matching events and the time series of
// `stats ... by bin()` results. Times are epoch seconds on the x axis, shown in UTC.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h } from "./dom.js";
import { formatTime } from "./time.js";

export const PALETTE = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569", "#ea580c"];

export const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");

/**
 * Draw a time chart in `container` and keep it as wide as the container.
 * @param {HTMLElement} container
 * @param {{x: number[], series: {label: string, values: (number|null)[]}[], kind: "line"|"bar",
 *          height?: number, onSelect?: (startMs: number, endMs: number) => void}} spec
 * @returns {{destroy: () => void, plot: uPlot}}
 */
export function timeChart(container, { x, series, kind = "line", height = 220, onSelect = null, stepS = null }) {
  const bars = kind === "bar";
  const step = stepS || (x.length > 1 ? x[1] - x[0] : 60);
  const opts = {
    width: Math.max(200, container.clientWidth || 600),
    height,
    tzDate: utc,
    legend: { show: series.length > 1 || !bars, live: true },
    cursor: { drag: { x: Boolean(onSelect), y: false, setScale: false }, points: { show: !bars } },
    scales: {
      x: { time: true, range: bars ? (_u, min, max) => [min, max + step] : undefined },
      y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { stroke: "#64748b", grid: { stroke: "#e2e8f0", width: 1 }, ticks: { stroke: "#cbd5e1" }, values: (_u, splits, _i, _space, incr) => splits.map((v) => timeTick(v, incr)) },
      { stroke: "#64748b", grid: { stroke: "#e2e8f0", width: 1 }, ticks: { stroke: "#cbd5e1" }, size: 56, values: (_u, vals) => vals.map(compactNumber) },
    ],
    series: [
      { label: "Time (UTC)", value: (_u, v) => (v == null ? "" : formatTime(v * 1000, { millis: false })) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        fill: bars ? PALETTE[i % PALETTE.length] + "cc" : PALETTE[i % PALETTE.length] + "14",
        width: bars ? 0 : 2,
        paths: bars ? groupedBars(step, i, series.length) : undefined,
        points: { show: !bars && x.length < 60 },
        spanGaps: false,
        value: (_u, v) => (v == null ? "" : compactNumber(v)),
      })),
    ],
    hooks: {
      setSelect: onSelect
        ? [
            (u) => {
              if (u.select.width < 2) return;
              const startS = u.posToVal(u.select.left, "x");
              const endS = u.posToVal(u.select.left + u.select.width, "x");
              u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
              onSelect(startS * 1000, endS * 1000);
            },
          ]
        : [],
    },
  };
  const wrapper = h("div.chart");
  container.replaceChildren(wrapper);
  const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], wrapper);
  const observer = new ResizeObserver(() => {
    const width = container.clientWidth;
    if (width > 0 && Math.abs(width - plot.width) > 1) plot.setSize({ width, height });
  });
  observer.observe(container);
  return {
    plot,
    destroy() {
      observer.disconnect();
      plot.destroy();
    },
  };
}

/**
 * uPlot path builder for bars that fill their time bucket [x, x + stepS) side by side: series
 * `index` of `count` takes its share of 80 % of the bucket (uPlot's own bars overlap).
 */
function groupedBars(stepS, index, count) {
  return (u, seriesIdx, idx0, idx1) => {
    const fill = new Path2D();
    const xs = u.data[0];
    const ys = u.data[seriesIdx];
    const base = u.valToPos(Math.max(0, u.scales.y.min ?? 0), "y", true);
    for (let i = idx0; i <= idx1; i += 1) {
      if (ys[i] == null) continue;
      const left = u.valToPos(xs[i], "x", true);
      const bucket = u.valToPos(xs[i] + stepS, "x", true) - left;
      const width = Math.max(1, (bucket * 0.8) / count);
      const top = u.valToPos(ys[i], "y", true);
      fill.rect(left + bucket * 0.1 + index * width, Math.min(top, base), width, Math.abs(base - top));
    }
    return { stroke: fill, fill };
  };
}

/** A UTC tick label: the date at midnight or for day steps, the time of day otherwise. */
export function timeTick(seconds, incrementS) {
  if (seconds == null) return "";
  const iso = new Date(seconds * 1000).toISOString();
  const day = iso.slice(5, 10);
  const time = iso.slice(11, incrementS < 60 ? 19 : 16);
  if (incrementS >= 86400) return day;
  return iso.slice(11, 19) === "00:00:00" ? `${day}\n${time}` : time;
}

/** 1234567 -> "1.23M"; small numbers keep up to 3 decimals. */
export function compactNumber(v) {
  if (v == null || !Number.isFinite(v)) return "";
  const abs = Math.abs(v);
  for (const [size, unit] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (abs >= size) return `${+(v / size).toFixed(2)}${unit}`;
  }
  return String(+v.toFixed(abs < 1 ? 3 : 2));
}

// Periods the histogram may use, in seconds, with their Logs Insights spelling.
const PERIODS = [
  [1, "1s"], [5, "5s"], [10, "10s"], [30, "30s"], [60, "1m"], [300, "5m"], [600, "10m"],
  [900, "15m"], [1800, "30m"], [3600, "1h"], [3 * 3600, "3h"], [6 * 3600, "6h"],
  [12 * 3600, "12h"], [86400, "1d"],
];

/** The smallest period that cuts [startS, endS) into at most `bins` buckets. */
export function histogramPeriod(startS, endS, bins = 60) {
  const span = Math.max(1, endS - startS);
  for (const [seconds, spelled] of PERIODS) {
    if (span / seconds <= bins) return { seconds, spelled };
  }
  return { seconds: 86400 * Math.ceil(span / 86400 / bins), spelled: `${Math.ceil(span / 86400 / bins)}d` };
}

/** Bucket starts from startS to endS every stepS, with `counts` (Map seconds -> n) or 0. */
export function fillBuckets(startS, endS, stepS, counts) {
  const x = [];
  const values = [];
  for (let t = Math.floor(startS / stepS) * stepS; t < endS; t += stepS) {
    x.push(t);
    values.push(counts.get(t) ?? 0);
  }
  return { x, values };
}
