// The console's shell: sign-in, the navigation and a hash router (#/insights, #/tail, #/metrics,
// #/alarms, #/alarms/<name>, #/audit, #/reports/<template>): the first path segment picks the page.
// A page is a module exporting `page = {id, title, section, render(container) -> cleanup}`;
// adding one means importing it and listing it in PAGES.

import { identity, signIn, signOut } from "./api.js";
import { h } from "./dom.js";
import { page as alarms } from "./alarms.js";
import { page as audit } from "./audit.js";
import { page as insights } from "./insights.js";
import { page as metrics } from "./metrics.js";
import { page as reports } from "./reports.js";
import { page as tail } from "./tail.js";

export const PAGES = [insights, tail, metrics, alarms, audit, reports];
const SECTIONS = ["Logs", "Metrics", "Audit"];

const root = document.getElementById("app");
let cleanup = null;

function route() {
  const who = identity();
  if (!who) return renderSignIn();
  const id = (window.location.hash.match(/^#\/([\w-]+)/) || [])[1];
  const page = PAGES.find((p) => p.id === id);
  if (!page) {
    window.location.replace(`#/${PAGES[0].id}`);
    return;
  }
  renderShell(who, page);
}

function renderShell(who, page) {
  if (cleanup) cleanup();
  cleanup = null;
  const nav = h("nav.nav", { "aria-label": "Console" });
  for (const section of SECTIONS) {
    const pages = PAGES.filter((p) => p.section === section);
    if (!pages.length) continue;
    nav.append(
      h(
        "div.nav-section",
        {},
        h("span.nav-heading", {}, section),
        pages.map((p) =>
          h("a.nav-link", { href: `#/${p.id}`, class: p.id === page.id ? "active" : null, "aria-current": p.id === page.id ? "page" : null }, p.title),
        ),
      ),
    );
  }
  const user = who.type === "Root" ? "root" : who.user_name;
  const main = h("main.content", { id: "main" });
  root.replaceChildren(
    h(
      "header.topbar",
      {},
      h("a.brand", { href: "#/" + PAGES[0].id }, h("span.brand-mark", { "aria-hidden": "true" }, "◆"), "watchkeep"),
      nav,
      h(
        "div.account",
        {},
        h("span.who", { title: `${who.arn}\naccess key ${who.access_key_id}` }, h("span.who-name", {}, user), h("span.who-key", {}, who.access_key_id)),
        h("button.secondary.small", { type: "button", onclick: () => { signOut(); route(); } }, "Sign out"),
      ),
    ),
    main,
  );
  document.title = `${page.title} · watchkeep`;
  cleanup = page.render(main) || null;
}

function renderSignIn(message = "") {
  if (cleanup) cleanup();
  cleanup = null;
  document.title = "Sign in · watchkeep";
  const key = h("input", {
    type: "password",
    name: "access-key",
    autocomplete: "off",
    spellcheck: false,
    required: true,
    placeholder: "WKIA…:wks_…",
    "aria-label": "Access key",
  });
  const error = h("p.form-error", { role: "alert" }, message);
  const button = h("button.primary.wide", { type: "submit" }, "Sign in");
  const form = h(
    "form.signin-card",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const value = key.value.trim();
        if (!/^\S+:\S+$/.test(value)) {
          error.textContent = "An access key looks like WKIA…:wks_… (the key ID, a colon, the secret).";
          return;
        }
        button.disabled = true;
        error.textContent = "";
        try {
          await signIn(value);
          route();
        } catch (e) {
          error.textContent = e.status === 401 ? "That access key is not valid." : e.message;
          button.disabled = false;
        }
      },
    },
    h("div.brand.large", {}, h("span.brand-mark", { "aria-hidden": "true" }, "◆"), "watchkeep"),
    h("h1", {}, "Sign in to the console"),
    h("label.stacked", {}, "Access key", key),
    error,
    button,
    h(
      "p.hint",
      {},
      "The key stays in this browser tab only and is sent with each API call. Sign-ins and every action are recorded in the audit trail.",
    ),
  );
  root.replaceChildren(h("main.signin", {}, form));
  key.focus();
}

window.addEventListener("hashchange", route);
window.addEventListener("watchkeep:signed-out", (event) => renderSignIn(event.detail ? `Signed out: ${event.detail}` : "Your session ended; sign in again."));
route();
