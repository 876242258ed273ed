// Progressive enhancement of the report form (templates/form.html).
//
// Without this script (Opera Mini, JS off, old browser) the form posts to
// /report and the gateway seals it in memory. With it, the report is sealed
// here, in the browser, to the hotline key, so the gateway never sees it.
//
// Nothing is written to cookies, localStorage or sessionStorage; all state
// lives in this closure and is dropped when the page goes.

import { b64decode, buildReport, checkKey, decode, padReport, randomKey, seal } from "./lib.js";

const CBOR = "application/cbor";

function main() {
  const form = document.getElementById("report");
  const status = document.getElementById("status");
  const exit = document.getElementById("exit");
  if (exit) {
    // Quick exit: wipe the form and replace this page in history, so the
    // Back button does not bring it back.
    exit.addEventListener("click", (ev) => {
      ev.preventDefault();
      if (form) form.reset();
      location.replace(exit.href);
    });
  }

  if (!form || !status) return; // receipt and error pages: only the exit

  // Feature checks: anything missing -> do nothing, the normal POST happens.
  // Opera Mini runs scripts on its own servers in a short burst: leave it
  // the plain form.
  const w = window;
  if (w.operamini || !w.fetch || !w.crypto || !crypto.subtle || !crypto.getRandomValues ||
      typeof BigInt === "undefined" || !w.TextEncoder || !w.TextDecoder || !w.Promise) return;
  let signingKey;
  try {
    const meta = document.querySelector('meta[name="hotline-signing-key"]');
    signingKey = b64decode(meta.getAttribute("content"));
  } catch (e) { /* fall through */ }
  if (!signingKey || signingKey.length !== 32) return;

  // Say which path is in use (see #path in the template).
  const path = document.getElementById("path");
  if (path && path.getAttribute("data-js")) path.textContent = path.getAttribute("data-js");

  const button = form.querySelector("button[type=submit]");
  const done = document.getElementById("done");
  const msg = (name) => status.getAttribute("data-m-" + name) || name;
  const say = (name, isError) => {
    status.textContent = msg(name);
    status.className = isError ? "status err" : "status";
    if (isError) status.focus();
  };

  // Same Idempotency-Key while the same report is being retried, so a phone
  // that lost the answer can send again without making a duplicate. A new key
  // once the report changes or was accepted.
  let idem = null, idemFor = null, busy = false;

  const fields = () => {
    const f = {};
    ["urls", "description", "platform", "seen_at", "contact", "lang"].forEach((n) => {
      const el = form.elements[n];
      f[n] = el ? el.value : "";
    });
    const c = form.querySelector("input[name=category]:checked");
    f.category = c ? c.value : "";
    return f;
  };

  // fetch with a timeout where AbortController exists (2G links stall);
  // resolves to { status, headers, body: Uint8Array }.
  const get = (url, opts, ms) => {
    let t;
    if (w.AbortController) {
      const ac = new AbortController();
      t = setTimeout(() => ac.abort(), ms);
      opts.signal = ac.signal;
    }
    return fetch(url, opts)
      .then((r) => r.arrayBuffer().then((b) => ({ status: r.status, headers: r.headers, body: new Uint8Array(b) })))
      .then((r) => { clearTimeout(t); return r; }, (e) => { clearTimeout(t); throw e; });
  };

  const fetchKey = () => get("/v1/key", { headers: { Accept: CBOR }, cache: "no-store", credentials: "omit" }, 60000)
    .then((r) => {
      if (r.status !== 200) { const e = new Error("key status"); e.code = r.status === 503 || r.status === 429 ? "busy" : "network"; throw e; }
      return checkKey(r.body, signingKey, Math.floor(Date.now() / 1000));
    });

  const post = (envelope) => get("/v1/reports", {
    method: "POST", body: envelope, cache: "no-store", credentials: "omit",
    headers: { "Content-Type": CBOR, Accept: CBOR, "Idempotency-Key": idem, "Hotline-Channel": "web" },
  }, 120000);

  const hold = (r) => {
    // Respect Retry-After (seconds) by keeping the button off for a while.
    const s = Math.min(parseInt(r.headers.get("Retry-After"), 10) || 30, 120);
    button.disabled = true;
    setTimeout(() => { button.disabled = false; }, s * 1000);
  };

  const fallback = () => {
    // Our crypto failed in a way we did not expect (odd browser): send the
    // plain form instead; the gateway seals it. form.submit() does not fire
    // "submit" again.
    HTMLFormElement.prototype.submit.call(form);
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (busy) return;
    const f = fields();
    if (!f.category) { say("category", true); return; }
    let plaintext;
    try {
      plaintext = padReport(buildReport(f));
    } catch (e) {
      if (e instanceof RangeError) say("too_large", true); else fallback();
      return;
    }
    const sig = JSON.stringify(f);
    if (idemFor !== sig) { idem = randomKey(); idemFor = sig; }

    busy = true;
    button.setAttribute("aria-busy", "true");
    say("sealing");
    let retried = false;
    const attempt = () => fetchKey()
      .then((key) => seal(key, plaintext).catch((e) => { e.code = "seal"; throw e; }))
      .then((envelope) => { say("sending"); return post(envelope); })
      .then((r) => {
        let body = null;
        try { body = decode(r.body); } catch (e) { /* non-CBOR answer (proxy page) */ }
        if (r.status === 201 && body && typeof body.receipt === "string") return body;
        // 422: unknown kid or suite, e.g. the key rotated in between: once more.
        if (r.status === 422 && !retried) { retried = true; return attempt(); }
        const e = new Error("status " + r.status);
        e.code = r.status === 413 ? "too_large" : r.status === 507 ? "full"
          : r.status === 429 || r.status === 503 ? "busy" : r.status >= 500 ? "network" : "rejected";
        if (e.code === "busy") hold(r);
        throw e;
      });

    attempt().then((body) => {
      // Accepted: forget everything about this report.
      form.reset();
      idem = idemFor = null;
      status.textContent = "";
      document.getElementById("receipt").textContent = body.receipt;
      form.hidden = true;
      done.hidden = false;
      const h = done.querySelector("h2");
      if (h) h.focus();
    }, (e) => {
      if (e.code === "seal") fallback();
      // A TypeError from fetch or an AbortError is a network failure.
      else say(e.code || "network", true);
    }).then(() => {
      busy = false;
      button.removeAttribute("aria-busy");
    });
  });
}

main();
