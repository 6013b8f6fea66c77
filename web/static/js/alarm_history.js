// An alarm's history (DescribeAlarmHistory): newest first, filtered by type, paged with
// next_token; a row opens the item's data (old and new state, configuration, action outcome).

import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { parseIsoTime } from "./metric_api.js";
import { formatTime } from "./time.js";

const HISTORY_PAGE = 25;
const HISTORY_TYPES = ["StateUpdate", "ConfigurationUpdate", "Action"];

export class HistoryView {
  constructor(name) {
    this.name = name;
    this.tokens = [null];
    this.nextToken = null;
    this.type = h(
      "select.compact",
      { "aria-label": "History type", onchange: () => this.restart() },
      h("option", { value: "" }, "All types"),
      HISTORY_TYPES.map((t) => h("option", { value: t }, t)),
    );
    this.prev = h("button.secondary.small", { type: "button", disabled: true, "aria-label": "Newer history", onclick: () => this.turn(-1) }, "‹ Newer");
    this.next = h("button.secondary.small", { type: "button", disabled: true, "aria-label": "Older history", onclick: () => this.turn(1) }, "Older ›");
    this.label = h("span.page-label");
    this.status = h("div.alarm-status", { role: "status" });
    this.body = h("tbody");
    this.el = h(
      "section.panel.history-panel",
      { "aria-label": "History" },
      h("div.side-head", {}, h("h2", {}, "History"), h("div.pager-buttons", {}, this.type, this.prev, this.label, this.next)),
      this.status,
      h("div.table-scroll", {}, h("table.history-table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Time (UTC)"), h("th", {}, "Type"), h("th", {}, "Summary"))), this.body)),
    );
  }

  restart() {
    this.tokens = [null];
    this.load();
  }

  turn(step) {
    if (step > 0 && this.nextToken) this.tokens.push(this.nextToken);
    if (step < 0 && this.tokens.length > 1) this.tokens.pop();
    this.load();
  }

  async load() {
    this.status.textContent = "Loading…";
    try {
      const data = await api("GET", "/api/v1/alarms/history", {
        query: { name: this.name, type: this.type.value || null, max_records: HISTORY_PAGE, next_token: this.tokens[this.tokens.length - 1] },
      });
      this.nextToken = data.next_token || null;
      this.render(data.items || []);
    } catch (error) {
      this.status.textContent = `Could not read the history: ${error.message}`;
    }
  }

  render(items) {
    clear(this.body);
    this.status.textContent = "";
    for (const item of items) {
      const detail = h("tr.history-detail", { hidden: true }, h("td", { colSpan: 3 }, h("pre.json", {}, JSON.stringify(item.data ?? {}, null, 2))));
      const row = h(
        "tr.history-row",
        { tabIndex: 0, dataset: { type: item.type }, onclick: () => (detail.hidden = !detail.hidden), onkeydown: (e) => e.key === "Enter" && (detail.hidden = !detail.hidden) },
        h("td.mono.nowrap", {}, formatTime(parseIsoTime(item.timestamp))),
        h("td", {}, h(`span.badge.history.${item.type.toLowerCase()}`, {}, item.type)),
        h("td", {}, item.summary),
      );
      this.body.append(row, detail);
    }
    if (!items.length) this.body.append(h("tr", {}, h("td.empty", { colSpan: 3 }, "No history items.")));
    this.prev.disabled = this.tokens.length <= 1;
    this.next.disabled = !this.nextToken;
    this.label.textContent = `Page ${this.tokens.length}`;
  }
}
