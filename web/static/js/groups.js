// The log group picker: a button that opens a searchable list of the groups
// (DescribeLogGroups), single or multiple choice.

import { api } from "./api.js";
import { clear, formatBytes, h } from "./dom.js";

export class GroupPicker {
  constructor({ selected = [], multiple = true, onChange = () => {}, label = "Log groups" } = {}) {
    this.selected = new Set(selected);
    this.multiple = multiple;
    this.onChange = onChange;
    this.groups = [];
    this.info = new Map();
    this.button = h("button.picker-button", { type: "button", "aria-haspopup": "listbox", "aria-expanded": "false", onclick: () => this.toggle() });
    this.search = h("input.picker-search", { type: "search", placeholder: "Filter log groups", "aria-label": "Filter log groups", oninput: () => this.renderList() });
    this.list = h("ul.picker-list", { role: "listbox", "aria-multiselectable": String(multiple) });
    this.footer = h("div.picker-footer");
    this.panel = h("div.picker-panel", { hidden: true }, this.search, this.list, this.footer);
    this.el = h("div.group-picker", {}, h("span.control-label", {}, label), this.button, this.panel);
    this.outside = (event) => {
      if (!this.el.contains(event.target)) this.close();
    };
    this.escape = (event) => {
      if (event.key !== "Escape") return;
      this.close();
      this.button.focus();
    };
    this.renderButton();
  }

  async load() {
    const data = await api("GET", "/api/v1/logs/groups");
    const groups = data.log_groups || [];
    this.groups = groups.map((g) => g.name).sort();
    this.info = new Map(groups.map((g) => [g.name, g]));
    // Forget remembered groups that no longer exist.
    for (const name of [...this.selected]) if (!this.info.has(name)) this.selected.delete(name);
    if (!this.multiple && !this.selected.size && this.groups.length) this.selected.add(this.groups[0]);
    this.renderButton();
    this.renderList();
    return this.groups;
  }

  get value() {
    return [...this.selected];
  }

  set value(names) {
    this.selected = new Set(this.multiple ? names : names.slice(0, 1));
    this.renderButton();
    this.renderList();
  }

  toggle() {
    if (this.panel.hidden) this.open();
    else this.close();
  }

  open() {
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.renderList();
    this.search.focus();
    document.addEventListener("mousedown", this.outside);
    document.addEventListener("keydown", this.escape);
  }

  close() {
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    document.removeEventListener("mousedown", this.outside);
    document.removeEventListener("keydown", this.escape);
  }

  pick(name, on) {
    if (!this.multiple) {
      this.selected = new Set([name]);
      this.close();
    } else if (on) {
      this.selected.add(name);
    } else {
      this.selected.delete(name);
    }
    this.renderButton();
    this.renderList();
    this.onChange(this.value);
  }

  renderButton() {
    const names = this.value;
    clear(this.button);
    if (!names.length) {
      this.button.append(h("span.placeholder", {}, this.multiple ? "Select log groups" : "Select a log group"));
    } else {
      for (const name of names.slice(0, 3)) this.button.append(h("span.chip", {}, name));
      if (names.length > 3) this.button.append(h("span.chip.more", {}, `+${names.length - 3}`));
    }
    this.button.append(h("span.caret", { "aria-hidden": "true" }, "▾"));
  }

  renderList() {
    const filter = this.search.value.trim().toLowerCase();
    const shown = this.groups.filter((g) => g.toLowerCase().includes(filter));
    clear(this.list);
    if (!this.groups.length) this.list.append(h("li.empty", {}, "No log groups yet. Ship some logs first."));
    else if (!shown.length) this.list.append(h("li.empty", {}, "No group matches."));
    for (const name of shown) {
      const on = this.selected.has(name);
      const info = this.info.get(name) || {};
      const input = h("input", { type: this.multiple ? "checkbox" : "radio", name: "log-group", checked: on, onchange: (e) => this.pick(name, e.target.checked) });
      this.list.append(
        h(
          "li",
          { role: "option", "aria-selected": String(on) },
          h("label", {}, input, h("span.name", {}, name), info.stored_bytes ? h("span.meta", {}, formatBytes(info.stored_bytes)) : null),
        ),
      );
    }
    clear(this.footer).append(
      h("span", {}, `${this.selected.size} selected`),
      this.multiple && this.selected.size
        ? h("button.link", { type: "button", onclick: () => { this.selected.clear(); this.renderButton(); this.renderList(); this.onChange(this.value); } }, "Clear")
        : null,
    );
  }
}
