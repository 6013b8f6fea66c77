// Time ranges and times. The console shows every time in UTC, as the API and the audit trail
// record them, and says so next to each time input.

import { h } from "./dom.js";

export const RELATIVE = [
  ["5m", 5 * 60],
  ["15m", 15 * 60],
  ["1h", 3600],
  ["3h", 3 * 3600],
  ["12h", 12 * 3600],
  ["1d", 86400],
  ["1w", 7 * 86400],
];

/** "2026-11-27 05:57:36.108" (the query results' form) or RFC 3339 -> epoch ms (UTC). */
export function parseTime(text) {
  if (typeof text !== "string") return NaN;
  const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?(Z|[+-]\d\d:?\d\d)?$/.exec(
    text.trim(),
  );
  if (!m) return NaN;
  if (m[8] && m[8] !== "Z") return Date.parse(text.trim().replace(" ", "T"));
  const ms = m[7] ? Number(m[7].padEnd(3, "0").slice(0, 3)) : 0;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), ms);
}

/** epoch ms -> "2026-11-27 05:57:36.108" (UTC). */
export function formatTime(ms, { millis = true } = {}) {
  if (!Number.isFinite(ms)) return "";
  const iso = new Date(ms).toISOString();
  return iso.slice(0, 10) + " " + iso.slice(11, millis ? 23 : 19);
}

/** epoch ms -> the value of an <input type="datetime-local"> read as UTC. */
function toInputValue(ms) {
  return new Date(ms).toISOString().slice(0, 19);
}

function fromInputValue(value) {
  return value ? Date.parse(value + (value.length === 16 ? ":00Z" : "Z")) : NaN;
}

/**
 * A time range control: relative buttons (5m ... 1w) and an absolute "Custom" range.
 * `value()` is {kind: "relative", seconds, label} or {kind: "absolute", startMs, endMs};
 * `resolve()` turns it into epoch seconds now, so that two queries run together agree.
 */
export class TimeRangePicker {
  constructor(initial = { kind: "relative", seconds: 3600, label: "1h" }, onChange = () => {}) {
    this.state = { ...initial };
    this.onChange = onChange;
    this.buttons = RELATIVE.map(([label, seconds]) =>
      h(
        "button.seg",
        { type: "button", dataset: { range: label }, title: `The last ${label}`, onclick: () => this.set({ kind: "relative", seconds, label }) },
        label,
      ),
    );
    this.customButton = h("button.seg", { type: "button", dataset: { range: "custom" }, onclick: () => this.toggleCustom() }, "Custom");
    const now = Date.now();
    this.startInput = h("input", { type: "datetime-local", step: "1", "aria-label": "Start (UTC)", value: toInputValue(now - 3600_000) });
    this.endInput = h("input", { type: "datetime-local", step: "1", "aria-label": "End (UTC)", value: toInputValue(now) });
    this.error = h("span.field-error", { role: "alert" });
    this.customBox = h(
      "div.custom-range",
      { hidden: true },
      h("label", {}, "From ", this.startInput),
      h("label", {}, "to ", this.endInput),
      h("span.hint", {}, "UTC"),
      h("button.secondary.small", { type: "button", onclick: () => this.applyCustom() }, "Apply"),
      this.error,
    );
    this.el = h("div.time-range", {}, h("div.segmented", { role: "group", "aria-label": "Time range" }, this.buttons, this.customButton), this.customBox);
    if (this.state.kind === "absolute") {
      this.startInput.value = toInputValue(this.state.startMs);
      this.endInput.value = toInputValue(this.state.endMs);
    }
    this.render();
  }

  set(state) {
    this.state = state;
    this.customBox.hidden = state.kind !== "absolute";
    this.render();
    this.onChange(this.value());
  }

  toggleCustom() {
    this.customBox.hidden = !this.customBox.hidden;
    this.render();
  }

  applyCustom() {
    const startMs = fromInputValue(this.startInput.value);
    const endMs = fromInputValue(this.endInput.value);
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) {
      this.error.textContent = "Enter both times.";
      return;
    }
    if (endMs <= startMs) {
      this.error.textContent = "The end must come after the start.";
      return;
    }
    this.error.textContent = "";
    this.set({ kind: "absolute", startMs, endMs });
  }

  /** Set an absolute range (for example from a chart selection). */
  setAbsolute(startMs, endMs) {
    this.startInput.value = toInputValue(startMs);
    this.endInput.value = toInputValue(endMs);
    this.set({ kind: "absolute", startMs: Math.floor(startMs), endMs: Math.ceil(endMs) });
  }

  value() {
    return { ...this.state };
  }

  /** {startS, endS, label}: the range as epoch seconds at this instant. */
  resolve(nowMs = Date.now()) {
    if (this.state.kind === "absolute") {
      return {
        startS: Math.floor(this.state.startMs / 1000),
        endS: Math.ceil(this.state.endMs / 1000),
        label: `${formatTime(this.state.startMs, { millis: false })} – ${formatTime(this.state.endMs, { millis: false })} UTC`,
      };
    }
    const endS = Math.ceil(nowMs / 1000);
    return { startS: endS - this.state.seconds, endS, label: `the last ${this.state.label}` };
  }

  render() {
    for (const button of this.buttons) {
      const on = this.state.kind === "relative" && button.dataset.range === this.state.label;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    const custom = this.state.kind === "absolute" || !this.customBox.hidden;
    this.customButton.classList.toggle("active", custom);
    this.customButton.setAttribute("aria-pressed", String(custom));
  }
}
