// The query editor: a native <textarea> (typing, selection, undo, IME and screen readers work
// as everywhere) laid exactly over a highlighted copy of its text. Both layers share font,
// padding and wrapping, so the highlight, the line numbers, the error marker and the caret
// probe used to place the completion list line up with what the user typed.

import { h, clear } from "./dom.js";
import { atCommandStart, completions, tokenize } from "./lql.js";

export class QueryEditor {
  /**
   * @param {object} options
   * @param {string} options.value initial text
   * @param {() => void} options.onRun Ctrl/Cmd+Enter
   * @param {(text: string) => void} options.onChange after each edit
   * @param {() => string[]} options.fields field names to offer while typing
   */
  constructor({ value = "", onRun = () => {}, onChange = () => {}, fields = () => [] } = {}) {
    this.onRun = onRun;
    this.onChange = onChange;
    this.fields = fields;
    this.error = null; // {start, end, line, column, message} in UTF-16 offsets
    this.highlight = h("div.editor-highlight", { "aria-hidden": "true" });
    this.input = h("textarea.editor-input", {
      spellcheck: false,
      autocapitalize: "off",
      autocomplete: "off",
      "aria-label": "Query",
      "aria-describedby": "editor-message",
      "aria-autocomplete": "list",
      rows: 1,
      wrap: "soft",
    });
    this.input.value = value;
    this.menu = h("ul.completions", { role: "listbox", hidden: true });
    this.message = h("div.editor-message", { id: "editor-message", role: "alert", hidden: true });
    this.el = h(
      "div.editor",
      {},
      h("div.editor-body", {}, h("div.editor-layers", {}, this.highlight, this.input)),
      this.menu, // outside the scrolling body, so that it is never clipped
      this.message,
    );
    this.items = [];
    this.active = 0;
    this.input.addEventListener("input", () => this.edited());
    this.input.addEventListener("keydown", (event) => this.keydown(event));
    this.input.addEventListener("blur", () => setTimeout(() => this.closeMenu(), 150));
    this.input.addEventListener("scroll", () => {
      this.input.scrollTop = 0; // the layers grow with the text: the textarea never scrolls
    });
    this.render();
  }

  get value() {
    return this.input.value;
  }

  set value(text) {
    this.input.value = text;
    this.clearError();
    this.render();
  }

  focus() {
    this.input.focus();
  }

  /**
   * Mark a syntax error. `location` {startCharOffset, endCharOffset} are offsets in Unicode
   * code points (the server's), converted here to the textarea's UTF-16 offsets; without
   * them, 1-based `line` and `column` place it.
   */
  setError({ line, column, location, message }) {
    const text = this.value;
    let start;
    let end;
    if (location && Number.isInteger(location.startCharOffset)) {
      start = utf16Offset(text, location.startCharOffset);
      end = utf16Offset(text, location.endCharOffset ?? location.startCharOffset);
    } else {
      start = offsetOf(text, line || 1, column || 1);
      end = start;
    }
    if (end <= start && start < text.length && text[start] !== "\n") end = start + 1;
    const at = lineColumn(text, start);
    this.error = { start, end, line: line || at.line, column: column || at.column, message };
    this.message.hidden = false;
    // The server's messages name the place already ("... at line 3, column 1: ...").
    const placed = /\bline \d+, column \d+/i.test(message || "");
    clear(this.message).append(
      placed ? "" : h("strong", {}, `Line ${this.error.line}, column ${this.error.column}: `),
      message,
    );
    this.render();
  }

  clearError() {
    this.error = null;
    this.message.hidden = true;
    clear(this.message);
    this.render();
  }

  edited() {
    if (this.error) this.clearError();
    else this.render();
    this.onChange(this.value);
    this.suggest(false);
  }

  keydown(event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      this.closeMenu();
      this.onRun();
      return;
    }
    if (event.ctrlKey && event.key === " ") {
      event.preventDefault();
      this.suggest(true);
      return;
    }
    if (this.menu.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.items.length) % this.items.length;
      this.renderMenu();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      this.accept(this.items[this.active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      this.closeMenu();
    }
  }

  // ---- completion ------------------------------------------------------------------------

  suggest(explicit) {
    const caret = this.input.selectionStart;
    if (caret !== this.input.selectionEnd) return this.closeMenu();
    const before = this.value.slice(0, caret);
    const word = /[A-Za-z_@][A-Za-z0-9_@.]*$/.exec(before);
    const token = tokenize(before).at(-1);
    const inText = token && ["string", "comment", "regex", "backtick"].includes(token.kind) && token.end === caret;
    if (inText || (!word && !explicit)) return this.closeMenu();
    const prefix = word ? word[0] : "";
    this.items = completions(prefix || (explicit ? "" : "?"), {
      atCommand: atCommandStart(this.value, caret),
      fields: this.fields(),
    });
    if (!this.items.length) return this.closeMenu();
    this.prefix = prefix;
    this.active = 0;
    this.renderMenu();
    this.placeMenu();
  }

  accept(item) {
    if (!item) return;
    const caret = this.input.selectionStart;
    const suffix = ["function", "aggregate"].includes(item.kind) ? "(" : item.kind === "command" ? " " : "";
    this.input.setSelectionRange(caret - this.prefix.length, caret);
    // execCommand keeps the textarea's own undo history; setRangeText is the fallback.
    if (!document.execCommand("insertText", false, item.word + suffix)) {
      this.input.setRangeText(item.word + suffix, caret - this.prefix.length, caret, "end");
      this.edited();
    }
    this.closeMenu();
  }

  closeMenu() {
    this.menu.hidden = true;
    this.items = [];
  }

  renderMenu() {
    clear(this.menu);
    this.items.forEach((item, i) => {
      const li = h(
        "li",
        {
          role: "option",
          "aria-selected": String(i === this.active),
          class: i === this.active ? "active" : null,
          onmousedown: (event) => {
            event.preventDefault();
            this.accept(item);
          },
        },
        h(`span.tok-${item.kind}`, {}, item.word),
        h("span.kind", {}, item.kind.replace("-", " ")),
      );
      this.menu.append(li);
    });
    this.menu.hidden = false;
  }

  placeMenu() {
    const probe = this.highlight.querySelector(".caret-probe");
    if (!probe) return;
    const box = this.el.getBoundingClientRect();
    const at = probe.getBoundingClientRect();
    this.menu.style.left = `${Math.max(0, at.left - box.left - 8 * this.prefix.length)}px`;
    this.menu.style.top = `${at.bottom - box.top + 2}px`;
  }

  // ---- highlighting ----------------------------------------------------------------------

  render() {
    const text = this.value;
    const cuts = new Set([0, text.length, this.input.selectionStart]);
    if (this.error) {
      cuts.add(this.error.start);
      cuts.add(this.error.end);
    }
    const lines = [h("div.ln", { dataset: { n: "1" } })];
    const errorLine = this.error ? lineColumn(text, this.error.start).line : 0;
    const caret = this.input.selectionStart;
    let pointMarked = false;
    let openMark = null;
    const put = (node) => lines[lines.length - 1].append(node);
    const pointMark = (pos) => {
      if (this.error && !pointMarked && this.error.start === this.error.end && pos === this.error.start) {
        put(this.errorMark(""));
        pointMarked = true;
      }
    };
    for (const token of tokenize(text)) {
      const points = [...cuts].filter((c) => c > token.start && c < token.end).sort((a, b) => a - b);
      let from = token.start;
      for (const to of [...points, token.end]) {
        if (from === caret) put(h("span.caret-probe"));
        pointMark(from);
        const parts = text.slice(from, to).split("\n");
        const inError = this.error && from >= this.error.start && to <= this.error.end && this.error.end > this.error.start;
        if (!inError) openMark = null;
        parts.forEach((part, i) => {
          if (i > 0) {
            lines.push(h("div.ln", { dataset: { n: String(lines.length + 1) } }));
            openMark = null;
          }
          if (!part) return;
          const span = h(`span.tok-${token.kind}`, {}, part);
          if (!inError) return put(span);
          // One marker per line for the whole error range, however many tokens it covers.
          if (openMark) openMark.append(span);
          else put((openMark = this.errorMark(span)));
        });
        from = to;
      }
    }
    if (caret === text.length) put(h("span.caret-probe"));
    pointMark(text.length);
    for (const line of lines) {
      if (!line.childNodes.length || line.lastChild.classList?.contains("caret-probe")) line.append(h("br"));
      if (errorLine && Number(line.dataset.n) === errorLine) line.classList.add("line-error");
    }
    this.highlight.replaceChildren(...lines);
  }

  errorMark(content) {
    const mark = h("mark.err-mark", {
      title: this.error.message,
      dataset: { line: String(this.error.line), column: String(this.error.column) },
    });
    if (content) mark.append(content);
    else mark.classList.add("err-point");
    return mark;
  }
}

/** The UTF-16 offset of the `codePoints`-th code point of `text`. */
function utf16Offset(text, codePoints) {
  let offset = 0;
  let seen = 0;
  for (const ch of text) {
    if (seen >= codePoints) break;
    offset += ch.length;
    seen += 1;
  }
  return offset;
}

function offsetOf(text, line, column) {
  let offset = 0;
  for (let l = 1; l < line; l += 1) {
    const next = text.indexOf("\n", offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  return Math.min(text.length, utf16Offset(text.slice(offset), column - 1) + offset);
}

function lineColumn(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = [...before.slice(before.lastIndexOf("\n") + 1)].length + 1;
  return { line, column };
}
