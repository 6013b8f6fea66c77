// Audit › Reports: the report templates of spec audit §5 (ListReportTemplates), generated over a
// time range with the template's parameters as JSON, CSV or HTML (GenerateReport), with the
// detached signature the server sends in headers, and an acknowledgement of review
// (AcknowledgeAuditReport). #/reports/<template> opens one template.
//
// The report comes from an authorized fetch (the bearer key is not in a cookie), so a link
// cannot fetch it; the bytes are kept as received, so a download is exactly what was signed.

import { ApiError, api, signOut } from "./api.js";
import { append, clear, download, h, toast } from "./dom.js";
import { TimeRangePicker } from "./time.js";

const STATE_ITEM = "watchkeep.reports";
const KEY_ITEM = "watchkeep.key"; // where api.js keeps the signed-in key (sessionStorage)
const FORMAT_LABELS = { json: "JSON", csv: "CSV", html: "HTML" };
const PREVIEW_ROWS = 100;
const FILLED = new WeakSet();
const STYLE_ELEMENT = /<style>([\s\S]*?)<\/style>/g;

export const page = {
  id: "reports",
  title: "Reports",
  section: "Audit",
  render(container) {
    const view = new ReportsPage(container);
    return () => view.destroy();
  },
};

class ReportsPage {
  constructor(container) {
    const saved = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
    this.templates = [];
    this.formats = ["json", "csv", "html"];
    this.format = saved.format || "html";
    this.selected = null;
    this.result = null;
    this.windows = [];
    this.range = new TimeRangePicker(saved.range || { kind: "relative", seconds: 86400, label: "1d" }, () => this.save());
    this.list = h("ul.template-list", { role: "listbox", "aria-label": "Report templates" });
    this.form = h("section.panel.report-form", { "aria-label": "Report parameters" });
    this.output = h("section.panel.report-output", { hidden: true, "aria-label": "Generated report" });
    this.status = h("div.report-status", { role: "status" });
    container.replaceChildren(
      h(
        "div.page-head",
        {},
        h("h1", {}, "Reports"),
        h("p.lede", {}, "Signed audit reports from the trail: pick a template, a time range and a format."),
        h("a.head-link", { href: "#/audit" }, "‹ Audit trail"),
      ),
      h(
        "div.reports-layout",
        {},
        h("aside.panel.template-panel", {}, h("h2", {}, "Templates"), this.list),
        h("div.reports-main", {}, this.form, this.status, this.output),
      ),
    );
    this.load(templateFromHash());
  }

  destroy() {
    for (const w of this.windows) if (!w.closed) w.opener = null;
  }

  save() {
    localStorage.setItem(STATE_ITEM, JSON.stringify({ format: this.format, range: this.range.value() }));
  }

  async load(wanted) {
    this.status.textContent = "Loading templates…";
    try {
      const data = await api("GET", "/api/v1/audit/report/templates");
      this.templates = data.templates || [];
      this.formats = data.formats || this.formats;
    } catch (error) {
      this.showError(error);
      return;
    }
    this.status.textContent = "";
    if (!this.formats.includes(this.format)) this.format = this.formats[0];
    clear(this.list).append(
      ...this.templates.map((t) =>
        h(
          "li.template-item",
          {
            role: "option",
            tabIndex: 0,
            dataset: { template: t.name },
            onclick: () => this.select(t),
            onkeydown: (e) => e.key === "Enter" && this.select(t),
          },
          h("div.template-title", {}, h("span.template-number", {}, t.number), t.title),
          h("div.template-name", {}, t.name),
          h("div.template-intent", {}, t.intent),
        ),
      ),
    );
    const first = this.templates.find((t) => t.name === wanted) || this.templates[0];
    if (first) this.select(first);
  }

  select(template) {
    this.selected = template;
    for (const li of this.list.children) {
      const on = li.dataset.template === template.name;
      li.classList.toggle("active", on);
      li.setAttribute("aria-selected", String(on));
    }
    // replaceState: the hash names the template without a hashchange re-rendering the page.
    history.replaceState(null, "", `#/reports/${template.name}`);
    this.params = {};
    const params = template.parameters.map((p) => {
      const input = h("input", {
        type: p.type === "integer" ? "number" : "text",
        name: p.name,
        required: p.required,
        placeholder: p.default === null || p.default === undefined ? (p.required ? "required" : "") : String(p.default),
        "aria-label": p.name,
      });
      this.params[p.name] = input;
      return h(
        "label.stacked.param",
        {},
        h("span.control-label", {}, p.name, p.required ? h("span.required", { title: "required" }, " *") : null, h("span.option", {}, ` ${p.option}`)),
        input,
        p.help ? h("span.hint", {}, p.help) : null,
      );
    });
    this.formatButtons = this.formats.map((f) =>
      h("button.seg", { type: "button", dataset: { format: f }, onclick: () => this.setFormat(f) }, FORMAT_LABELS[f] || f),
    );
    this.generateButton = h("button.primary", { type: "submit" }, "Generate report");
    this.formError = h("p.form-error", { role: "alert" });
    const form = h(
      "form.report-controls",
      // noValidate: the form says which parameter is missing itself, next to the button.
      { noValidate: true, onsubmit: (e) => { e.preventDefault(); this.generate(); } },
      h("div.range-control", {}, h("span.control-label", {}, "Time range"), this.range.el),
      params.length ? h("div.params", {}, params) : h("p.hint", {}, "This template takes no parameters."),
      h(
        "div.report-buttons",
        {},
        h("div", {}, h("span.control-label", {}, "Format"), h("div.segmented", { role: "group", "aria-label": "Format" }, this.formatButtons)),
        this.generateButton,
      ),
      this.formError,
    );
    append(clear(this.form), [
      h("div.report-head", {}, h("h2", {}, `${template.number} ${template.title}`), h("code.template-code", {}, template.name)),
      h("p.template-description", {}, template.intent),
      template.notes && template.notes.length ? h("ul.template-notes", {}, template.notes.map((n) => h("li.hint", {}, n))) : null,
      form,
    ]);
    this.renderFormat();
  }

  setFormat(format) {
    this.format = format;
    this.renderFormat();
    this.save();
  }

  renderFormat() {
    for (const button of this.formatButtons) {
      const on = button.dataset.format === this.format;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
  }

  query() {
    const { startS, endS } = this.range.resolve();
    const query = { template: this.selected.name, start: String(startS), end: String(endS), format: this.format };
    for (const [name, input] of Object.entries(this.params)) {
      const value = input.value.trim();
      if (value) query[name] = value;
    }
    return query;
  }

  async generate() {
    if (!this.selected) return;
    const missing = this.selected.parameters.filter((p) => p.required && !this.params[p.name].value.trim());
    if (missing.length) {
      this.formError.textContent = `Enter ${missing.map((p) => p.name).join(", ")}.`;
      this.params[missing[0].name].focus();
      return;
    }
    this.formError.textContent = "";
    this.save();
    this.generateButton.disabled = true;
    this.status.className = "report-status";
    this.status.textContent = `Generating ${this.selected.name} (${FORMAT_LABELS[this.format]})…`;
    try {
      const report = await fetchReport(this.query());
      this.status.textContent = "";
      await this.show(report);
    } catch (error) {
      this.showError(error);
    } finally {
      this.generateButton.disabled = false;
    }
  }

  showError(error) {
    this.status.className = "report-status error";
    this.status.textContent = `${error.code ? error.code + ": " : ""}${error.message}`;
  }

  async show(report) {
    this.result = report;
    const sidecar = report.sidecar || {};
    const matches = await sha256Matches(report.bytes, report.sha256);
    const actions = [
      h("button.primary.small.download-report", { type: "button", onclick: () => download(report.filename, report.blob) }, `Download ${FORMAT_LABELS[report.format] || ""}`),
      report.sidecar
        ? h(
            "button.secondary.small.download-signature",
            { type: "button", onclick: () => download(`${report.filename}.sig.json`, new Blob([JSON.stringify(sidecar, null, 2) + "\n"], { type: "application/json" })) },
            "Download signature (.sig.json)",
          )
        : null,
      report.format === "html" ? h("button.secondary.small.open-report", { type: "button", onclick: () => this.openWindow(report) }, "Open in new tab") : null,
    ];
    const range = sidecar.range ? `${sidecar.range.start} – ${sidecar.range.end}` : "";
    const signature = h(
      "table.kv.signature",
      {},
      kvRow("Report ID", report.reportId, "report-id"),
      kvRow("File", report.filename),
      kvRow("Range", range),
      kvRow("Generated at", sidecar.generatedAt),
      kvRow("SHA-256", h("span", {}, report.sha256, matchBadge(matches)), "sha256"),
      kvRow("Key fingerprint", sidecar.publicKeyFingerprint, "fingerprint"),
      kvRow("Signature", sidecar.algorithm ? `${sidecar.algorithm} ${short(sidecar.signature)}` : short(report.signature)),
    );
    this.preview = h("div.report-preview");
    clear(this.output).append(
      h("div.side-head", {}, h("h2", {}, "Generated report"), h("div.report-actions", {}, actions)),
      signature,
      h(
        "p.hint",
        {},
        "The signature covers these exact bytes; check a downloaded copy with ",
        h("code", {}, `watchkeep audit report-verify ${report.filename} --public-key KEY`),
        ".",
      ),
      this.preview,
      this.ackForm(report),
    );
    this.output.hidden = false;
    this.renderPreview(report);
  }

  renderPreview(report) {
    if (report.format === "html") {
      this.preview.append(htmlFrame(report.text, `${this.selected.number} ${this.selected.title}`));
    } else if (report.format === "json") {
      this.preview.append(jsonSummary(report.text));
    } else {
      const lines = report.text.split("\r\n");
      this.preview.append(
        h("h3", {}, `CSV · ${lines.length.toLocaleString("en-US")} lines`),
        h("pre.csv-preview", {}, lines.slice(0, 40).join("\n") + (lines.length > 40 ? "\n…" : "")),
      );
    }
  }

  /** The HTML report in a tab of its own, written into a blank window (see fillDocument). */
  openWindow(report) {
    const w = window.open("", "_blank");
    if (!w) {
      toast("The browser blocked the new tab: download the report instead.", "error");
      return;
    }
    this.windows.push(w);
    fillDocument(w.document, report.text);
  }

  ackForm(report) {
    const notes = h("textarea.ack-notes", { rows: 3, maxLength: 4000, "aria-label": "Review notes", placeholder: "What you checked, what you found, follow-up tickets…" });
    const button = h("button.primary", { type: "submit" }, "Acknowledge review");
    const result = h("div.ack-result");
    const error = h("p.form-error", { role: "alert" });
    return h(
      "form.ack-form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          button.disabled = true;
          error.textContent = "";
          try {
            const ack = await api("POST", "/api/v1/audit/report/ack", {
              body: { report_id: report.reportId, report_sha256: report.sha256, template: report.template, notes: notes.value.trim() || null },
            });
            notes.disabled = true;
            button.hidden = true;
            clear(result).append(ackView(ack));
          } catch (e) {
            error.textContent = `${e.code ? e.code + ": " : ""}${e.message}`;
            button.disabled = false;
          }
        },
      },
      h("h3", {}, "Review"),
      h("p.hint", {}, "Acknowledging records an AcknowledgeAuditReport event in the audit trail, pinned to this report's ID and SHA-256: the evidence of review."),
      h("label.stacked", {}, h("span.control-label", {}, "Notes"), notes),
      h("div.ack-buttons", {}, button),
      error,
      result,
    );
  }
}

function templateFromHash() {
  return (window.location.hash.match(/^#\/reports\/([\w-]+)/) || [])[1] || null;
}

/**
 * GenerateReport with the signed-in key. api() reads only JSON, and a report needs its exact
 * bytes and its signature headers; errors and a 401 are treated as api() treats them.
 */
async function fetchReport(query) {
  const key = sessionStorage.getItem(KEY_ITEM);
  const url = new URL("/api/v1/audit/report", window.location.origin);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${key}` }, credentials: "omit", cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "NetworkError", `The server did not answer: ${error.message}`);
  }
  const bytes = await response.arrayBuffer();
  const text = new TextDecoder().decode(bytes);
  if (!response.ok) {
    let body = {};
    try {
      body = JSON.parse(text).error || {};
    } catch {
      body = {};
    }
    const error = new ApiError(response.status, body.code, body.message || text.slice(0, 300), body.details, response.headers.get("x-amzn-requestid"));
    if (response.status === 401) {
      signOut();
      window.dispatchEvent(new CustomEvent("watchkeep:signed-out", { detail: error.message }));
    }
    throw error;
  }
  const type = response.headers.get("content-type") || "application/octet-stream";
  const disposition = response.headers.get("content-disposition") || "";
  return {
    format: query.format,
    template: query.template,
    bytes,
    text,
    blob: new Blob([bytes], { type }),
    filename: (disposition.match(/filename="([^"]+)"/) || [])[1] || `watchkeep-report-${query.template}.${query.format}`,
    reportId: response.headers.get("x-watchkeep-report-id"),
    sha256: response.headers.get("x-watchkeep-report-sha256"),
    signature: response.headers.get("x-watchkeep-report-signature"),
    sidecar: decodeSidecar(response.headers.get("x-watchkeep-report-sidecar")),
  };
}

function decodeSidecar(value) {
  if (!value) return null;
  try {
    const b64 = value.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** true/false when the browser can hash (a secure context: https or localhost), else null. */
async function sha256Matches(bytes, expected) {
  if (!expected || !(window.crypto && crypto.subtle)) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("") === expected;
}

function matchBadge(matches) {
  if (matches === null) return null;
  return matches
    ? h("span.badge.complete.sha-check", { title: "SHA-256 of the bytes this browser received" }, "matches the bytes received")
    : h("span.badge.failed.sha-check", {}, "does not match the bytes received");
}

/**
 * The HTML report, shown in a sandboxed frame. Under the console's CSP a blob: document
 * inherits `style-src 'self'` (so the report's inline <style> is refused) and `default-src
 * 'none'` refuses to frame it at all; an about:blank frame needs no frame-src, and its
 * styles go in through the CSSOM (adoptedStyleSheets), which the CSP leaves alone.
 * sandbox without allow-scripts: nothing in the report can run; allow-same-origin: the
 * console may write the document.
 */
function htmlFrame(html, title) {
  const frame = h("iframe.report-frame", { sandbox: "allow-same-origin", title: `Report: ${title}` });
  // The frame's document exists once it is in the page; fill it then, and again if it reloads.
  frame.addEventListener("load", () => fillDocument(frame.contentDocument, html));
  queueMicrotask(() => frame.isConnected && frame.contentDocument && fillDocument(frame.contentDocument, html));
  return frame;
}

/** Write the report into a blank same-origin document: its body's nodes and its CSS. */
function fillDocument(doc, html) {
  if (!doc || FILLED.has(doc)) return;
  FILLED.add(doc); // document.open below may fire the frame's load event again
  // The report's CSS is taken out of its <head> as text: even an inert DOMParser document
  // checks a <style> against the console's CSP, and logs the refusal as an error.
  const at = html.indexOf("</head>");
  const head = at >= 0 ? html.slice(0, at) : "";
  const css = [...head.matchAll(STYLE_ELEMENT)].map((m) => m[1]).join("\n");
  // DOMParser makes an inert document: nothing in it is fetched or run.
  const parsed = new DOMParser().parseFromString(at >= 0 ? head.replace(STYLE_ELEMENT, "") + html.slice(at) : html, "text/html");
  // A new blank document is in quirks mode (tables would not inherit the font size): start
  // it again with a doctype, in standards mode, as the report's own file is.
  doc.open();
  doc.write('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body></body></html>');
  doc.close();
  const view = doc.defaultView;
  const sheet = new view.CSSStyleSheet();
  sheet.replaceSync(css);
  doc.adoptedStyleSheets = [sheet];
  doc.title = parsed.title;
  const body = doc.importNode(parsed.body, true);
  doc.documentElement.replaceChild(body, doc.body);
}

/** A JSON report: its integrity, coverage and each section's rows as tables. */
function jsonSummary(text) {
  let report;
  try {
    report = JSON.parse(text);
  } catch {
    return h("pre.csv-preview", {}, text.slice(0, 20000));
  }
  const integrity = report.integrity || {};
  const coverage = report.coverage || {};
  const result = String(integrity.result);
  const glance = h(
    "div.report-glance",
    {},
    glanceItem("Integrity", h(`span.badge.${result === "valid" ? "complete" : "failed"}`, {}, result)),
    glanceItem("Records in range", (coverage.records ?? 0).toLocaleString("en-US")),
    glanceItem("Findings", String((integrity.findings || []).length)),
    glanceItem("Reviewer", (report.reviewer || {}).status || ""),
  );
  const sections = (report.sections || []).map((s) =>
    h(
      "section.report-section",
      { dataset: { section: s.key } },
      h("h3", {}, s.title, " ", h("span.row-count", {}, `(${rowsLabel(s.rowCount)})`)),
      s.description ? h("p.hint", {}, s.description) : null,
      s.rows.length ? h("div.table-wrap", {}, rowsTable(s.columns, s.rows.slice(0, PREVIEW_ROWS))) : h("p.hint", {}, "No matching records in the range."),
      s.rows.length > PREVIEW_ROWS ? h("p.hint", {}, `The first ${PREVIEW_ROWS} rows are shown; the file holds all ${s.rows.length}.`) : null,
      s.truncated ? h("p.hint", {}, "The report itself holds only the first rows of this section.") : null,
    ),
  );
  return h("div.json-report", {}, glance, sections, (report.notes || []).length ? h("ul.template-notes", {}, report.notes.map((n) => h("li.hint", {}, n))) : null);
}

function rowsTable(columns, rows) {
  return h(
    "table.report-rows",
    {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {},
          columns.map((c) => {
            const text = cellText(row[c]);
            return h("td", { title: typeof text === "string" && text.length > 40 ? text : null }, text);
          }),
        ),
      ),
    ),
  );
}

function cellText(value) {
  if (value === null || value === undefined) return h("span.muted", {}, "—");
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function rowsLabel(n) {
  return n === 1 ? "1 row" : `${(n || 0).toLocaleString("en-US")} rows`;
}

function glanceItem(label, value) {
  return h("div", {}, h("span.muted", {}, label), h("b", {}, value));
}

function ackView(ack) {
  const by = ack.reviewedBy || {};
  return h(
    "div.ack-recorded",
    {},
    h("p", {}, h("span.badge.complete", {}, ack.status), " Recorded in the audit trail as AcknowledgeAuditReport."),
    h(
      "table.kv",
      {},
      kvRow("Report ID", ack.reportId),
      kvRow("SHA-256", ack.reportSha256),
      kvRow("Reviewed by", `${by.userName || ""} (${by.arn || ""})`),
      kvRow("Access key", by.accessKeyId),
      kvRow("Reviewed at", ack.reviewedAt),
      kvRow("Notes", ack.notes || "—"),
    ),
  );
}

function kvRow(label, value, cls = null) {
  return h("tr", { class: cls }, h("th", { scope: "row" }, label), h("td", {}, value ?? ""));
}

function short(text) {
  return text && text.length > 24 ? `${text.slice(0, 16)}…${text.slice(-8)}` : text || "";
}
