// The Metrics explorer: browse namespaces -> metrics -> dimension sets (ListMetrics, paged),
// pick series, graph them with one statistic and period over a time range, and see the
// threshold of every alarm that watches a graphed series, in the colour of its state.

import { api } from "./api.js";
import { PALETTE } from "./charts.js";
import { append, clear, formatCount, h, toast } from "./dom.js";
import {
  PERIODS,
  STATISTIC_CHOICES,
  alarmWatches,
  autoPeriod,
  dimensionsText,
  fetchAlarms,
  fetchStatistic,
  fitPeriod,
  isPercentile,
  metricKey,
  periodLabel,
  thresholdText,
} from "./metric_api.js";
import { STATE_COLORS, metricChart } from "./metric_chart.js";
import { TimeRangePicker } from "./time.js";

export const STATE_ITEM = "watchkeep.metrics";
const MAX_SERIES = 10;
const FIRST_PAGES = 4; // 2,000 metrics before "Load more"
const NAMESPACE_PAGES = 20;
const REFRESH_CHOICES = [[10, "10s"], [30, "30s"], [60, "1m"], [300, "5m"]];

export const page = {
  id: "metrics",
  title: "Explorer",
  section: "Metrics",
  render(container) {
    const view = new MetricsPage(container);
    return () => view.destroy();
  },
};

/** Open the explorer on these series (used by the alarm detail's "Open in Metrics"). */
export function openInExplorer(series, { statistic, periodS } = {}) {
  const saved = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
  localStorage.setItem(STATE_ITEM, JSON.stringify({ ...saved, series, statistic: statistic || saved.statistic, period: periodS || saved.period }));
  window.location.hash = "#/metrics";
}

class MetricsPage {
  constructor(container) {
    const saved = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
    this.metrics = []; // every listed metric: {namespace, metric_name, dimensions}
    this.listToken = null;
    this.completeNamespaces = new Set();
    this.level = { namespace: null, metric: null };
    this.selected = (saved.series || []).slice(0, MAX_SERIES);
    this.alarms = null;
    this.chart = null;
    this.timer = null;
    this.generation = 0;

    this.filter = h("input", { type: "search", placeholder: "Filter", "aria-label": "Filter metrics", oninput: () => this.renderList() });
    this.crumbs = h("nav.crumbs", { "aria-label": "Metric path" });
    this.list = h("ul.browse-list", { role: "list" });
    this.listStatus = h("div.browse-status");
    this.moreButton = h("button.secondary.small", { type: "button", hidden: true, onclick: () => this.loadMore() }, "Load more");

    this.statistic = h(
      "select",
      { "aria-label": "Statistic", onchange: () => this.statisticChanged() },
      STATISTIC_CHOICES.map((s) => h("option", { value: s }, s)),
      h("option", { value: "custom" }, "Other percentile…"),
    );
    this.customStatistic = h("input.short", { type: "text", placeholder: "p99.5", "aria-label": "Percentile", hidden: true, onchange: () => this.refresh() });
    this.setStatistic(saved.statistic || "Average");
    this.period = h(
      "select",
      { "aria-label": "Period", onchange: () => this.refresh() },
      h("option", { value: "auto" }, "Auto"),
      PERIODS.map(([seconds, label]) => h("option", { value: String(seconds) }, label)),
    );
    this.period.value = saved.period ? String(saved.period) : "auto";
    if (!this.period.value) this.period.value = "auto";
    this.range = new TimeRangePicker(saved.range || { kind: "relative", seconds: 3 * 3600, label: "3h" }, () => this.refresh());
    this.autoBox = h("input", { type: "checkbox", "aria-label": "Auto refresh", checked: Boolean(saved.auto), onchange: () => this.schedule() });
    this.autoEvery = h(
      "select.compact",
      { "aria-label": "Refresh every", onchange: () => this.schedule() },
      REFRESH_CHOICES.map(([s, label]) => h("option", { value: String(s) }, label)),
    );
    this.autoEvery.value = String(saved.autoEvery || 30);
    this.status = h("div.graph-status", { role: "status" });
    this.chartBox = h("div.metric-chart-box");
    this.thresholdList = h("ul.threshold-list", { "aria-label": "Alarm thresholds" });
    this.seriesTable = h("table.series-table");

    container.replaceChildren(
      h("div.page-head", {}, h("h1", {}, "Metrics"), h("p.lede", {}, "Browse namespaces, metrics and dimensions; graph series with the thresholds of the alarms that watch them.")),
      h(
        "div.metrics-layout",
        {},
        h(
          "section.panel.metric-browser",
          { "aria-label": "Browse metrics" },
          this.crumbs,
          this.filter,
          this.list,
          h("div.browse-footer", {}, this.listStatus, this.moreButton),
        ),
        h(
          "section.panel.metric-graph",
          { "aria-label": "Graph" },
          h(
            "div.graph-controls",
            {},
            h("label.stacked", {}, h("span.control-label", {}, "Statistic"), h("span.inline", {}, this.statistic, this.customStatistic)),
            h("label.stacked", {}, h("span.control-label", {}, "Period"), this.period),
            h("div.range-control", {}, h("span.control-label", {}, "Time range"), this.range.el),
            h(
              "div.refresh-control",
              {},
              h("label.check", {}, this.autoBox, "Auto refresh every"),
              this.autoEvery,
              h("button.secondary.small", { type: "button", onclick: () => this.refresh() }, "Refresh"),
            ),
          ),
          this.status,
          this.chartBox,
          this.thresholdList,
          this.seriesTable,
        ),
      ),
    );
    this.renderSeriesTable();
    this.loadListing();
    this.refresh();
    this.schedule();
  }

  destroy() {
    clearInterval(this.timer);
    this.generation += 1;
    if (this.chart) this.chart.destroy();
  }

  remember() {
    localStorage.setItem(
      STATE_ITEM,
      JSON.stringify({
        series: this.selected,
        statistic: this.statisticValue(),
        period: this.period.value === "auto" ? null : Number(this.period.value),
        range: this.range.value(),
        auto: this.autoBox.checked,
        autoEvery: Number(this.autoEvery.value),
      }),
    );
  }

  // ---- browsing ------------------------------------------------------------------------------

  async loadListing() {
    this.listStatus.textContent = "Loading…";
    try {
      let token = null;
      for (let i = 0; i < FIRST_PAGES; i += 1) {
        const data = await api("GET", "/api/v1/metrics", { query: { next_token: token } });
        this.metrics.push(...data.metrics);
        token = data.next_token;
        if (!token) break;
      }
      this.listToken = token;
      this.renderList();
    } catch (error) {
      this.listStatus.textContent = `Could not list metrics: ${error.message}`;
    }
  }

  async loadMore() {
    if (!this.listToken) return;
    this.moreButton.disabled = true;
    try {
      const data = await api("GET", "/api/v1/metrics", { query: { next_token: this.listToken } });
      this.addMetrics(data.metrics);
      this.listToken = data.next_token;
    } catch (error) {
      toast(`Could not list metrics: ${error.message}`, "error");
    }
    this.moreButton.disabled = false;
    this.renderList();
  }

  /** Every metric of one namespace, when the first pages did not reach its end. */
  async loadNamespace(namespace) {
    if (!this.listToken || this.completeNamespaces.has(namespace)) return;
    this.completeNamespaces.add(namespace);
    let token = null;
    const found = [];
    for (let i = 0; i < NAMESPACE_PAGES; i += 1) {
      const data = await api("GET", "/api/v1/metrics", { query: { namespace, next_token: token } });
      found.push(...data.metrics);
      token = data.next_token;
      if (!token) break;
    }
    this.addMetrics(found);
    this.renderList();
  }

  addMetrics(metrics) {
    const known = new Set(this.metrics.map(metricKey));
    for (const m of metrics) if (!known.has(metricKey(m))) this.metrics.push(m);
  }

  go(namespace, metric = null) {
    this.level = { namespace, metric };
    this.filter.value = "";
    this.renderList();
    if (namespace) this.loadNamespace(namespace).catch((e) => toast(`Could not list ${namespace}: ${e.message}`, "error"));
  }

  renderList() {
    const { namespace, metric } = this.level;
    const needle = this.filter.value.trim().toLowerCase();
    const crumb = (label, onclick, current) =>
      current ? h("span.crumb.current", { "aria-current": "location" }, label) : h("button.crumb", { type: "button", onclick }, label);
    append(clear(this.crumbs), [
      crumb("All namespaces", () => this.go(null), !namespace),
      namespace ? [h("span.crumb-sep", {}, "›"), crumb(namespace, () => this.go(namespace), !metric)] : null,
      metric ? [h("span.crumb-sep", {}, "›"), crumb(metric, null, true)] : null,
    ]);
    clear(this.list);
    let rows;
    if (!namespace) {
      const counts = countBy(this.metrics, (m) => m.namespace);
      rows = [...counts].filter(([ns]) => ns.toLowerCase().includes(needle)).map(([ns, n]) => this.browseRow(ns, `${formatCount(n)} metric${n === 1 ? "" : "s"}`, () => this.go(ns), "namespace"));
    } else if (!metric) {
      const counts = countBy(this.metrics.filter((m) => m.namespace === namespace), (m) => m.metric_name);
      rows = [...counts]
        .filter(([name]) => name.toLowerCase().includes(needle))
        .map(([name, n]) => this.browseRow(name, `${formatCount(n)} dimension set${n === 1 ? "" : "s"}`, () => this.go(namespace, name), "metric"));
    } else {
      const sets = this.metrics.filter((m) => m.namespace === namespace && m.metric_name === metric);
      rows = sets.filter((m) => dimensionsText(m.dimensions).toLowerCase().includes(needle)).map((m) => this.seriesRow(m));
    }
    this.list.append(...rows);
    if (!rows.length) this.list.append(h("li.empty", {}, this.metrics.length ? "Nothing matches." : "No metrics yet: publish some with PutMetricData."));
    this.moreButton.hidden = !this.listToken;
    this.listStatus.textContent = `${formatCount(this.metrics.length)} metric${this.metrics.length === 1 ? "" : "s"}${this.listToken ? " so far" : ""}`;
  }

  browseRow(label, meta, onclick, kind) {
    return h("li", {}, h("button.browse-item", { type: "button", onclick, dataset: { kind, name: label } }, h("span.name", {}, label), h("span.meta", {}, meta), h("span.go", { "aria-hidden": "true" }, "›")));
  }

  seriesRow(metric) {
    const key = metricKey(metric);
    const on = this.selected.some((s) => metricKey(s) === key);
    const text = dimensionsText(metric.dimensions);
    const box = h("input", { type: "checkbox", checked: on, onchange: () => this.toggle(metric, box.checked) });
    return h(
      "li",
      {},
      h("label.browse-item.series-item", { dataset: { kind: "dimensions", dimensions: text } }, box, h("span.name", {}, text || h("span.muted", {}, "(no dimensions)"))),
    );
  }

  toggle(metric, on) {
    const key = metricKey(metric);
    if (on && this.selected.length >= MAX_SERIES) {
      toast(`At most ${MAX_SERIES} series in one graph.`, "error");
      this.renderList();
      return;
    }
    this.selected = this.selected.filter((s) => metricKey(s) !== key);
    if (on) this.selected.push({ namespace: metric.namespace, metric_name: metric.metric_name, dimensions: metric.dimensions || {} });
    this.renderList();
    this.renderSeriesTable();
    this.refresh();
  }

  // ---- graph -------------------------------------------------------------------------------

  setStatistic(value) {
    const known = STATISTIC_CHOICES.includes(value);
    this.statistic.value = known ? value : "custom";
    this.customStatistic.value = known ? "" : value;
    this.customStatistic.hidden = known;
  }

  statisticChanged() {
    this.customStatistic.hidden = this.statistic.value !== "custom";
    if (this.statistic.value === "custom") this.customStatistic.focus();
    else this.refresh();
  }

  statisticValue() {
    return this.statistic.value === "custom" ? this.customStatistic.value.trim() : this.statistic.value;
  }

  schedule() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.autoBox.checked) this.timer = setInterval(() => this.refresh(), Number(this.autoEvery.value) * 1000);
    this.remember();
  }

  renderSeriesTable() {
    if (!this.selected.length) {
      this.seriesTable.replaceChildren();
      return;
    }
    this.seriesTable.replaceChildren(
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Namespace"), h("th", {}, "Metric"), h("th", {}, "Dimensions"), h("th", {}, "Unit"), h("th", {}, ""))),
      h(
        "tbody",
        {},
        this.selected.map((s, i) =>
          h(
            "tr",
            { dataset: { key: metricKey(s) } },
            h("td", {}, h("span.swatch", { style: { background: PALETTE[i % PALETTE.length] } })),
            h("td", {}, s.namespace),
            h("td.mono", {}, s.metric_name),
            h("td.mono", {}, dimensionsText(s.dimensions) || "–"),
            h("td.unit", {}, (this.units && this.units.get(metricKey(s))) || ""),
            h("td", {}, h("button.link", { type: "button", onclick: () => this.toggle(s, false), "aria-label": `Remove ${s.metric_name}` }, "Remove")),
          ),
        ),
      ),
    );
  }

  async refresh() {
    this.remember();
    const generation = ++this.generation;
    const statistic = this.statisticValue();
    if (!STATISTIC_CHOICES.includes(statistic) && !isPercentile(statistic)) {
      this.setStatus("A percentile is p0 to p100, with up to two decimals (p99.9).", "error");
      return;
    }
    if (!this.selected.length) {
      if (this.chart) this.chart.destroy();
      this.chart = null;
      this.chartBox.replaceChildren(h("div.graph-empty", {}, "Pick one or more series in the browser to graph them."));
      this.thresholdList.replaceChildren();
      this.setStatus("");
      return;
    }
    const { startS, endS, label } = this.range.resolve();
    const chosen = this.period.value === "auto" ? autoPeriod(endS - startS) : Number(this.period.value);
    const periodS = fitPeriod(chosen, endS - startS);
    this.setStatus("Loading…", "loading");
    try {
      const [results, alarms] = await Promise.all([
        Promise.all(this.selected.map((m) => fetchStatistic(m, { statistic, periodS, startS, endS }))),
        fetchAlarms().catch(() => null),
      ]);
      if (generation !== this.generation) return;
      this.alarms = alarms;
      this.units = new Map(this.selected.map((m, i) => [metricKey(m), results[i].unit || ""]));
      this.renderSeriesTable();
      this.draw(results, { statistic, periodS, startS, endS });
      const points = results.reduce((n, r) => n + r.x.filter((_, i) => r.values[i] != null).length, 0);
      const adjusted = periodS !== chosen ? ` (${periodLabel(chosen)} would give too many points)` : "";
      this.setStatus(
        `${statistic} per ${periodLabel(periodS)}${adjusted} over ${label}: ${formatCount(points)} datapoint${points === 1 ? "" : "s"}${alarms === null ? " · alarms unavailable" : ""}.`,
        "complete",
      );
    } catch (error) {
      if (generation !== this.generation) return;
      this.setStatus(error.message, "error");
    }
  }

  draw(results, { statistic, periodS, startS, endS }) {
    const series = this.selected.map((m, i) => {
      const dims = dimensionsText(m.dimensions);
      return {
        label: `${m.metric_name}${dims ? ` {${dims}}` : ""} ${statistic}`,
        unit: results[i].unit,
        x: results[i].x,
        values: results[i].values,
      };
    });
    const thresholds = [];
    for (const alarm of this.alarms || []) {
      const index = this.selected.findIndex((m) => alarmWatches(alarm, m));
      const threshold = alarm.configuration && alarm.configuration.threshold;
      if (index < 0 || typeof threshold !== "number") continue;
      thresholds.push({ alarm, label: `${alarm.name} (${alarm.state.value})`, value: threshold, color: STATE_COLORS[alarm.state.value] || STATE_COLORS.INSUFFICIENT_DATA, unit: series[index].unit });
    }
    if (this.chart) this.chart.destroy();
    this.chart = metricChart(this.chartBox, { series, startS, endS, periodS, thresholds });
    this.thresholdList.replaceChildren(
      ...thresholds.map(({ alarm, color }) =>
        h(
          "li.threshold-item",
          { dataset: { alarm: alarm.name, state: alarm.state.value } },
          h("span.dash", { style: { borderColor: color }, "aria-hidden": "true" }),
          h("a", { href: `#/alarms/${encodeURIComponent(alarm.name)}` }, alarm.name),
          h("span.mono", {}, thresholdText(alarm.configuration)),
          h(`span.badge.state.${alarm.state.value.toLowerCase()}`, {}, alarm.state.value),
          alarm.configuration.statistic && alarm.configuration.statistic !== statistic
            ? h("span.hint", {}, `alarm uses ${alarm.configuration.statistic} per ${periodLabel(alarm.configuration.period)}`)
            : null,
        ),
      ),
    );
  }

  setStatus(text, kind = "") {
    this.status.textContent = text;
    this.status.className = `graph-status ${kind}`;
  }
}

function countBy(items, keyOf) {
  const counts = new Map();
  for (const item of items) counts.set(keyOf(item), (counts.get(keyOf(item)) || 0) + 1);
  return counts;
}
