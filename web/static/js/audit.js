// The audit trail page: LookupEvents by one lookup attribute over a time range, newest first,
// paged with next_token; a row opens the full CloudTrail record.

import { api } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { TimeRangePicker } from "./time.js";

const STATE_ITEM = "watchkeep.audit";
export const LOOKUP_KEYS = ["EventName", "Username", "EventSource", "ResourceType", "ResourceName", "AccessKeyId", "EventId", "ReadOnly"];
const HINTS = {
  EventName: "e.g. DeleteLogGroup",
  Username: "e.g. alice or root",
  EventSource: "e.g. logs.watchkeep",
  ResourceType: "e.g. Watchkeep::Logs::LogGroup",
  ResourceName: "e.g. app",
  AccessKeyId: "WKIA…",
  EventId: "an event ID",
};

export const page = {
  id: "audit",
  title: "Audit trail",
  section: "Audit",
  render(container) {
    const view = new AuditPage(container);
    return () => view.destroy();
  },
};

class AuditPage {
  constructor(container) {
    const saved = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
    this.tokens = [null]; // the token of each page seen so far; the last is the current page's
    this.nextToken = null;
    this.key = h(
      "select",
      { "aria-label": "Lookup attribute", onchange: () => this.keyChanged() },
      h("option", { value: "" }, "All events"),
      LOOKUP_KEYS.map((k) => h("option", { value: k }, k)),
    );
    this.key.value = saved.key || "";
    this.value = h("input", { type: "search", "aria-label": "Lookup value", value: saved.value || "", onkeydown: (e) => e.key === "Enter" && this.lookup() });
    this.readOnly = h("select", { "aria-label": "Read-only" }, h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
    this.pageSize = h("select", { "aria-label": "Events per page", onchange: () => this.lookup() }, [25, 50].map((n) => h("option", { value: String(n) }, `${n} per page`)));
    this.pageSize.value = String(saved.pageSize || 25);
    this.range = new TimeRangePicker(saved.range || { kind: "relative", seconds: 86400, label: "1d" }, () => this.lookup());
    this.prevButton = h("button.secondary.small", { type: "button", disabled: true, onclick: () => this.turn(-1), "aria-label": "Previous page" }, "‹ Newer");
    this.nextButton = h("button.secondary.small", { type: "button", disabled: true, onclick: () => this.turn(1), "aria-label": "Next page" }, "Older ›");
    this.pageLabel = h("span.page-label");
    this.status = h("div.audit-status", { role: "status" });
    this.table = h("table.audit-events");
    container.replaceChildren(
      h(
        "div.page-head",
        {},
        h("h1", {}, "Audit trail"),
        h("p.lede", {}, "Every call to watchkeep's API, allowed or denied, newest first."),
        h("a.head-link", { href: "#/reports" }, "Reports ›"),
      ),
      h(
        "section.panel.audit-panel",
        {},
        h(
          "div.audit-controls",
          {},
          h("label.stacked", {}, h("span.control-label", {}, "Lookup attribute"), this.key),
          h("label.stacked.value-control", {}, h("span.control-label", {}, "Value"), this.value, this.readOnly),
          h("div.range-control", {}, h("span.control-label", {}, "Time range"), this.range.el),
          h("div.audit-buttons", {}, this.pageSize, h("button.primary", { type: "button", onclick: () => this.lookup() }, "Look up")),
        ),
        h("div.pager", {}, this.status, h("div.pager-buttons", {}, this.prevButton, this.pageLabel, this.nextButton)),
        h("div.table-wrap", {}, this.table),
      ),
    );
    if (saved.key === "ReadOnly") this.readOnly.value = saved.value || "true";
    this.keyChanged(false);
    this.lookup();
  }

  destroy() {
    const open = document.querySelector("dialog.record");
    if (open) open.remove();
  }

  keyChanged(reload = true) {
    const key = this.key.value;
    this.value.hidden = !key || key === "ReadOnly";
    this.readOnly.hidden = key !== "ReadOnly";
    this.value.placeholder = HINTS[key] || "";
    if (reload && key === "ReadOnly") this.lookup();
  }

  request() {
    const key = this.key.value;
    const value = key === "ReadOnly" ? this.readOnly.value : this.value.value.trim();
    const { startS, endS } = this.range.resolve();
    return { key, value, startS, endS, pageSize: this.pageSize.value };
  }

  lookup() {
    const { key, value } = this.request();
    localStorage.setItem(STATE_ITEM, JSON.stringify({ key, value, pageSize: Number(this.pageSize.value), range: this.range.value() }));
    this.tokens = [null];
    // Every page of one lookup asks the same question: a next_token is only valid with the
    // parameters it was issued for.
    this.frozen = this.request();
    this.load();
  }

  turn(step) {
    if (step > 0 && this.nextToken) this.tokens.push(this.nextToken);
    if (step < 0 && this.tokens.length > 1) this.tokens.pop();
    this.load();
  }

  async load() {
    const { key, value, startS, endS, pageSize } = this.frozen;
    if (key && !value) {
      this.status.textContent = `Enter a value for ${key}.`;
      return;
    }
    this.status.textContent = "Loading…";
    // Only the newest request may fill the table: an earlier, slower answer (the lookup the
    // page opened with, say) must not replace the one asked for since.
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    try {
      const data = await api("GET", "/api/v1/audit/events", {
        query: {
          lookup_key: key || null,
          lookup_value: key ? value : null,
          start: startS,
          end: endS,
          max_results: pageSize,
          next_token: this.tokens[this.tokens.length - 1],
        },
      });
      if (ticket !== this.ticket) return;
      this.nextToken = data.next_token || null;
      this.render(data.events || []);
    } catch (error) {
      if (ticket !== this.ticket) return;
      this.status.textContent = `${error.code ? error.code + ": " : ""}${error.message}`;
      this.status.className = "audit-status error";
      return;
    }
    this.status.className = "audit-status";
  }

  render(events) {
    const pageNumber = this.tokens.length;
    this.prevButton.disabled = pageNumber <= 1;
    this.nextButton.disabled = !this.nextToken;
    this.pageLabel.textContent = `Page ${pageNumber}`;
    this.status.textContent = events.length ? `${events.length} events on this page${this.nextToken ? "; older ones on the next" : ""}.` : "No events match.";
    const head = h("tr", {}, ["Event time (UTC)", "User name", "Event name", "Event source", "Resources", "Source IP", "Outcome"].map((t) => h("th", { scope: "col" }, t)));
    const body = h("tbody");
    for (const event of events) {
      const record = parseRecord(event.cloudtrail_event);
      const resources = (event.resources || []).map((r) => r.resource_name).join(", ");
      const error = record.errorCode;
      const tr = h(
        "tr.audit-row",
        { tabIndex: 0, dataset: { eventId: event.event_id }, onclick: () => this.open(event, record), onkeydown: (e) => e.key === "Enter" && this.open(event, record) },
        h("td.nowrap", {}, String(event.event_time || "").replace("T", " ").replace("Z", "")),
        h("td", {}, event.username || h("span.muted", {}, "—")),
        h("td.event-name", {}, event.event_name),
        h("td", {}, event.event_source),
        h("td.resources", { title: resources }, resources || h("span.muted", {}, "—")),
        h("td", {}, record.sourceIPAddress || ""),
        h("td", {}, error ? h("span.badge.failed", { title: record.errorMessage || "" }, error) : h("span.badge.complete", {}, "OK")),
      );
      body.append(tr);
    }
    clear(this.table).append(h("thead", {}, head), body);
  }

  open(event, record) {
    const json = JSON.stringify(inRecordOrder(record), null, 2);
    const copy = h("button.secondary.small", {
      type: "button",
      onclick: () => navigator.clipboard.writeText(json).then(() => toast("Copied the record."), () => toast("Copying was refused by the browser.", "error")),
    }, "Copy JSON");
    const close = h("button.icon", { type: "button", "aria-label": "Close", onclick: () => dlg.close() }, "×");
    const dlg = h(
      "dialog.record",
      { "aria-label": `Audit record ${event.event_id}` },
      h("div.record-head", {}, h("div", {}, h("h2", {}, event.event_name), h("div.muted", {}, `${event.event_time} · ${event.event_source} · ${event.event_id}`)), h("div.record-buttons", {}, copy, close)),
      h("pre.json", {}, jsonNodes(json)),
    );
    dlg.addEventListener("close", () => dlg.remove());
    dlg.addEventListener("click", (e) => {
      if (e.target === dlg) dlg.close(); // a click on the backdrop
    });
    document.body.append(dlg);
    dlg.showModal();
  }
}

// The order CloudTrail documents a record's fields in (spec audit §2.1); the trail stores them
// sorted, which puts additionalEventData first.
const RECORD_ORDER = [
  "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
  "sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters",
  "responseElements", "additionalEventData", "requestID", "eventID", "eventType", "apiVersion",
  "managementEvent", "readOnly", "resources", "recipientAccountId", "serviceEventDetails",
  "sharedEventID", "vpcEndpointId", "eventCategory", "addendum", "sessionCredentialFromConsole",
  "edgeDeviceDetails", "tlsDetails",
];

function inRecordOrder(record) {
  const rank = (key) => (RECORD_ORDER.includes(key) ? RECORD_ORDER.indexOf(key) : RECORD_ORDER.length);
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => rank(a) - rank(b)));
}

function parseRecord(text) {
  if (text && typeof text === "object") return text;
  try {
    return JSON.parse(text || "{}");
  } catch {
    return { unparsed: String(text) };
  }
}

const JSON_TOKEN = /("(?:\\u[\da-fA-F]{4}|\\[^u]|[^\\"])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/** Pretty JSON text as nodes: keys, strings, numbers and literals in spans of their own. */
export function jsonNodes(text) {
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(JSON_TOKEN)) {
    if (m.index > last) nodes.push(text.slice(last, m.index));
    if (m[1] !== undefined) {
      nodes.push(h(m[2] ? "span.j-key" : "span.j-str", {}, m[1]));
      if (m[2]) nodes.push(m[2]);
    } else if (m[3] !== undefined) {
      nodes.push(h("span.j-lit", {}, m[3]));
    } else {
      nodes.push(h("span.j-num", {}, m[4]));
    }
    last = m.index + m[0].length;
  }
  nodes.push(text.slice(last));
  return nodes;
}
