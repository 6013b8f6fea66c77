// The Alarms page: the list (#/alarms) with state, reason, kind and last transition, filtered
// by state, kind and name prefix; and one alarm (#/alarms/<name>) with its configuration, the
// graph of what it watches with its threshold and the datapoints that decided its state, its
// history, a "Set state" form for testing, and its actions switch. Composites show their rule
// and their children's states.

import { clear, h } from "./dom.js";
import { fetchAlarms, parseIsoTime } from "./metric_api.js";
import { ago, renderAlarmDetail, stateBadge } from "./alarm_detail.js";
import { formatTime } from "./time.js";

const STATE_ITEM = "watchkeep.alarms";
const STATES = ["ALARM", "INSUFFICIENT_DATA", "OK"];
const REFRESH_MS = 30_000;

export const page = {
  id: "alarms",
  title: "Alarms",
  section: "Metrics",
  render(container) {
    const name = alarmNameFromHash();
    if (name !== null) return renderAlarmDetail(container, name);
    const view = new AlarmList(container);
    return () => view.destroy();
  },
};

/** The alarm named in "#/alarms/<name>", or null on the list. */
function alarmNameFromHash() {
  const match = window.location.hash.match(/^#\/alarms\/(.+)$/);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

class AlarmList {
  constructor(container) {
    const saved = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
    this.state = saved.state || "";
    this.alarms = [];
    this.generation = 0;
    this.stateButtons = ["", ...STATES].map((value) =>
      h("button.seg", { type: "button", dataset: { state: value || "all" }, onclick: () => this.setState(value) }, value ? value.replace("_", " ") : "All"),
    );
    this.kind = h(
      "select",
      { "aria-label": "Kind", onchange: () => this.load() },
      h("option", { value: "" }, "All kinds"),
      h("option", { value: "metric" }, "Metric alarms"),
      h("option", { value: "composite" }, "Composite alarms"),
    );
    this.kind.value = saved.kind || "";
    this.prefix = h("input", {
      type: "search",
      placeholder: "Name prefix",
      "aria-label": "Name prefix",
      value: saved.prefix || "",
      onkeydown: (e) => e.key === "Enter" && this.load(),
      onsearch: () => this.load(),
    });
    this.status = h("div.alarm-status", { role: "status" });
    this.table = h("table.alarm-table");
    container.replaceChildren(
      h("div.page-head", {}, h("h1", {}, "Alarms"), h("p.lede", {}, "Metric and composite alarms, their state and why.")),
      h(
        "section.panel",
        {},
        h(
          "div.alarm-controls",
          {},
          h("div", {}, h("span.control-label", {}, "State"), h("div.segmented.state-filter", { role: "group", "aria-label": "State" }, this.stateButtons)),
          h("label.stacked", {}, h("span.control-label", {}, "Kind"), this.kind),
          h("label.stacked", {}, h("span.control-label", {}, "Name"), this.prefix),
          h("div.alarm-buttons", {}, h("button.primary", { type: "button", onclick: () => this.load() }, "Search")),
        ),
        this.status,
        h("div.table-wrap", {}, this.table),
      ),
    );
    this.renderButtons();
    this.load();
    this.timer = setInterval(() => this.load({ quiet: true }), REFRESH_MS);
  }

  destroy() {
    clearInterval(this.timer);
    this.generation += 1;
  }

  setState(value) {
    this.state = value;
    this.renderButtons();
    this.remember();
    this.renderTable();
  }

  remember() {
    localStorage.setItem(STATE_ITEM, JSON.stringify({ state: this.state, kind: this.kind.value, prefix: this.prefix.value.trim() }));
  }

  renderButtons() {
    const counts = Object.fromEntries(STATES.map((s) => [s, this.alarms.filter((a) => a.state.value === s).length]));
    for (const button of this.stateButtons) {
      const value = button.dataset.state === "all" ? "" : button.dataset.state;
      const on = value === this.state;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
      const label = value ? value.replace("_", " ") : "All";
      const n = value ? counts[value] : this.alarms.length;
      button.replaceChildren(label, h(`span.count${value ? "." + value.toLowerCase() : ""}`, {}, String(n)));
    }
  }

  /** DescribeAlarms by kind and prefix; the state filter applies here, so its counts show. */
  async load({ quiet = false } = {}) {
    this.remember();
    const generation = ++this.generation;
    if (!quiet) this.status.textContent = "Loading…";
    try {
      const alarms = await fetchAlarms({ kind: this.kind.value || null, prefix: this.prefix.value.trim() || null });
      if (generation !== this.generation) return;
      if (alarms === null) {
        this.alarms = [];
        this.status.textContent = "This server does not answer /api/v1/alarms (not enabled, or your key may not read alarms).";
        this.status.className = "alarm-status error";
        this.renderButtons();
        this.renderTable();
        return;
      }
      this.alarms = alarms;
      this.status.className = "alarm-status";
      this.renderButtons();
      this.renderTable();
    } catch (error) {
      if (generation !== this.generation) return;
      this.status.textContent = `Could not list alarms: ${error.message}`;
      this.status.className = "alarm-status error";
    }
  }

  renderTable() {
    const shown = this.alarms.filter((a) => !this.state || a.state.value === this.state);
    if (this.status.className === "alarm-status") {
      this.status.textContent = `${shown.length} of ${this.alarms.length} alarm${this.alarms.length === 1 ? "" : "s"} · updated ${formatTime(Date.now(), { millis: false })} UTC`;
    }
    const head = h("thead", {}, h("tr", {}, ["State", "Name", "Kind", "Reason", "Last transition (UTC)", "Actions"].map((t) => h("th", {}, t))));
    const body = h("tbody");
    for (const alarm of shown) {
      const href = `#/alarms/${encodeURIComponent(alarm.name)}`;
      const when = parseIsoTime(alarm.state.transitioned || alarm.state.timestamp || "");
      body.append(
        h(
          "tr.alarm-row",
          { dataset: { name: alarm.name, state: alarm.state.value }, tabIndex: 0, onclick: (e) => e.target.tagName !== "A" && (window.location.hash = href), onkeydown: (e) => e.key === "Enter" && (window.location.hash = href) },
          h("td", {}, stateBadge(alarm.state.value)),
          h("td.alarm-name", {}, h("a", { href }, alarm.name), alarm.description ? h("div.hint", {}, alarm.description) : null),
          h("td", {}, alarm.kind === "composite" ? "Composite" : alarm.configuration && alarm.configuration.query ? "Metric math" : "Metric"),
          h("td.reason", { title: alarm.state.reason || "" }, alarm.state.reason || ""),
          h("td.nowrap", { title: alarm.state.transitioned ? "" : "No transition yet: the time of the last update" }, formatTime(when, { millis: false }), h("div.hint", {}, ago(when))),
          h("td", {}, alarm.actions_enabled ? (alarm.actions_suppressed_by ? h("span.badge.cancelled", {}, `suppressed (${alarm.actions_suppressed_by})`) : "Enabled") : h("span.badge", {}, "Disabled")),
        ),
      );
    }
    if (!shown.length) {
      const text = this.alarms.length ? "No alarm in this state." : `No alarms${this.prefix.value.trim() ? " with this prefix" : ""}. Define them in the rule files (rules/*.yaml).`;
      body.append(h("tr", {}, h("td.empty", { colSpan: 6 }, text)));
    }
    clear(this.table).append(head, body);
  }
}
