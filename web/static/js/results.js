// Query results as the API returns them ([[{field, value}]]) turned into columns, rows, the
// series of a `stats ... by bin()` chart, CSV and JSON. No DOM here.

import { parseTime } from "./time.js";

const HIDDEN = new Set(["@ptr"]);
const TIME_VALUE = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?Z?$/;

/** {columns, rows}: rows are objects by field name; columns in order of first appearance. */
export function tabulate(results) {
  const columns = [];
  const seen = new Set();
  const rows = results.map((cells) => {
    const row = {};
    for (const { field, value } of cells) {
      row[field] = value;
      if (!seen.has(field)) {
        seen.add(field);
        if (!HIDDEN.has(field)) columns.push(field);
      }
    }
    return row;
  });
  return { columns, rows };
}

const isNumber = (v) => v !== null && v !== undefined && v !== "" && Number.isFinite(Number(v));

/**
 * The chart of a `stats ... by bin()` result, or null when the rows are not a time series:
 * the first column whose every value is a time is x, numeric columns are the values, and the
 * other columns (further group keys) split them into one series each.
 */
export function timeSeries({ columns, rows }) {
  if (!rows.length) return null;
  const timeColumn = columns.find((c) => rows.every((r) => typeof r[c] === "string" && TIME_VALUE.test(r[c])));
  if (!timeColumn) return null;
  const others = columns.filter((c) => c !== timeColumn);
  const valueColumns = others.filter((c) => rows.every((r) => r[c] === undefined || r[c] === null || isNumber(r[c])) && rows.some((r) => isNumber(r[c])));
  if (!valueColumns.length) return null;
  const groupColumns = others.filter((c) => !valueColumns.includes(c));
  const xs = [...new Set(rows.map((r) => parseTime(r[timeColumn]) / 1000))].filter(Number.isFinite).sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const series = new Map();
  for (const row of rows) {
    const group = groupColumns.map((c) => row[c] ?? "").join(" · ");
    for (const column of valueColumns) {
      const label = group ? (valueColumns.length > 1 ? `${column} ${group}` : group) : column;
      if (!series.has(label)) series.set(label, { label, values: new Array(xs.length).fill(null) });
      const i = index.get(parseTime(row[timeColumn]) / 1000);
      if (i !== undefined && isNumber(row[column])) series.get(label).values[i] = Number(row[column]);
    }
  }
  const ordered = [...series.values()].slice(0, 20); // past 20 lines a chart says nothing
  const stepS = xs.length > 1 ? Math.min(...xs.slice(1).map((x, i) => x - xs[i])) : 60;
  return { timeColumn, x: xs, series: ordered, stepS, truncated: series.size > ordered.length };
}

/** Flatten a JSON @message into [dot.path, value] pairs; null when it is not a JSON object. */
export function messageFields(message) {
  if (typeof message !== "string" || !message.trimStart().startsWith("{")) return null;
  let parsed;
  try {
    parsed = JSON.parse(message);
  } catch {
    return null;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return null;
  const out = [];
  const walk = (value, path) => {
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    } else {
      out.push([path, typeof value === "string" ? value : JSON.stringify(value)]);
    }
  };
  walk(parsed, "");
  return out;
}

// Cells a spreadsheet would run as a formula are prefixed with ' (OWASP "CSV injection");
// negative numbers and plain names such as @message are left alone.
function csvCell(value) {
  let text = value === undefined || value === null ? "" : String(value);
  const formula = /^[=+\t\r]/.test(text) || (text.startsWith("@") && !/^@[\w.]+$/.test(text));
  if (formula || (text.startsWith("-") && !isNumber(text))) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv({ columns, rows }) {
  const lines = [columns.map(csvCell).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}

export function toJson({ columns, rows }) {
  return JSON.stringify(rows.map((row) => Object.fromEntries(columns.filter((c) => c in row).map((c) => [c, row[c]]))), null, 2) + "\n";
}
