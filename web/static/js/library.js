// Saved queries (PutQueryDefinition, DescribeQueryDefinitions, DeleteQueryDefinition) and recent
// ones (DescribeQueries), listed beside the Logs Insights editor.

import { api } from "./api.js";
import { clear, dialog, h, toast } from "./dom.js";
import { formatTime } from "./time.js";

// Ends the histogram queries the console runs for itself, so the recent list can leave them out.
export const HISTOGRAM_TAG = "# watchkeep console: histogram";

export class QueryLibrary {
  /**
   * @param {object} options
   * @param {() => {query: string, groups: string[]}} options.current what Save saves
   * @param {(q: {query: string, groups: string[]}) => void} options.onLoad a query was picked
   * @param {(error: Error) => void} options.onSaveError e.g. a syntax error to mark
   */
  constructor({ current, onLoad, onSaveError }) {
    this.current = current;
    this.onLoad = onLoad;
    this.onSaveError = onSaveError;
    this.savedName = null;
    this.savedList = h("ul.side-list.saved-queries");
    this.recentList = h("ul.side-list.recent-queries");
    this.el = h(
      "aside.insights-side",
      {},
      h("section.panel", {}, h("h2", {}, "Saved queries"), this.savedList),
      h(
        "section.panel",
        {},
        h("div.side-head", {}, h("h2", {}, "Recent queries"), h("button.link", { type: "button", onclick: () => this.loadRecent() }, "Refresh")),
        this.recentList,
      ),
    );
  }

  load({ query, groups, name = null }) {
    this.savedName = name;
    this.onLoad({ query, groups: groups || [] });
  }

  async save() {
    const { query: text, groups } = this.current();
    if (!text.trim()) return toast("Write a query first.", "error");
    const input = h("input", { type: "text", required: true, maxLength: 255, value: this.savedName || "", "aria-label": "Name" });
    const name = await dialog({
      title: "Save query",
      body: h("label.stacked", {}, "Name", input, h("span.hint", {}, "Saved with the selected log groups. A query with the same name is replaced.")),
      buttons: [
        { label: "Cancel", value: "" },
        { label: "Save", value: "save", kind: "primary", submit: true },
      ],
    }).then((v) => (v === "save" ? input.value.trim() : null));
    if (!name) return;
    try {
      await api("PUT", `/api/v1/query-definitions/${encodeURIComponent(name)}`, { body: { query: text, log_groups: groups } });
      this.savedName = name;
      toast(`Saved “${name}”.`);
      this.loadSaved();
    } catch (error) {
      this.onSaveError(error);
      toast(`Not saved: ${error.message}`, "error");
    }
  }

  async loadSaved() {
    try {
      const data = await api("GET", "/api/v1/query-definitions");
      const items = data.query_definitions || [];
      clear(this.savedList);
      if (!items.length) this.savedList.append(h("li.empty", {}, "No saved queries yet."));
      for (const q of items) {
        this.savedList.append(
          h(
            "li",
            {},
            h(
              "button.side-item",
              { type: "button", title: q.query, onclick: () => this.load({ query: q.query, groups: q.log_groups, name: q.name }) },
              h("span.side-title", {}, q.name),
              h("span.side-query", {}, q.query),
              q.log_groups.length ? h("span.side-meta", {}, q.log_groups.join(", ")) : null,
            ),
            h("button.icon", { type: "button", title: `Delete “${q.name}”`, "aria-label": `Delete ${q.name}`, onclick: () => this.deleteSaved(q.name) }, "×"),
          ),
        );
      }
    } catch (error) {
      clear(this.savedList).append(h("li.empty", {}, `Could not load: ${error.message}`));
    }
  }

  async deleteSaved(name) {
    const ok = await dialog({
      title: "Delete saved query",
      body: h("p", {}, `Delete “${name}”? This cannot be undone.`),
      buttons: [
        { label: "Cancel", value: "" },
        { label: "Delete", value: "delete", kind: "danger", submit: true },
      ],
    });
    if (ok !== "delete") return;
    try {
      await api("DELETE", `/api/v1/query-definitions/${encodeURIComponent(name)}`);
      this.loadSaved();
    } catch (error) {
      toast(`Not deleted: ${error.message}`, "error");
    }
  }

  async loadRecent() {
    try {
      const data = await api("GET", "/api/v1/queries", { query: { max_items: 40 } });
      const seen = new Set();
      const items = (data.queries || [])
        .filter((q) => !q.query_string.includes(HISTOGRAM_TAG))
        .filter((q) => {
          const key = `${q.log_group_name}\n${q.query_string}`; // the newest run of each
          return !seen.has(key) && seen.add(key);
        })
        .slice(0, 15);
      clear(this.recentList);
      if (!items.length) this.recentList.append(h("li.empty", {}, "No queries run yet."));
      for (const q of items) {
        this.recentList.append(
          h(
            "li",
            {},
            h(
              "button.side-item",
              { type: "button", title: q.query_string, onclick: () => this.load({ query: q.query_string, groups: q.log_group_name ? [q.log_group_name] : [] }) },
              h("span.side-query", {}, q.query_string),
              h("span.side-meta", {}, h(`span.badge.${String(q.status).toLowerCase()}`, {}, q.status), ` ${formatTime(q.create_time, { millis: false })} · ${q.log_group_name || ""}`),
            ),
          ),
        );
      }
    } catch (error) {
      clear(this.recentList).append(h("li.empty", {}, `Could not load: ${error.message}`));
    }
  }
}
