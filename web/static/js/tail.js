// Live tail of a log group: FilterLogEvents polled with start = the newest event seen, so each
// poll asks only for what is new. Events seen at that same millisecond are skipped by ID.

import { api } from "./api.js";
import { clear, formatCount, h, toast } from "./dom.js";
import { GroupPicker } from "./groups.js";
import { formatTime } from "./time.js";

const STATE_ITEM = "watchkeep.tail";
const POLL_MS = 2000;
const MAX_LINES = 2000;
const BACKLOG = 50;

export const page = {
  id: "tail",
  title: "Live tail",
  section: "Logs",
  render(container) {
    const view = new TailPage(container);
    return () => view.stop();
  },
};

class TailPage {
  constructor(container) {
    const saved = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
    this.timer = null;
    this.live = false;
    this.generation = 0;
    this.count = 0;
    this.picker = new GroupPicker({ multiple: false, selected: saved.group ? [saved.group] : [], label: "Log group", onChange: () => this.restart() });
    this.pattern = h("input.pattern", {
      type: "search",
      placeholder: 'Filter pattern, e.g. ERROR -healthcheck or { $.status = 5* }',
      "aria-label": "Filter pattern",
      value: saved.pattern || "",
      onchange: () => this.restart(),
    });
    this.toggleButton = h("button.primary", { type: "button", onclick: () => (this.live ? this.pause() : this.start()) }, "Start");
    this.status = h("div.tail-status", { role: "status" });
    this.lines = h("div.tail-lines", { role: "log", "aria-live": "off", tabIndex: 0 });
    container.replaceChildren(
      h("div.page-head", {}, h("h1", {}, "Live tail")),
      h(
        "section.panel.tail-panel",
        {},
        h(
          "div.tail-controls",
          {},
          this.picker.el,
          h("label.pattern-control", {}, h("span.control-label", {}, "Filter pattern"), this.pattern),
          h("div.tail-buttons", {}, this.toggleButton, h("button.secondary", { type: "button", onclick: () => this.clearLines() }, "Clear")),
        ),
        this.status,
        this.lines,
      ),
    );
    this.clearLines();
    this.picker
      .load()
      .then(() => {
        if (this.picker.value.length) this.start();
        else this.setStatus("Pick a log group to tail.");
      })
      .catch((e) => toast(`Could not list log groups: ${e.message}`, "error"));
  }

  remember() {
    localStorage.setItem(STATE_ITEM, JSON.stringify({ group: this.picker.value[0] || null, pattern: this.pattern.value }));
  }

  restart() {
    this.remember();
    this.clearLines();
    if (this.picker.value.length) this.start();
  }

  async start() {
    const group = this.picker.value[0];
    if (!group) return this.setStatus("Pick a log group to tail.");
    this.stop();
    const generation = ++this.generation;
    this.live = true;
    this.toggleButton.textContent = "Pause";
    this.toggleButton.className = "secondary";
    if (this.lastMs === null) {
      // Start with the latest few events of the last hour, oldest first.
      try {
        const data = await this.fetch(group, { start: "-1h", order: "desc", limit: BACKLOG });
        if (generation !== this.generation) return;
        this.show(data.events.reverse());
      } catch (error) {
        return this.failed(error);
      }
      if (this.lastMs === null) this.lastMs = Date.now() - 10_000;
    }
    this.schedule(generation, 0);
  }

  schedule(generation, delay) {
    this.timer = setTimeout(() => this.poll(generation), delay);
  }

  async poll(generation) {
    const group = this.picker.value[0];
    try {
      let token = null;
      for (let pages = 0; pages < 5; pages += 1) {
        const data = await this.fetch(group, { start: new Date(this.lastMs).toISOString(), order: "asc", limit: 1000, next_token: token });
        if (generation !== this.generation) return;
        this.show(data.events);
        token = data.next_token;
        if (!token) break;
      }
      this.setStatus(`Live · ${formatCount(this.count)} events · checked ${formatTime(Date.now(), { millis: false })} UTC · every ${POLL_MS / 1000} s`);
      this.schedule(generation, POLL_MS);
    } catch (error) {
      if (generation === this.generation) this.failed(error);
    }
  }

  fetch(group, params) {
    return api("GET", "/api/v1/logs/events", { query: { group, filter_pattern: this.pattern.value.trim() || null, ...params } });
  }

  failed(error) {
    this.pause();
    this.setStatus(`Stopped: ${error.code ? error.code + ": " : ""}${error.message}`, "error");
  }

  pause() {
    this.stop();
    this.toggleButton.textContent = this.lastMs === null ? "Start" : "Resume";
    this.toggleButton.className = "primary";
    this.setStatus(`Paused · ${formatCount(this.count)} events`);
  }

  stop() {
    this.generation += 1;
    this.live = false;
    clearTimeout(this.timer);
  }

  clearLines() {
    this.lastMs = null;
    this.seen = new Set();
    this.count = 0;
    clear(this.lines).append(h("div.tail-empty", {}, "Waiting for events…"));
  }

  show(events) {
    const fresh = events.filter((e) => !this.seen.has(e.event_id));
    if (!fresh.length) return;
    const stick = this.lines.scrollHeight - this.lines.scrollTop - this.lines.clientHeight < 40;
    const empty = this.lines.querySelector(".tail-empty");
    if (empty) empty.remove();
    for (const e of fresh) {
      this.lines.append(
        h(
          "div.tail-line",
          {},
          h("span.tail-time", {}, formatTime(e.timestamp)),
          h("span.tail-stream", { title: `${e.log_group} / ${e.log_stream}` }, e.log_stream),
          h("span.tail-message", {}, e.message),
        ),
      );
    }
    this.count += fresh.length;
    while (this.lines.childElementCount > MAX_LINES) this.lines.firstElementChild.remove();
    const newest = Math.max(...fresh.map((e) => e.timestamp));
    if (this.lastMs === null || newest > this.lastMs) {
      this.lastMs = newest;
      this.seen = new Set();
    }
    for (const e of events) if (e.timestamp === this.lastMs) this.seen.add(e.event_id);
    if (stick) this.lines.scrollTop = this.lines.scrollHeight;
  }

  setStatus(text, kind = "") {
    this.status.className = `tail-status ${kind}`;
    this.status.textContent = text;
  }
}
