// What the Metrics explorer and the Alarms pages ask the API, and the small vocabulary they share:
// a metric is {namespace, metric_name, dimensions: {name: value}}, statistics are CloudWatch's
// (Average ... SampleCount, pNN), periods are seconds and times are epoch seconds, UTC.

import { ApiError, api } from "./api.js";

export const SIMPLE_STATISTICS = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"];
export const STATISTIC_CHOICES = [...SIMPLE_STATISTICS, "p50", "p90", "p95", "p99", "p99.9"];
const SNAKE = { Average: "average", Sum: "sum", Minimum: "minimum", Maximum: "maximum", SampleCount: "sample_count" };

export const PERIODS = [
  [1, "1s"], [10, "10s"], [30, "30s"], [60, "1m"], [300, "5m"], [900, "15m"], [3600, "1h"], [21600, "6h"], [86400, "1d"],
];
const MAX_POINTS = 1440; // GetMetricStatistics answers at most 1,440 datapoints (spec §2.2)

export const COMPARISONS = {
  GreaterThanThreshold: ">",
  GreaterThanOrEqualToThreshold: ">=",
  LessThanThreshold: "<",
  LessThanOrEqualToThreshold: "<=",
};

/** A pNN or pNN.NN percentile, which GetMetricStatistics takes as an extended statistic. */
export function isPercentile(text) {
  return /^p(100|\d{1,2})(\.\d{1,2})?$/.test(text);
}

/** The period the explorer picks for a range: about 60 to 720 points. */
export function autoPeriod(spanS) {
  for (const [seconds] of PERIODS) {
    if (seconds >= 60 && spanS / seconds <= 720) return seconds;
  }
  return 86400;
}

/** The smallest allowed period at or above `periodS` that keeps the range within one answer. */
export function fitPeriod(periodS, spanS) {
  if (spanS / periodS <= MAX_POINTS) return periodS;
  const fitting = PERIODS.find(([seconds]) => seconds >= periodS && spanS / seconds <= MAX_POINTS);
  return fitting ? fitting[0] : 86400 * Math.ceil(spanS / 86400 / MAX_POINTS);
}

export function periodLabel(seconds) {
  const known = PERIODS.find(([s]) => s === seconds);
  if (known) return known[1];
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** "AutoScalingGroupName=web, InstanceId=i-1" (sorted by name), or "" without dimensions. */
export function dimensionsText(dimensions) {
  return Object.entries(dimensions || {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join(", ");
}

/** A stable key of a metric: its namespace, name and sorted dimensions. */
export function metricKey(metric) {
  return JSON.stringify([metric.namespace, metric.metric_name ?? metric.name, dimensionsText(metric.dimensions)]);
}

/** True when an alarm's `configuration.metric` ({namespace, name, dimensions}) is `metric`. */
export function alarmWatches(alarm, metric) {
  const watched = alarm && alarm.kind === "metric" && alarm.configuration && alarm.configuration.metric;
  return Boolean(watched) && metricKey(watched) === metricKey(metric);
}

/** "2026-01-01T10:04:00.000+0000" (StateReasonData's form) or any ISO time -> epoch ms. */
export function parseIsoTime(text) {
  if (typeof text !== "string") return NaN;
  return Date.parse(text.trim().replace(" ", "T").replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
}

/**
 * GetMetricStatistics for one metric and one statistic over [startS, endS).
 * @returns {Promise<{x: number[], values: (number|null)[], unit: string|null}>} x in epoch seconds
 */
export async function fetchStatistic(metric, { statistic, periodS, startS, endS, signal }) {
  const percentile = isPercentile(statistic);
  const body = {
    namespace: metric.namespace,
    metric_name: metric.metric_name ?? metric.name,
    dimensions: metric.dimensions || {},
    start: startS,
    end: endS,
    period: periodS,
  };
  if (percentile) body.extended_statistics = [statistic];
  else body.statistics = [statistic];
  const data = await api("POST", "/api/v1/metrics/statistics", { body, signal });
  const points = data.datapoints || [];
  const field = SNAKE[statistic];
  const units = points.map((p) => p.unit).filter((u) => u && u !== "None");
  return {
    x: points.map((p) => Math.floor(p.timestamp / 1000)),
    values: points.map((p) => (percentile ? (p.extended_statistics || {})[statistic] : p[field]) ?? null),
    unit: units[units.length - 1] || metric.unit || null,
  };
}

/**
 * The alarms (DescribeAlarms), or null while the server has no alarms API (404) or the key may
 * not read them (403): pages then simply show no thresholds.
 */
export async function fetchAlarms(query = {}, { signal } = {}) {
  try {
    const data = await api("GET", "/api/v1/alarms", { query, signal });
    return data.alarms || [];
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return null;
    throw error;
  }
}

/** "> 80", "<= 0.5": an alarm's comparison and threshold. */
export function thresholdText(configuration) {
  const symbol = COMPARISONS[configuration.comparison] || configuration.comparison || "";
  return `${symbol} ${configuration.threshold}`;
}
