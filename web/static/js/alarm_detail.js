// One alarm (#/alarms/<name>): state and reason, the graph of what it watches with its threshold
// and the datapoints that decided its state (StateReasonData.evaluatedDatapoints), its
// configuration, its history (DescribeAlarmHistory, newest first, paged), "Set state" for
// testing and the actions switch. A composite shows its rule and its children's states.

import { ApiError, api } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { dimensionsText, fetchAlarms, fetchStatistic, parseIsoTime, periodLabel, thresholdText } from "./metric_api.js";
import { HistoryView } from "./alarm_history.js";
import { STATE_COLORS, metricChart } from "./metric_chart.js";
import { openInExplorer } from "./metrics.js";
import { formatTime } from "./time.js";

const RANGES = [[3600, "1h"], [3 * 3600, "3h"], [12 * 3600, "12h"], [86400, "1d"], [7 * 86400, "1w"]];
const MAX_POINTS = 1440;
const BREACH = { GreaterThanThreshold: (v, t) => v > t, GreaterThanOrEqualToThreshold: (v, t) => v >= t, LessThanThreshold: (v, t) => v < t, LessThanOrEqualToThreshold: (v, t) => v <= t };

/** Render the alarm `name` in `container`; returns the page's cleanup. */
export function renderAlarmDetail(container, name) {
  const view = new AlarmDetail(container, name);
  return () => view.destroy();
}

/** A state badge: red ALARM, green OK, grey INSUFFICIENT_DATA. */
export function stateBadge(state) {
  const value = state || "INSUFFICIENT_DATA";
  return h(`span.badge.state.${value.toLowerCase()}`, { title: value }, value === "INSUFFICIENT_DATA" ? "INSUFFICIENT DATA" : value);
}

/** "3 min ago" for a past epoch-ms time. */
export function ago(ms, nowMs = Date.now()) {
  if (!Number.isFinite(ms)) return "";
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const path = (name, suffix = "") => `/api/v1/alarms/${encodeURIComponent(name)}${suffix}`;

class AlarmDetail {
  constructor(container, name) {
    this.container = container;
    this.name = name;
    this.chart = null;
    this.rangeS = 3 * 3600;
    this.alive = true;
    container.replaceChildren(this.head(null), h("div.alarm-status", { role: "status" }, "Loading…"));
    this.load();
  }

  destroy() {
    this.alive = false;
    if (this.chart) this.chart.destroy();
  }

  head(alarm) {
    return h(
      "div.page-head.alarm-head",
      {},
      h("a.back", { href: "#/alarms" }, "‹ Alarms"),
      h("h1", {}, this.name),
      alarm ? stateBadge(alarm.state.value) : null,
      alarm ? h("span.hint", {}, `${alarm.kind === "composite" ? "Composite alarm" : "Metric alarm"} · defined by ${alarm.source === "file" ? "a rule file" : "the API"}`) : null,
    );
  }

  async load() {
    try {
      const alarm = await api("GET", path(this.name));
      if (this.alive) this.render(alarm);
    } catch (error) {
      if (!this.alive) return;
      const missing = error instanceof ApiError && error.status === 404;
      this.container.replaceChildren(
        this.head(null),
        h("section.panel", {}, h("p", {}, missing ? `There is no alarm named “${this.name}”.` : `Could not read the alarm: ${error.message}`), h("a", { href: "#/alarms" }, "Back to the alarms")),
      );
    }
  }

  render(alarm) {
    this.alarm = alarm;
    const conf = alarm.configuration || {};
    const composite = alarm.kind === "composite";
    this.chartBox = h("div.metric-chart-box");
    this.chartStatus = h("div.graph-status", { role: "status" });
    this.evaluated = h("div.evaluated");
    this.history = new HistoryView(alarm.name);
    const actionsButton = h(
      "button.secondary.small",
      { type: "button", onclick: () => this.setActions(!alarm.actions_enabled) },
      alarm.actions_enabled ? "Disable actions" : "Enable actions",
    );
    const buttons = h(
      "div.detail-buttons",
      {},
      conf.metric
        ? h(
            "button.secondary.small",
            {
              type: "button",
              onclick: () => openInExplorer([{ namespace: conf.metric.namespace, metric_name: conf.metric.name, dimensions: conf.metric.dimensions || {} }], { statistic: conf.statistic, periodS: conf.period }),
            },
            "Open in Metrics",
          )
        : null,
      actionsButton,
      h("button.secondary.small", { type: "button", onclick: () => this.load() }, "Refresh"),
    );
    const rangeSelect = h(
      "select.compact",
      { "aria-label": "Graph range", onchange: () => ((this.rangeS = Number(rangeSelect.value)), this.drawGraph()) },
      h("option", { value: "0" }, "Evaluation range"),
      RANGES.map(([s, label]) => h("option", { value: String(s) }, `Last ${label}`)),
    );
    rangeSelect.value = String(this.rangeS);
    const main = h(
      "div.alarm-main",
      {},
      this.statePanel(alarm),
      composite
        ? this.compositePanel(alarm)
        : h(
            "section.panel.alarm-graph",
            { "aria-label": "Graph" },
            h("div.side-head", {}, h("h2", {}, graphTitle(conf)), rangeSelect),
            this.chartStatus,
            this.chartBox,
            this.evaluated,
          ),
      this.history.el,
    );
    const side = h("div.alarm-side", {}, this.configPanel(alarm), this.setStatePanel(alarm));
    this.container.replaceChildren(h("div.alarm-head-row", {}, this.head(alarm), buttons), h("div.alarm-layout", {}, main, side));
    if (!composite) this.drawGraph();
    this.history.load();
  }

  statePanel(alarm) {
    const state = alarm.state;
    const when = parseIsoTime(state.timestamp);
    const transitioned = parseIsoTime(state.transitioned || "");
    return h(
      "section.panel.state-panel",
      { dataset: { state: state.value } },
      h("div.state-line", {}, stateBadge(state.value), h("p.state-reason", {}, state.reason || "")),
      h(
        "div.hint",
        {},
        `Updated ${formatTime(when, { millis: false })} UTC (${ago(when)})`,
        Number.isFinite(transitioned) ? ` · in ${state.value} since ${formatTime(transitioned, { millis: false })} UTC` : " · no transition yet",
        alarm.evaluation_state ? h("span.badge.failed", {}, alarm.evaluation_state) : null,
        alarm.actions_enabled ? null : h("span.badge", {}, "actions disabled"),
        alarm.actions_suppressed_by ? h("span.badge.cancelled", {}, `actions suppressed by ${alarm.actions_suppressed_by}`) : null,
      ),
    );
  }

  configPanel(alarm) {
    const conf = alarm.configuration || {};
    const rows = [];
    const row = (label, value) => value !== undefined && value !== null && value !== "" && rows.push(h("tr", {}, h("th", {}, label), h("td", {}, value)));
    row("Description", alarm.description);
    if (alarm.kind === "composite") {
      row("Rule", h("code", {}, conf.rule));
    } else {
      if (conf.metric) {
        row("Namespace", conf.metric.namespace);
        row("Metric", conf.metric.name);
        row("Dimensions", dimensionsText(conf.metric.dimensions) || "(none)");
        row("Unit", conf.metric.unit);
        row("Statistic", conf.statistic);
      }
      if (conf.query) row("Query", h("div", {}, conf.query.map((q) => h("div.mono", {}, queryText(q)))));
      row("Period", periodLabel(alarmPeriod(conf)));
      row("Condition", `${thresholdText(conf)} for ${conf.datapoints_to_alarm ?? conf.evaluation_periods} of ${conf.evaluation_periods} datapoints`);
      row("Missing data", conf.treat_missing_data);
    }
    const actions = conf.actions || {};
    for (const [key, label] of [["alarm", "On ALARM"], ["ok", "On OK"], ["insufficient_data", "On INSUFFICIENT_DATA"]]) {
      if ((actions[key] || []).length) row(label, actions[key].join(", "));
    }
    row("Actions", alarm.actions_enabled ? "enabled" : "disabled");
    const labels = Object.entries(alarm.labels || {});
    if (labels.length) row("Labels", labels.map(([k, v]) => `${k}=${v}`).join(", "));
    row("Source", alarm.source === "file" ? "rule file" : alarm.source);
    return h("section.panel.config-panel", {}, h("h2", {}, "Configuration"), h("table.kv", {}, h("tbody", {}, rows)));
  }

  setStatePanel(alarm) {
    const state = h("select", { name: "state", "aria-label": "New state" }, ["ALARM", "OK", "INSUFFICIENT_DATA"].map((s) => h("option", { value: s }, s)));
    state.value = alarm.state.value === "ALARM" ? "OK" : "ALARM";
    const reason = h("input", { type: "text", name: "reason", required: true, maxLength: 1023, placeholder: "Why (recorded in the history)", "aria-label": "Reason", value: "Testing from the console" });
    const button = h("button.primary.small", { type: "submit" }, "Set state");
    const form = h(
      "form.set-state",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          button.disabled = true;
          try {
            await api("POST", path(alarm.name, "/state"), { body: { state: state.value, reason: reason.value.trim() || "Set from the console", reason_data: {} } });
            toast(`${alarm.name} set to ${state.value}.`);
            await this.load();
          } catch (error) {
            toast(`Could not set the state: ${error.message}`, "error");
            button.disabled = false;
          }
        },
      },
      h("label.stacked", {}, h("span.control-label", {}, "State"), state),
      h("label.stacked", {}, h("span.control-label", {}, "Reason"), reason),
      button,
    );
    const note =
      alarm.kind === "composite"
        ? "The state holds until a child changes state or the rule is updated."
        : "The next evaluation recomputes the state from the metric.";
    return h("section.panel.set-state-panel", {}, h("h2", {}, "Set state (testing)"), form, h("p.hint", {}, `SetAlarmState runs the actions of the new state. ${note}`));
  }

  async setActions(enabled) {
    try {
      await api("POST", path(this.alarm.name, enabled ? "/actions/enable" : "/actions/disable"));
      toast(`Actions of ${this.alarm.name} ${enabled ? "enabled" : "disabled"}.`);
      await this.load();
    } catch (error) {
      toast(`Could not change the actions: ${error.message}`, "error");
    }
  }

  compositePanel(alarm) {
    const conf = alarm.configuration || {};
    const triggering = (alarm.state.reason_data && alarm.state.reason_data.triggeringAlarms) || [];
    const atEvaluation = new Map(triggering.map((t) => [t.name, (t.state && t.state.value) || t.state]));
    const names = [...new Set([...ruleChildren(conf.rule || ""), ...atEvaluation.keys()])];
    const body = h("tbody");
    const table = h("table.children", {}, h("thead", {}, h("tr", {}, h("th", {}, "Child alarm"), h("th", {}, "At the last evaluation"), h("th", {}, "Now"))), body);
    const fill = (current) => {
      clear(body);
      for (const name of names) {
        const now = current ? current.get(name) : undefined;
        body.append(
          h(
            "tr.child-row",
            { dataset: { name } },
            h("td", {}, h("a", { href: `#/alarms/${encodeURIComponent(name)}` }, name)),
            h("td", {}, atEvaluation.has(name) ? stateBadge(atEvaluation.get(name)) : h("span.muted", {}, "–")),
            h("td", {}, now ? stateBadge(now) : h("span.muted", {}, current ? "unknown" : "…")),
          ),
        );
      }
      if (!names.length) body.append(h("tr", {}, h("td.empty", { colSpan: 3 }, "The rule names no alarm.")));
    };
    fill(null);
    fetchAlarms()
      .then((alarms) => fill(new Map((alarms || []).map((a) => [a.name, a.state.value]))))
      .catch(() => fill(new Map()));
    return h("section.panel.composite-panel", {}, h("h2", {}, "Rule"), h("pre.rule", {}, conf.rule || ""), h("h2", {}, "Children"), h("div.table-scroll", {}, table));
  }

  // ---- graph -------------------------------------------------------------------------------

  async drawGraph() {
    const alarm = this.alarm;
    const conf = alarm.configuration || {};
    const periodS = alarmPeriod(conf);
    const evaluated = ((alarm.state.reason_data || {}).evaluatedDatapoints || [])
      .map((p) => ({ ...p, ms: parseIsoTime(p.timestamp) }))
      .filter((p) => Number.isFinite(p.ms));
    const endS = Math.ceil(Date.now() / 1000);
    const oldestS = evaluated.length ? Math.floor(Math.min(...evaluated.map((p) => p.ms)) / 1000) : null;
    let startS;
    if (this.rangeS === 0) {
      // The evaluation range (L buckets back from now), with as much again before it.
      const length = conf.evaluation_range === "auto" || !conf.evaluation_range ? (conf.evaluation_periods || 1) + 2 : conf.evaluation_range;
      startS = endS - 2 * (length + 1) * periodS;
      if (oldestS !== null) startS = Math.min(startS, oldestS - (length + 1) * periodS);
    } else {
      startS = endS - this.rangeS;
      // Keep the deciding datapoints in view when they are older than the range.
      if (oldestS !== null) startS = Math.min(startS, oldestS - 2 * periodS);
    }
    startS = Math.max(startS, endS - MAX_POINTS * periodS);
    this.chartStatus.textContent = "Loading…";
    this.chartStatus.className = "graph-status";
    try {
      const result = conf.query ? await fetchMath(conf.query, { periodS, startS, endS }) : await fetchStatistic(conf.metric, { statistic: conf.statistic, periodS, startS, endS });
      if (!this.alive || this.alarm !== alarm) return;
      const color = STATE_COLORS[alarm.state.value] || STATE_COLORS.INSUFFICIENT_DATA;
      const thresholds = typeof conf.threshold === "number" ? [{ label: `${alarm.name} ${thresholdText(conf)}`, value: conf.threshold, color, unit: result.unit }] : [];
      const breach = BREACH[conf.comparison];
      const classify = (p) => (p.value == null ? "missing" : breach && typeof conf.threshold === "number" ? (breach(p.value, conf.threshold) ? "breaching" : "within") : "");
      const highlights = evaluated.map((p) => ({
        x: Math.floor(p.ms / 1000),
        y: p.value ?? null,
        color: { breaching: STATE_COLORS.ALARM, within: STATE_COLORS.OK }[classify(p)] || STATE_COLORS.INSUFFICIENT_DATA,
      }));
      if (this.chart) this.chart.destroy();
      const label = conf.query ? result.label : `${conf.metric.name} ${conf.statistic}`;
      this.chart = metricChart(this.chartBox, { series: [{ label, unit: result.unit, x: result.x, values: result.values }], startS, endS, periodS, thresholds, highlights });
      const points = result.values.filter((v) => v != null).length;
      this.chartStatus.textContent = `${points} datapoint${points === 1 ? "" : "s"} of ${periodLabel(periodS)} since ${formatTime(startS * 1000, { millis: false })} UTC${evaluated.length ? ` · ${evaluated.length} evaluated datapoint${evaluated.length === 1 ? "" : "s"} ringed` : ""}.`;
      this.renderEvaluated(evaluated, classify, result.unit);
    } catch (error) {
      if (!this.alive) return;
      this.chartStatus.textContent = `Could not graph the metric: ${error.message}`;
      this.chartStatus.className = "graph-status error";
    }
  }

  renderEvaluated(evaluated, classify, unit) {
    if (!evaluated.length) {
      this.evaluated.replaceChildren(h("p.hint", {}, "The state's reason names no evaluated datapoints (set by hand, or not evaluated yet)."));
      return;
    }
    const suffix = unit && unit !== "None" ? ` ${unit}` : "";
    const verdicts = { breaching: "breaching", within: "within threshold", missing: "missing" };
    const rows = evaluated.map((p) => {
      const kind = classify(p);
      return h(
        "tr.evaluated-row",
        { dataset: { kind } },
        h("td.mono", {}, formatTime(p.ms, { millis: false })),
        h("td.num.mono", { title: p.value == null ? "" : String(p.value) }, p.value == null ? "–" : `${+p.value.toPrecision(6)}${suffix}`),
        h("td.num.mono", {}, p.sampleCount ?? "–"),
        h(`td.verdict.${kind}`, {}, verdicts[kind] || ""),
      );
    });
    const head = h("thead", {}, h("tr", {}, h("th", {}, "Bucket (UTC)"), h("th.num", {}, "Value"), h("th.num", {}, "Samples"), h("th", {}, "")));
    this.evaluated.replaceChildren(
      h("h3", {}, "Datapoints that decided the state"),
      h("div.table-scroll", {}, h("table.evaluated-table", {}, head, h("tbody", {}, rows))),
    );
  }
}

/** GetMetricData for a math alarm's query: the series of its returned entry. */
async function fetchMath(query, { periodS, startS, endS }) {
  const returned = query.find((q) => q.return_data ?? q.return) || query[query.length - 1];
  const metric_data_queries = query.map((q) => {
    const out = { id: q.id, return_data: q === returned };
    if (q.label) out.label = q.label;
    if (q.expression) {
      out.expression = q.expression;
      out.period = q.period || periodS;
    } else {
      out.metric_stat = { metric: { namespace: q.metric.namespace, metric_name: q.metric.name, dimensions: q.metric.dimensions || {} }, period: q.period || periodS, stat: q.statistic };
    }
    return out;
  });
  const data = await api("POST", "/api/v1/metrics/query", { body: { metric_data_queries, start: startS, end: endS, scan_by: "TimestampAscending" } });
  const result = (data.metric_data_results || [])[0] || { timestamps: [], values: [], label: returned.id };
  return { x: result.timestamps.map((t) => Math.floor(t / 1000)), values: result.values, unit: null, label: result.label || returned.label || returned.id };
}

/** The alarm's period in seconds: its own, or that of its query's metrics (math alarms). */
function alarmPeriod(conf) {
  return conf.period || (conf.query || []).map((q) => q.period).find(Boolean) || 60;
}

function graphTitle(conf) {
  if (conf.query) return `Metric math · ${periodLabel(alarmPeriod(conf))} periods`;
  if (!conf.metric) return "Metric";
  const dims = dimensionsText(conf.metric.dimensions);
  return `${conf.metric.namespace} · ${conf.metric.name}${dims ? ` {${dims}}` : ""} · ${conf.statistic} per ${periodLabel(alarmPeriod(conf))}`;
}

function queryText(q) {
  if (q.expression) return `${q.id} = ${q.expression}${q.return_data ?? q.return ? "  (watched)" : ""}`;
  const m = q.metric || {};
  const dims = dimensionsText(m.dimensions);
  return `${q.id} = ${q.statistic}(${m.namespace} ${m.name}${dims ? ` {${dims}}` : ""})${q.return_data ?? q.return ? "  (watched)" : ""}`;
}

/** The alarm names a composite rule refers to: ALARM(x), OK("a b"), INSUFFICIENT_DATA(x). */
export function ruleChildren(rule) {
  const names = [];
  const pattern = /\b(?:ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*(?:"((?:[^"\\]|\\.)*)"|([^()"]+?))\s*\)/gi;
  for (const match of rule.matchAll(pattern)) {
    const name = match[1] ?? match[2];
    if (name && !names.includes(name)) names.push(name);
  }
  return names;
}
