// Small DOM helpers. Text always goes in through textContent, never innerHTML: every string
// the console shows (log lines, audit records, error messages) comes from users' data.

/**
 * Create an element: h("button.primary", {onclick, type: "button"}, "Run").
 * Attributes starting with "on" become listeners; `dataset` and `style` take objects;
 * children may be strings, nodes, arrays, or null/false (skipped).
 */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "style") {
      Object.assign(el.style, value);
    } else if (name === "class") {
      el.className += (el.className ? " " : "") + value;
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** Save a Blob as a download named `filename`. */
export function download(filename, blob) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A human size: 42737 -> "41.7 KB". */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function formatCount(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "";
}

/** Debounce `fn` by `ms`. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A modal <dialog> with a title, a body and buttons; resolves with the button's value. */
export function dialog({ title, body, buttons = [{ label: "Close", value: null }] }) {
  return new Promise((resolve) => {
    const form = h("form.dialog-form", { method: "dialog" });
    const footer = h(
      "div.dialog-buttons",
      {},
      buttons.map((b) =>
        h(`button.${b.kind || "secondary"}`, { value: b.value ?? "", type: b.submit ? "submit" : "button", onclick: b.submit ? null : () => close(b.value) }, b.label),
      ),
    );
    append(form, [h("h2", {}, title), body, footer]);
    const dlg = h("dialog.modal", {}, form);
    const close = (value) => {
      dlg.close();
      dlg.remove();
      resolve(value);
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      close(event.submitter ? event.submitter.value : null);
    });
    dlg.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(null);
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = dlg.querySelector("input, textarea, select");
    if (first) first.focus();
  });
}

/** A short notice at the bottom of the screen. */
export function toast(message, kind = "info") {
  let box = document.querySelector(".toasts");
  if (!box) {
    box = h("div.toasts", { role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h(`div.toast.${kind}`, {}, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
