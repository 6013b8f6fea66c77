// Live tail of a log group: the events in the order they arrive, each shown once, whatever its
// timestamp (late and backfilled events included). It follows FilterLogEvents' ingestion order
// like `watchkeep tail -f` (server/cli_tail.py): an order=ingest answer carries a follow_token,
// a cursor on the group's ingestion sequence, and sending it back as next_token returns exactly
// the events ingested since. A non-null next_token means more is waiting now: the next page is
// asked for at once instead of after POLL_MS.
//
// The first screen is context: the newest BACKLOG events stamped in the last hour. The cursor is
// taken *before* that read (an order=ingest request from now, which ends on the groups'
// high-water mark), so an event ingested in between is both on the first screen and in the first
// poll: those few are told apart by event ID. After that, polls never repeat an event.
//
// The page keeps at most MAX_LINES rows and drops the oldest, like a terminal's scrollback. A busy
// server (429, 503) is waited for (Retry-After when known) and a lost connection retried with
// backoff; the cursor stays, so the tail resumes where it stopped. Pause keeps it too.

import { api } from "./api.js";
import { clear, formatCount, h, toast } from "./dom.js";
import { GroupPicker } from "./groups.js";
import { formatTime } from "./time.js";

const STATE_ITEM = "watchkeep.tail";
const POLL_MS = 2000;
const MAX_LINES = 2000;
const BACKLOG = 50;
const PAGE_EVENTS = 1000;
// Waits before retrying an unavailable server when it does not say how long: doubled each time.
const RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

export const page = {
  id: "tail",
  title: "Live tail",
  section: "Logs",
  render(container) {
    const view = new TailPage(container);
    return () => view.stop();
  },
};

function eventCount(n) {
  return `${formatCount(n)} ${n === 1 ? "event" : "events"}`;
}

/** Whether `error` is worth waiting out: the server is busy or restarting, or did not answer. */
function isTransient(error) {
  return error.status === 0 || error.status === 429 || error.status === 503;
}

/** How long the server asked us to wait (ms), or null when it did not say. */
function retryAfterMs(error) {
  const seconds = Number(error.retryAfterS ?? (error.details && error.details.retry_after_s));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_RETRY_MS) : null;
}

class TailPage {
  constructor(container) {
    const saved = JSON.parse(localStorage.getItem(STATE_ITEM) || "{}");
    this.timer = null;
    this.live = false;
    this.generation = 0;
    this.reset();
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

  /** Forget the cursor: the next start reads a first screen again. */
  reset() {
    this.token = null; // the follow token; null until the first screen is read
    this.overlap = null; // IDs of the first screen's events, until the first poll has drained
    this.retryMs = RETRY_MS;
    this.waiting = false;
  }

  remember() {
    localStorage.setItem(STATE_ITEM, JSON.stringify({ group: this.picker.value[0] || null, pattern: this.pattern.value }));
  }

  restart() {
    // A token belongs to one group and one pattern (the server refuses it with another).
    this.stop();
    this.remember();
    this.reset();
    this.clearLines();
    if (this.picker.value.length) return this.start();
    this.toggleButton.textContent = "Start";
    this.toggleButton.className = "primary";
    this.setStatus("Pick a log group to tail.");
  }

  start() {
    if (!this.picker.value[0]) return this.setStatus("Pick a log group to tail.");
    this.stop();
    const generation = ++this.generation;
    this.live = true;
    this.toggleButton.textContent = "Pause";
    this.toggleButton.className = "secondary";
    this.schedule(generation, 0);
  }

  schedule(generation, delayMs) {
    this.timer = setTimeout(() => this.step(generation), delayMs);
  }

  /** One request: the first screen while there is no token, else the next page after it. */
  async step(generation) {
    let more = false;
    try {
      if (this.token === null) await this.readFirstScreen(generation);
      else more = await this.follow(generation);
    } catch (error) {
      if (generation === this.generation) this.retryLater(generation, error);
      return;
    }
    if (generation !== this.generation) return;
    if (this.waiting) toast("The server answers again; the live tail resumes.");
    this.waiting = false;
    this.retryMs = RETRY_MS;
    this.showLive(more);
    this.schedule(generation, more ? 0 : POLL_MS);
  }

  async readFirstScreen(generation) {
    // The cursor first: whatever is ingested after it comes in the polls.
    let stamped = []; // events stamped from now on that were already there
    let token = null;
    let follow = null;
    do {
      const data = await this.fetch({ start: "now", order: "ingest", limit: PAGE_EVENTS, next_token: token });
      if (generation !== this.generation) return;
      stamped = stamped.concat(data.events).slice(-BACKLOG);
      token = data.next_token;
      follow = data.follow_token;
    } while (token);
    const data = await this.fetch({ start: "-1h", order: "desc", limit: BACKLOG });
    if (generation !== this.generation) return;
    const first = data.events.reverse();
    const ids = new Set(first.map((e) => e.event_id));
    for (const e of stamped) {
      if (!ids.has(e.event_id)) first.push(e);
      ids.add(e.event_id);
    }
    this.clearLines();
    this.show(first);
    this.overlap = ids;
    this.token = follow;
  }

  /** One page after the cursor; true when more is waiting. */
  async follow(generation) {
    const data = await this.fetch({ order: "ingest", limit: PAGE_EVENTS, next_token: this.token });
    if (generation !== this.generation) return false;
    const overlap = this.overlap;
    this.show(overlap ? data.events.filter((e) => !overlap.has(e.event_id)) : data.events);
    this.token = data.next_token || data.follow_token;
    // Once the first poll has drained, every event ingested before the first screen was read is
    // behind the cursor: no later page can repeat one of its events.
    if (!data.next_token) this.overlap = null;
    return Boolean(data.next_token);
  }

  fetch(params) {
    return api("GET", "/api/v1/logs/events", { query: { group: this.picker.value[0], filter_pattern: this.pattern.value.trim() || null, ...params } });
  }

  retryLater(generation, error) {
    if (!isTransient(error)) return this.failed(error);
    const waitMs = retryAfterMs(error) ?? this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.waiting = true;
    const why = error.status === 0 ? "Connection lost" : `Server busy (HTTP ${error.status}: ${error.message})`;
    const seconds = Math.max(1, Math.round(waitMs / 1000));
    this.setStatus(`${why} · retrying in ${seconds} s · ${eventCount(this.count)} so far`, "error");
    this.schedule(generation, waitMs);
  }

  failed(error) {
    // Start again from a first screen: the cursor may be what the server refused.
    this.reset();
    this.pause();
    this.setStatus(`Stopped: ${error.code ? error.code + ": " : ""}${error.message}`, "error");
  }

  pause() {
    this.stop();
    this.toggleButton.textContent = this.token === null ? "Start" : "Resume";
    this.toggleButton.className = "primary";
    this.setStatus(`Paused · ${eventCount(this.count)}`);
  }

  stop() {
    this.generation += 1;
    this.live = false;
    clearTimeout(this.timer);
  }

  /** Empty the screen; a running tail keeps following from where it is. */
  clearLines() {
    this.count = 0;
    clear(this.lines).append(h("div.tail-empty", {}, "Waiting for events…"));
  }

  showLive(more) {
    const shown = this.lines.querySelectorAll(".tail-line").length;
    const kept = this.count > shown ? ` (last ${formatCount(shown)} shown)` : "";
    if (more) return this.setStatus(`Catching up · ${eventCount(this.count)}${kept}`);
    this.setStatus(`Live · ${eventCount(this.count)}${kept} · checked ${formatTime(Date.now(), { millis: false })} UTC · every ${POLL_MS / 1000} s`);
  }

  show(events) {
    if (!events.length) return;
    const stick = this.lines.scrollHeight - this.lines.scrollTop - this.lines.clientHeight < 40;
    const empty = this.lines.querySelector(".tail-empty");
    if (empty) empty.remove();
    const rows = document.createDocumentFragment();
    // Rows that would be dropped at once are never built.
    for (const e of events.slice(-MAX_LINES)) {
      rows.append(
        h(
          "div.tail-line",
          { dataset: { eventId: e.event_id } },
          h("span.tail-time", { title: `ingested ${formatTime(e.ingestion_time)} UTC` }, formatTime(e.timestamp)),
          h("span.tail-stream", { title: `${e.log_group} / ${e.log_stream}` }, e.log_stream),
          h("span.tail-message", {}, e.message),
        ),
      );
    }
    this.lines.append(rows);
    this.count += events.length;
    while (this.lines.childElementCount > MAX_LINES) this.lines.firstElementChild.remove();
    if (stick) this.lines.scrollTop = this.lines.scrollHeight;
  }

  setStatus(text, kind = "") {
    this.status.className = `tail-status ${kind}`;
    this.status.textContent = text;
  }
}
