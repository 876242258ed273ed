// A stand-in for the gateway, for working on the form alone: node tools/dev-server.mjs [port]
// Loopback only. Makes throwaway hotline keys, serves the rendered templates
// and dist/ with the gateway's CSP, answers /v1/key, and opens what
// /v1/reports receives with the throwaway private key, printing the report,
// so the whole browser path can be checked end to end. Not for production.
//   FAIL_FIRST=503  answer the first POST /v1/reports with 503 + Retry-After: 2
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import * as ed from "@noble/ed25519";
import { decode, encode, hpkeSuite, reportInfo, utf8 } from "../src/lib.js";
import { render, sample } from "./render.mjs";

const root = new URL("../", import.meta.url);
const port = +(process.argv[2] || 8088);
const strings = (l) => JSON.parse(readFileSync(new URL(`i18n/${l}.json`, root), "utf8"));

const hs = hpkeSuite();
const kp = await hs.kem.generateKeyPair();
const pk = new Uint8Array(await hs.kem.serializePublicKey(kp.publicKey));
const kid = new Uint8Array(await crypto.subtle.digest("SHA-256", pk)).slice(0, 8);
const sk = ed.utils.randomSecretKey();
const spk = await ed.getPublicKeyAsync(sk);
const keyDoc = encode({ v: 1, kid, suite: [32, 1, 3], pk, not_after: Math.floor(Date.now() / 1000) + 86400 });
const keyAnswer = encode({ key: keyDoc, sig: await ed.signAsync(new Uint8Array([...utf8("hotline-key/v1"), ...keyDoc]), sk) });
const signingKeyB64 = Buffer.from(spk).toString("base64");
const fingerprint = Buffer.from(new Uint8Array(await crypto.subtle.digest("SHA-256", pk))).toString("hex")
  .slice(0, 32).toUpperCase().replace(/(.{4})(?!$)/g, "$1 ");

const seen = new Map(); // Idempotency-Key -> answer
let failFirst = process.env.FAIL_FIRST ? +process.env.FAIL_FIRST : 0;
let n = 0;
const receipt = () => "DEV-" + String(++n).padStart(4, "0");

function page(res, tpl, lang, extra = {}) {
  const s = strings(lang);
  const { vars, raw } = sample(lang, s);
  Object.assign(vars, { signing_key: signingKeyB64, fingerprint }, extra);
  raw.lang_links = ["en", "fr"].map((l) => `<a href="/?lang=${l}" hreflang="${l}" lang="${l}">${strings(l).language_name}</a>`).join(" ");
  send(res, 200, "text/html; charset=utf-8", render(readFileSync(new URL(`templates/${tpl}`, root), "utf8"), s, vars, raw));
}
function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { "Content-Type": type, "Content-Security-Policy": "default-src 'self'", "Cache-Control": "no-store", ...headers });
  res.end(body);
}
const cbor = (res, status, v, h) => send(res, status, "application/cbor", Buffer.from(encode(v)), h);

createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const lang = ["en", "fr"].includes(url.searchParams.get("lang")) ? url.searchParams.get("lang") : "en";
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const body = Buffer.concat(chunks);
    console.log(req.method, url.pathname, req.headers["idempotency-key"] || "");
    try {
      if (req.method === "GET" && url.pathname === "/") return page(res, "form.html", lang);
      if (req.method === "GET" && url.pathname.startsWith("/static/form.")) {
        const f = url.pathname.slice(8);
        return send(res, 200, f.endsWith(".js") ? "text/javascript" : "text/css", readFileSync(new URL(`dist/${f}`, root)));
      }
      if (req.method === "GET" && url.pathname === "/v1/key") return send(res, 200, "application/cbor", Buffer.from(keyAnswer));
      if (req.method === "POST" && url.pathname === "/v1/reports") {
        if (failFirst) { const s = failFirst; failFirst = 0; return cbor(res, s, { error: "overloaded", message: "try later" }, { "Retry-After": "2" }); }
        const idem = req.headers["idempotency-key"];
        if (idem && seen.has(idem)) return cbor(res, 201, seen.get(idem));
        const env = decode(body);
        const ctx = await hs.createRecipientContext({ recipientKey: kp, enc: env.enc, info: reportInfo(env.kid) });
        const pt = new Uint8Array(await ctx.open(env.ct));
        const report = decode(pt);
        console.log("sealed in browser, plaintext", pt.length, "bytes:", JSON.stringify({ ...report, pad: report.pad && report.pad.length }));
        const answer = { id: "r" + n, receipt: receipt() };
        if (idem) seen.set(idem, answer);
        return cbor(res, 201, answer);
      }
      if (req.method === "POST" && url.pathname === "/report") {
        const f = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
        console.log("no-JS form:", JSON.stringify(f));
        return page(res, "sent.html", f.lang === "fr" ? "fr" : "en", { receipt: receipt() });
      }
      send(res, 404, "text/plain", "not found");
    } catch (e) {
      console.error(e);
      cbor(res, 400, { error: "malformed", message: String(e.message) });
    }
  });
}).listen(port, "127.0.0.1", () => console.log(`form at http://127.0.0.1:${port}/`));
