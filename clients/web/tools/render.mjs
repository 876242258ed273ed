// The gateway's template substitution, in JS, for tests and the size budget:
// {{key}} -> HTML-escaped string from the language file or from `vars`
// (runtime values); `raw` values (lang_links) go in as they are.
// Usage: node tools/render.mjs templates/form.html en > out.html
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

export function render(template, strings, vars = {}, raw = {}) {
  return template.replace(/\{\{([a-z0-9_]+)\}\}/g, (m, k) => {
    if (k in raw) return raw[k];
    if (k in vars) return escapeHtml(vars[k]);
    if (k in strings) return escapeHtml(strings[k]);
    throw new Error("unknown placeholder " + m);
  });
}

// Sample runtime values, of realistic length.
export function sample(lang, strings) {
  return {
    vars: {
      lang,
      fingerprint: "3F2A 9C1B 77E0 D415 8B62 0AF3 C9D8 1E57",
      signing_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
      form_nonce: "q83vEjRWeJCrze8SNFZ4kA",
      status: strings.check_queued,
      receipt: "HX7K-2M9Q-RT4W-8ZPC",
      message: strings.msg_busy,
    },
    raw: {
      lang_links: '<a href="/?lang=en" hreflang="en" lang="en">English</a> <a href="/?lang=fr" hreflang="fr" lang="fr">Français</a>',
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [tpl, lang] = process.argv.slice(2);
  const strings = JSON.parse(readFileSync(new URL(`../i18n/${lang}.json`, import.meta.url), "utf8"));
  const { vars, raw } = sample(lang, strings);
  process.stdout.write(render(readFileSync(tpl, "utf8"), strings, vars, raw));
}
