// The metric graph shared by the Metrics explorer and the alarm detail: one line per series on
// uPlot (vendored), one y axis per unit (two at most), alarm thresholds as dashed horizontal
// lines labelled with the alarm's name in its state's colour, and highlighted datapoints (the
// ones that decided an alarm's state) as rings over shaded buckets. Times are epoch seconds, UTC.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { PALETTE, compactNumber, timeTick, utc } from "./charts.js";
import { h } from "./dom.js";
import { formatTime } from "./time.js";

export const STATE_COLORS = { ALARM: "#dc2626", OK: "#059669", INSUFFICIENT_DATA: "#64748b" };
const AXIS = { stroke: "#64748b", grid: { stroke: "#e2e8f0", width: 1 }, ticks: { stroke: "#cbd5e1" } };

/** The series' timestamps (seconds) merged into one ascending x, each series' values aligned. */
export function alignSeries(series) {
  const xs = [...new Set(series.flatMap((s) => s.x))].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column = new Array(xs.length).fill(null);
    s.x.forEach((t, i) => {
      column[index.get(t)] = s.values[i];
    });
    return column;
  });
  return { x: xs, columns };
}

function lastValue(column) {
  for (let i = column.length - 1; i >= 0; i -= 1) if (column[i] != null) return column[i];
  return null;
}

/** One scale per distinct unit, in the order the series name them ("None" and null are one). */
function unitScales(series) {
  const units = [];
  for (const s of series) {
    const unit = s.unit || "None";
    if (!units.includes(unit)) units.push(unit);
  }
  if (!units.length) units.push("None");
  // A third unit shares the second axis: two axes are as many as a reader can match to lines.
  const keyOf = (unit) => (units.indexOf(unit) === 0 ? "y" : "y2");
  return { units, keyOf: (unit) => keyOf(unit || "None") };
}

function axisLabel(units, scaleKey) {
  const mine = scaleKey === "y" ? units.slice(0, 1) : units.slice(1);
  const named = mine.filter((u) => u !== "None");
  return named.length ? named.join(" / ") : "";
}

/**
 * Draw the graph of `series` in `container`, as wide as the container.
 * @param {HTMLElement} container
 * @param {{series: {label: string, unit?: string|null, x: number[], values: (number|null)[], color?: string}[],
 *          startS: number, endS: number, periodS?: number, height?: number,
 *          thresholds?: {label: string, value: number, color: string, unit?: string|null}[],
 *          highlights?: {x: number, y: number|null, color: string, periodS?: number}[]}} spec
 * @returns {{plot: uPlot, destroy: () => void}}
 */
export function metricChart(container, { series, startS, endS, periodS = 60, height = 300, thresholds = [], highlights = [] }) {
  const { units, keyOf } = unitScales(series);
  let { x, columns } = alignSeries(series);
  if (!x.length) {
    // uPlot needs at least one x to lay out its axes; two empty points span the range.
    x = [startS, endS];
    columns = series.map(() => [null, null]);
  }
  const scaleOf = (unit) => keyOf(unit);
  const extraValues = (key) => [
    ...thresholds.filter((t) => scaleOf(t.unit ?? series[0]?.unit) === key).map((t) => t.value),
    ...highlights.filter((p) => p.y != null && key === "y").map((p) => p.y),
  ];
  const range = (key) => (_u, min, max) => {
    const values = [min, max, ...extraValues(key)].filter((v) => v != null && Number.isFinite(v));
    if (!values.length) return [0, 1];
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (lo >= 0) lo = 0; // counts and percentages read best from zero
    if (hi === lo) hi = lo + 1;
    const pad = (hi - lo) * 0.08;
    return [lo < 0 ? lo - pad : lo, hi + pad];
  };
  const scales = { x: { time: true, range: () => [startS, endS] }, y: { range: range("y") } };
  const axes = [
    { ...AXIS, values: (_u, splits, _i, _space, incr) => splits.map((v) => timeTick(v, incr)) },
    { ...AXIS, scale: "y", size: 60, label: axisLabel(units, "y") || undefined, labelSize: 18, values: (_u, vals) => vals.map(compactNumber) },
  ];
  if (units.length > 1) {
    scales.y2 = { range: range("y2") };
    axes.push({ ...AXIS, scale: "y2", side: 1, size: 60, grid: { show: false }, label: axisLabel(units, "y2") || undefined, labelSize: 18, values: (_u, vals) => vals.map(compactNumber) });
  }
  const opts = {
    width: Math.max(240, container.clientWidth || 700),
    height,
    tzDate: utc,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false }, points: { show: true } },
    scales,
    axes,
    series: [
      { label: "Time (UTC)", value: (_u, v) => (v == null ? "" : formatTime(v * 1000, { millis: false })) },
      ...series.map((s, i) => {
        const color = s.color || PALETTE[i % PALETTE.length];
        const unit = s.unit && s.unit !== "None" ? ` ${s.unit}` : "";
        return {
          label: s.label,
          scale: scaleOf(s.unit),
          stroke: color,
          fill: series.length === 1 ? color + "14" : undefined,
          width: 2,
          spanGaps: false,
          points: { show: s.x.length < 80, size: 5 },
          // Away from the cursor the legend shows each series' latest value.
          value: (_u, v, _si, idx) => {
            const shown = idx == null ? lastValue(columns[i]) : v;
            return shown == null ? "–" : compactNumber(shown) + unit;
          },
        };
      }),
    ],
    hooks: { draw: [(u) => drawOverlays(u, { thresholds, highlights, scaleOf, defaultUnit: series[0]?.unit, periodS })] },
  };
  const wrapper = h("div.chart.metric-chart", { dataset: { units: units.join(",") } });
  container.replaceChildren(wrapper);
  const plot = new uPlot(opts, [x, ...columns], wrapper);
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

/** Threshold lines with their labels, then the highlighted datapoints, over the plot area. */
function drawOverlays(u, { thresholds, highlights, scaleOf, defaultUnit, periodS }) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const ratio = uPlot.pxRatio;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();

  for (const point of highlights) {
    const stepS = point.periodS || periodS;
    const x0 = u.valToPos(point.x, "x", true);
    const x1 = u.valToPos(point.x + stepS, "x", true);
    ctx.fillStyle = point.color + "1f";
    ctx.fillRect(x0, top, Math.max(2 * ratio, x1 - x0), height);
  }

  const labels = [];
  for (const threshold of thresholds) {
    const scale = scaleOf(threshold.unit ?? defaultUnit);
    const y = Math.round(u.valToPos(threshold.value, scale, true)) + 0.5;
    ctx.strokeStyle = threshold.color;
    ctx.lineWidth = 2 * ratio;
    ctx.setLineDash([8 * ratio, 5 * ratio]);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
    labels.push({ y, threshold });
  }
  ctx.setLineDash([]);
  // Labels sit above their line at the left edge, away from the newest data, stacked when
  // lines are close together.
  ctx.font = `600 ${12 * ratio}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  ctx.textAlign = "left"; // uPlot leaves its own alignment (axis labels) on the context
  labels.sort((a, b) => a.y - b.y);
  let lastBottom = -Infinity;
  for (const { y, threshold } of labels) {
    const text = threshold.label;
    const textWidth = ctx.measureText(text).width;
    const boxH = 16 * ratio;
    let boxTop = Math.max(top, y - boxH - 2 * ratio);
    if (boxTop < lastBottom) boxTop = lastBottom;
    lastBottom = boxTop + boxH;
    const boxLeft = left + 10 * ratio;
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(boxLeft - 4 * ratio, boxTop, textWidth + 8 * ratio, boxH);
    ctx.fillStyle = threshold.color;
    ctx.fillText(text, boxLeft, boxTop + boxH - 2 * ratio);
  }

  for (const point of highlights) {
    const cx = u.valToPos(point.x, "x", true); // where the series draws the bucket's point
    const onData = point.y != null;
    const cy = onData ? u.valToPos(point.y, "y", true) : top + height - 8 * ratio;
    ctx.beginPath();
    ctx.arc(cx, cy, (onData ? 6 : 5) * ratio, 0, 2 * Math.PI);
    ctx.lineWidth = 2.5 * ratio;
    ctx.strokeStyle = point.color;
    ctx.fillStyle = onData ? "#ffffff" : "rgba(255, 255, 255, 0)";
    ctx.fill();
    ctx.stroke();
    if (onData) {
      ctx.beginPath();
      ctx.arc(cx, cy, 2.5 * ratio, 0, 2 * Math.PI);
      ctx.fillStyle = point.color;
      ctx.fill();
    }
  }
  ctx.restore();
}
