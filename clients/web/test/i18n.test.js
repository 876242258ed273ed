// Language files and templates agree: same keys in every language file, and
// every {{key}} in a template is either a runtime value or a translation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { render, sample } from "../tools/render.mjs";

const dir = (p) => new URL(p, import.meta.url);
// Filled in by the gateway at render time, not from the language file
// ({{dir}} is the language file's "dir" string, like any other key).
const RUNTIME = ["lang", "fingerprint", "signing_key", "form_nonce", "status", "receipt", "message", "lang_links"];
const langs = readdirSync(dir("../i18n/")).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
const strings = Object.fromEntries(langs.map((l) => [l, JSON.parse(readFileSync(dir(`../i18n/${l}.json`), "utf8"))]));
const templates = readdirSync(dir("../templates/")).filter((f) => f.endsWith(".html"));

test("en and fr exist, and all language files have the same keys", () => {
  assert.ok(langs.includes("en") && langs.includes("fr"));
  const en = Object.keys(strings.en).sort();
  for (const l of langs) assert.deepEqual(Object.keys(strings[l]).sort(), en, `${l}.json keys differ from en.json`);
});

test("language files are flat string maps with dir and language_name", () => {
  for (const l of langs) {
    for (const [k, v] of Object.entries(strings[l])) {
      assert.equal(typeof v, "string", `${l}.${k}`);
      assert.ok(v.trim().length > 0, `${l}.${k} is empty`);
      assert.ok(!RUNTIME.includes(k), `${l}.${k} shadows a runtime value`);
    }
    assert.ok(["ltr", "rtl"].includes(strings[l].dir), `${l}.dir`);
    assert.ok(strings[l].language_name, `${l}.language_name`);
  }
});

test("every {{key}} in the templates exists", () => {
  for (const t of templates) {
    const text = readFileSync(dir(`../templates/${t}`), "utf8");
    const keys = [...text.matchAll(/\{\{([^}]*)\}\}/g)].map((m) => m[1]);
    assert.ok(keys.length > 0, t);
    for (const k of keys) {
      assert.match(k, /^[a-z0-9_]+$/, `${t}: bad placeholder {{${k}}}`);
      for (const l of langs) assert.ok(RUNTIME.includes(k) || k in strings[l], `${t}: {{${k}}} missing in ${l}.json`);
    }
    // Rendering leaves no placeholder behind.
    for (const l of langs) {
      const { vars, raw } = sample(l, strings[l]);
      assert.doesNotMatch(render(text, strings[l], vars, raw), /\{\{|\}\}/, `${t} (${l})`);
    }
  }
});

test("templates keep to the CSP and the no-JS contract", () => {
  for (const t of templates) {
    const text = readFileSync(dir(`../templates/${t}`), "utf8");
    assert.doesNotMatch(text, /<style|style=|\son[a-z]+=|javascript:/i, `${t}: inline style or script`);
    for (const m of text.matchAll(/<script\b[^>]*>/g)) assert.match(m[0], /src="\/static\/form\.js"/, t);
    assert.doesNotMatch(text, /(src|href)="(https?:)?\/\/(?!\{\{)/, `${t}: third-party resource`);
  }
  const form = readFileSync(dir("../templates/form.html"), "utf8");
  assert.match(form, /<form id="report" method="post" action="\/report"/);
  for (const n of ["category", "urls", "description", "platform", "seen_at", "contact", "lang"]) {
    assert.match(form, new RegExp(`name="${n}"`), n);
  }
  for (const c of ["csam", "grooming", "sextortion", "livestream", "self-generated", "other"]) {
    assert.match(form, new RegExp(`name="category" value="${c}"`), c);
  }
});
