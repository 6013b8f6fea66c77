// The Logs Insights page: pick groups and a time range, write a query, run it (StartQuery, then
// GetQueryResults until it finishes), cancel it (StopQuery), see a histogram, the rows and a
// chart, and export the results. Saved and recent queries live in library.js.

import { api, ApiError } from "./api.js";
import { fillBuckets, histogramPeriod, timeChart } from "./charts.js";
import { append, clear, debounce, download, formatBytes, formatCount, h, toast } from "./dom.js";
import { QueryEditor } from "./editor.js";
import { GroupPicker } from "./groups.js";
import { HISTOGRAM_TAG, QueryLibrary } from "./library.js";
import { commands } from "./lql.js";
import { messageFields, tabulate, timeSeries, toCsv, toJson } from "./results.js";
import { parseTime, TimeRangePicker } from "./time.js";

const STATE_ITEM = "watchkeep.insights";
const PAGE_ROWS = 250;
const DEFAULT_QUERY = "fields @timestamp, @message, @logStream\n| sort @timestamp desc\n| limit 100";
const FINISHED = new Set(["Complete", "Failed", "Cancelled", "Timeout", "Unknown"]);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const page = {
  id: "insights",
  title: "Logs Insights",
  section: "Logs",
  render(container) {
    const view = new InsightsPage(container);
    return () => view.destroy();
  },
};

class InsightsPage {
  constructor(container) {
    const saved = loadState();
    this.destroyed = false;
    this.runs = 0;
    this.running = null; // {queryId, histogramId}
    this.result = null; // {columns, rows, statistics}
    this.charts = [];
    this.knownFields = new Set();
    this.shownRows = 0;

    this.groups = new GroupPicker({ selected: saved.groups || [], onChange: () => this.remember() });
    this.range = new TimeRangePicker(saved.range, () => this.remember());
    this.editor = new QueryEditor({
      value: saved.query ?? DEFAULT_QUERY,
      onRun: () => this.run(),
      onChange: debounce(() => this.remember(), 300),
      fields: () => [...this.knownFields],
    });
    this.runButton = h("button.primary", { type: "button", onclick: () => this.run(), title: "Run query (Ctrl+Enter / ⌘+Enter)" }, "Run query");
    this.cancelButton = h("button.danger", { type: "button", hidden: true, onclick: () => this.cancel() }, "Cancel");
    this.status = h("div.query-status", { role: "status", "aria-live": "polite" });
    this.exportButtons = [
      h("button.secondary.small", { type: "button", disabled: true, onclick: () => this.export("csv") }, "CSV"),
      h("button.secondary.small", { type: "button", disabled: true, onclick: () => this.export("json") }, "JSON"),
    ];
    this.logsTab = h("button.tab.active", { type: "button", role: "tab", "aria-selected": "true", onclick: () => this.showTab("logs") }, "Logs");
    this.vizTab = h("button.tab", { type: "button", role: "tab", "aria-selected": "false", disabled: true, title: "A stats … by bin() query draws a chart", onclick: () => this.showTab("viz") }, "Visualization");
    this.chartKind = h("select", { "aria-label": "Chart type", onchange: () => this.drawVisualization() }, h("option", { value: "line" }, "Line"), h("option", { value: "bar" }, "Bar"));
    this.histogram = h("div.histogram", { hidden: true });
    this.histogramNote = h("div.histogram-note");
    this.summary = h("div.result-summary");
    this.table = h("table.results");
    this.more = h("button.secondary.small.show-more", { type: "button", hidden: true, onclick: () => this.renderRows() }, "Show more rows");
    this.logsPane = h("div.tab-pane.logs-pane", { role: "tabpanel" }, h("div.histogram-box", {}, this.histogramNote, this.histogram), this.summary, h("div.table-wrap", {}, this.table), this.more);
    this.vizChart = h("div.viz-chart");
    this.vizNote = h("div.viz-note");
    this.vizPane = h("div.tab-pane.viz-pane", { role: "tabpanel", hidden: true }, h("div.viz-controls", {}, h("label", {}, "Chart ", this.chartKind), this.vizNote), this.vizChart);
    this.library = new QueryLibrary({
      current: () => ({ query: this.editor.value, groups: this.groups.value }),
      onLoad: ({ query, groups }) => {
        this.editor.value = query;
        if (groups.length) this.groups.value = groups;
        this.remember();
        this.editor.focus();
      },
      onSaveError: (error) => this.showError(error),
    });

    const main = h(
      "div.insights-main",
      {},
      h(
        "section.panel.query-panel",
        { "aria-label": "Query" },
        h("div.query-controls", {}, this.groups.el, h("div.range-control", {}, h("span.control-label", {}, "Time range"), this.range.el)),
        this.editor.el,
        h(
          "div.query-actions",
          {},
          this.runButton,
          this.cancelButton,
          h("button.secondary", { type: "button", onclick: () => this.library.save() }, "Save"),
          this.status,
          h("div.export", {}, h("span.control-label", {}, "Export"), this.exportButtons),
        ),
      ),
      h("section.panel.results-panel", { "aria-label": "Results" }, h("div.tabs", { role: "tablist" }, this.logsTab, this.vizTab), this.logsPane, this.vizPane),
    );
    container.replaceChildren(h("div.page-head", {}, h("h1", {}, "Logs Insights")), h("div.insights-layout", {}, main, this.library.el));
    this.renderEmpty("Pick log groups and a time range, then run a query.");
    this.groups.load().catch((e) => toast(`Could not list log groups: ${e.message}`, "error"));
    this.library.loadSaved();
    this.library.loadRecent();
  }

  destroy() {
    this.destroyed = true;
    this.clearCharts();
  }

  remember() {
    localStorage.setItem(STATE_ITEM, JSON.stringify({ query: this.editor.value, groups: this.groups.value, range: this.range.value() }));
  }

  // ---- running ---------------------------------------------------------------------------

  async run() {
    if (this.running) return;
    const groups = this.groups.value;
    const text = this.editor.value;
    if (!groups.length) return this.setStatus("error", "Pick at least one log group.");
    if (!text.trim()) return this.setStatus("error", "Write a query first.");
    this.editor.clearError();
    const { startS, endS, label } = this.range.resolve();
    const runId = ++this.runs;
    const started = performance.now();
    this.running = { queryId: null, histogramId: null };
    this.setRunning(true);
    this.setStatus("running", "Starting…");
    try {
      const { query_id: queryId } = await api("POST", "/api/v1/queries", { body: { query: text, log_groups: groups, start: startS, end: endS } });
      this.running.queryId = queryId;
      const isStats = commands(text).some((c) => c.name === "stats");
      if (isStats) {
        this.histogram.hidden = true;
        this.histogramNote.textContent = "";
      } else {
        // Runs beside the query and draws when done (it never throws); a newer run wins.
        this.runHistogram(text, groups, startS, endS, runId);
      }
      const result = await this.poll(queryId, runId, (status) =>
        this.setStatus("running", `${status}… ${((performance.now() - started) / 1000).toFixed(1)} s`),
      );
      if (runId !== this.runs || this.destroyed) return;
      this.showResult(result, { label, started, isStats });
    } catch (error) {
      if (runId !== this.runs || this.destroyed) return;
      this.showError(error);
    } finally {
      if (runId === this.runs) {
        this.running = null;
        this.setRunning(false);
        this.library.loadRecent();
      }
    }
  }

  /** GetQueryResults until the query finishes (or a newer run replaces this one). */
  async poll(queryId, runId, onProgress = () => {}) {
    let delay = 150;
    for (;;) {
      const result = await api("GET", `/api/v1/queries/${encodeURIComponent(queryId)}`);
      if (runId !== this.runs || this.destroyed || FINISHED.has(result.status)) return result;
      onProgress(result.status);
      await sleep(delay);
      delay = Math.min(1000, delay * 1.5);
    }
  }

  async cancel() {
    if (!this.running) return;
    const { queryId, histogramId } = this.running;
    this.setStatus("running", "Cancelling…");
    for (const id of [queryId, histogramId]) {
      if (!id) continue;
      api("DELETE", `/api/v1/queries/${encodeURIComponent(id)}`).catch(() => {});
    }
  }

  /** The histogram: the query's own filtering commands, then a count by bin(). */
  async runHistogram(text, groups, startS, endS, runId) {
    const period = histogramPeriod(startS, endS);
    const kept = commands(text).filter((c) => ["filter", "parse", "fields"].includes(c.name));
    const query = [...kept.map((c) => c.text.trim()), `stats count(*) as events by bin(${period.spelled}) as t`].join("\n| ") + `\n${HISTOGRAM_TAG}`;
    try {
      const { query_id: id } = await api("POST", "/api/v1/queries", { body: { query, log_groups: groups, start: startS, end: endS } });
      if (this.running && runId === this.runs) this.running.histogramId = id;
      const result = await this.poll(id, runId);
      if (runId !== this.runs || this.destroyed || result.status !== "Complete") return;
      const counts = new Map();
      for (const row of tabulate(result.results).rows) counts.set(parseTime(row.t) / 1000, Number(row.events));
      const { x, values } = fillBuckets(startS, endS, period.seconds, counts);
      const total = values.reduce((a, b) => a + b, 0);
      this.histogramNote.textContent = `${formatCount(total)} matching events, by ${period.spelled} (drag across the chart to zoom in)`;
      this.histogram.hidden = false;
      this.clearCharts("histogram");
      const chart = timeChart(this.histogram, {
        x,
        series: [{ label: "events", values }],
        kind: "bar",
        height: 150,
        stepS: period.seconds,
        onSelect: (startMs, endMs) => {
          this.range.setAbsolute(startMs, endMs);
          this.run();
        },
      });
      this.charts.push({ kind: "histogram", chart });
    } catch {
      // The histogram is a convenience: a query it cannot be derived from keeps its rows.
      if (runId === this.runs) {
        this.histogram.hidden = true;
        this.histogramNote.textContent = "";
      }
    }
  }

  setRunning(on) {
    this.runButton.disabled = on;
    this.cancelButton.hidden = !on;
    this.runButton.textContent = on ? "Running…" : "Run query";
  }

  setStatus(kind, text) {
    this.status.className = `query-status ${kind}`;
    append(clear(this.status), [kind === "running" ? h("span.spinner", { "aria-hidden": "true" }) : null, text]);
  }

  showError(error) {
    if (error instanceof ApiError && error.code === "MalformedQueryException") {
      const details = error.details || {};
      this.editor.setError({
        line: details.line,
        column: details.column,
        location: details.queryCompileError && details.queryCompileError.location,
        message: error.message,
      });
      this.setStatus("error", "The query has an error (marked in the editor).");
      return;
    }
    this.setStatus("error", `${error.code ? error.code + ": " : ""}${error.message}`);
  }

  showResult(result, { label, started, isStats }) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (result.status !== "Complete") {
      const reason = result.error ? `: ${result.error}` : "";
      this.setStatus(result.status === "Cancelled" ? "cancelled" : "error", `${result.status}${reason} (${seconds} s)`);
      if (result.status === "Cancelled") this.renderEmpty("The query was cancelled.");
      return;
    }
    const table = tabulate(result.results || []);
    this.result = { ...table, statistics: result.statistics || {} };
    for (const column of table.columns) this.knownFields.add(column);
    const stats = result.statistics || {};
    this.setStatus(
      "complete",
      `Complete · ${formatCount(table.rows.length)} rows · ${formatCount(stats.records_matched)} records matched · ${formatCount(stats.records_scanned)} scanned (${formatBytes(stats.bytes_scanned)}) · ${seconds} s`,
    );
    this.summary.textContent = `Showing ${formatCount(table.rows.length)} rows from ${label}.`;
    for (const b of this.exportButtons) b.disabled = !table.rows.length;
    this.series = isStats ? timeSeries(table) : null;
    this.vizTab.disabled = !this.series;
    this.renderTable();
    if (this.series) {
      this.showTab("viz");
    } else {
      this.showTab("logs");
    }
  }

  // ---- results ---------------------------------------------------------------------------

  clearCharts(kind = null) {
    this.charts = this.charts.filter((c) => {
      if (kind && c.kind !== kind) return true;
      c.chart.destroy();
      return false;
    });
  }

  renderEmpty(text) {
    this.result = null;
    for (const b of this.exportButtons) b.disabled = true;
    this.summary.textContent = "";
    this.more.hidden = true;
    clear(this.table).append(h("tbody", {}, h("tr", {}, h("td.empty", {}, text))));
  }

  renderTable() {
    const { columns, rows } = this.result;
    if (!rows.length) return this.renderEmpty("No rows matched in this time range.");
    const head = h("tr", {}, h("th.expander", { "aria-label": "Expand" }), h("th.num", {}, "#"), columns.map((c) => h("th", { scope: "col" }, c)));
    this.tbody = h("tbody");
    clear(this.table).append(h("thead", {}, head), this.tbody);
    this.shownRows = 0;
    this.renderRows();
  }

  renderRows() {
    const { columns, rows } = this.result;
    const end = Math.min(rows.length, this.shownRows + PAGE_ROWS);
    for (let i = this.shownRows; i < end; i += 1) this.tbody.append(this.rowElement(rows[i], i, columns));
    this.shownRows = end;
    this.more.hidden = end >= rows.length;
    this.more.textContent = `Show more rows (${formatCount(rows.length - end)} left)`;
  }

  rowElement(row, i, columns) {
    const toggle = h("button.expand", { type: "button", "aria-expanded": "false", "aria-label": `Expand row ${i + 1}` }, "▸");
    const tr = h(
      "tr.result-row",
      { dataset: { index: String(i) } },
      h("td.expander", {}, toggle),
      h("td.num", {}, String(i + 1)),
      columns.map((c) => h(c === "@message" ? "td.msg" : "td", { title: c === "@message" ? null : row[c] ?? "" }, row[c] ?? "")),
    );
    tr.addEventListener("click", (event) => {
      if (window.getSelection().toString()) return; // selecting text is not a click
      if (event.target.closest("a")) return;
      const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains("row-detail");
      if (open) {
        tr.nextElementSibling.remove();
      } else {
        tr.after(this.detailRow(row, columns.length + 2));
      }
      tr.classList.toggle("open", !open);
      toggle.textContent = open ? "▸" : "▾";
      toggle.setAttribute("aria-expanded", String(!open));
    });
    return tr;
  }

  detailRow(row, span) {
    // @message has a block of its own below; the table keeps to the other fields.
    const fields = Object.entries(row).filter(([name]) => name !== "@message");
    const message = row["@message"];
    const discovered = messageFields(message);
    if (discovered) for (const [name] of discovered) this.knownFields.add(name);
    const fieldTable = (pairs) =>
      h("table.kv", {}, h("tbody", {}, pairs.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v ?? "")))));
    let pretty = message;
    if (discovered) pretty = JSON.stringify(JSON.parse(message), null, 2);
    return h(
      "tr.row-detail",
      {},
      h(
        "td",
        { colSpan: span },
        h(
          "div.detail-grid",
          {},
          h("div", {}, h("h3", {}, "Fields"), fieldTable(fields)),
          discovered ? h("div", {}, h("h3", {}, "Fields in @message"), fieldTable(discovered)) : null,
          message !== undefined ? h("div.detail-message", {}, h("h3", {}, "@message"), h("pre", {}, pretty)) : null,
        ),
      ),
    );
  }

  showTab(which) {
    const viz = which === "viz" && this.series;
    this.logsTab.classList.toggle("active", !viz);
    this.vizTab.classList.toggle("active", Boolean(viz));
    this.logsTab.setAttribute("aria-selected", String(!viz));
    this.vizTab.setAttribute("aria-selected", String(Boolean(viz)));
    this.logsPane.hidden = Boolean(viz);
    this.vizPane.hidden = !viz;
    if (viz) this.drawVisualization();
  }

  drawVisualization() {
    this.clearCharts("viz");
    if (!this.series) return;
    const { x, series, stepS, truncated, timeColumn } = this.series;
    this.vizNote.textContent = `${series.length} series over ${timeColumn}${truncated ? " (the first 20 shown)" : ""}`;
    const chart = timeChart(this.vizChart, { x, series, kind: this.chartKind.value, height: 320, stepS });
    this.charts.push({ kind: "viz", chart });
  }

  export(format) {
    if (!this.result) return;
    const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
    if (format === "csv") download(`watchkeep-query-${stamp}.csv`, new Blob([toCsv(this.result)], { type: "text/csv" }));
    else download(`watchkeep-query-${stamp}.json`, new Blob([toJson(this.result)], { type: "application/json" }));
  }
}

function loadState() {
  try {
    const state = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
    if (state.range && state.range.kind === "relative" && !Number.isFinite(state.range.seconds)) delete state.range;
    return state;
  } catch {
    return {};
  }
}
