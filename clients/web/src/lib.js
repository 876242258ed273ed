// Pure helpers of the web form: a tiny CBOR codec, padding, key-document
// checks and HPKE sealing (Protocol v1, see shared DESIGN.md / protocol/SPEC.md).
// No DOM here, so node:test can exercise everything (test/lib.test.js).
//
// Crypto primitives all come from maintained libraries (@hpke/*, @noble/ed25519);
// this file only glues them together the way the protocol says.

import { CipherSuite } from "@hpke/core";
// The pure-JS X25519 KEM (noble inside) rather than @hpke/core's WebCrypto one:
// WebCrypto X25519 only arrived in browsers in 2024-2025, and cheap phones run
// older ones. HKDF/HMAC-SHA256 still go through WebCrypto, which they all have.
import { DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/dhkem-x25519";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { verifyAsync } from "@noble/ed25519";

const te = new TextEncoder();
export const utf8 = (s) => te.encode(s);

// ---------------------------------------------------------------------------
// CBOR (RFC 8949), only what Protocol v1 uses: unsigned ints, byte strings,
// text strings, arrays, maps with text keys. Definite lengths, shortest heads.
// Small enough to read in one go; the gateway's codec is the strict one.

function head(out, major, n) {
  const m = major << 5;
  if (n < 24) out.push(m | n);
  else if (n < 0x100) out.push(m | 24, n);
  else if (n < 0x10000) out.push(m | 25, n >> 8, n & 255);
  else if (n < 0x100000000) out.push(m | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
  else {
    // JS numbers are exact up to 2^53; split into two 32-bit halves.
    const hi = Math.floor(n / 0x100000000), lo = n >>> 0;
    out.push(m | 27, hi >>> 24, (hi >> 16) & 255, (hi >> 8) & 255, hi & 255,
      lo >>> 24, (lo >> 16) & 255, (lo >> 8) & 255, lo & 255);
  }
}

function enc(out, v) {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError("cbor: only unsigned integers");
    head(out, 0, v);
  } else if (typeof v === "string") {
    const b = te.encode(v);
    head(out, 3, b.length);
    for (let i = 0; i < b.length; i++) out.push(b[i]);
  } else if (v instanceof Uint8Array) {
    head(out, 2, v.length);
    for (let i = 0; i < v.length; i++) out.push(v[i]);
  } else if (Array.isArray(v)) {
    head(out, 4, v.length);
    v.forEach((x) => enc(out, x));
  } else if (v && typeof v === "object") {
    // Plain object = map with text keys, in insertion order.
    const keys = Object.keys(v);
    head(out, 5, keys.length);
    keys.forEach((k) => { enc(out, k); enc(out, v[k]); });
  } else throw new TypeError("cbor: unsupported value");
}

/** Encode a value (see types above) to CBOR bytes. */
export function encode(v) {
  const out = [];
  enc(out, v);
  return Uint8Array.from(out);
}

/**
 * Decode CBOR bytes. Returns numbers, strings, Uint8Array, arrays and plain
 * objects (maps need text keys); also null/true/false. Anything else (tags,
 * floats, negative ints, indefinite lengths, trailing bytes) throws.
 */
export function decode(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const td = new TextDecoder("utf-8", { fatal: true });
  let p = 0;
  const need = (n) => { if (n > b.length - p) throw new Error("cbor: truncated"); };
  const item = (depth) => {
    if (depth > 16) throw new Error("cbor: too deep");
    need(1);
    const ib = b[p++], major = ib >> 5, ai = ib & 31;
    if (major === 7) {
      if (ai === 20) return false;
      if (ai === 21) return true;
      if (ai === 22) return null;
      throw new Error("cbor: unsupported simple/float");
    }
    let n;
    if (ai < 24) n = ai;
    else if (ai === 24) { need(1); n = b[p++]; }
    else if (ai === 25) { need(2); n = (b[p] << 8) | b[p + 1]; p += 2; }
    else if (ai === 26) { need(4); n = ((b[p] << 24) >>> 0) + (b[p + 1] << 16) + (b[p + 2] << 8) + b[p + 3]; p += 4; }
    else if (ai === 27) {
      need(8);
      let hi = 0, lo = 0;
      for (let i = 0; i < 4; i++) hi = hi * 256 + b[p + i];
      for (let i = 4; i < 8; i++) lo = lo * 256 + b[p + i];
      p += 8;
      n = hi * 0x100000000 + lo;
      if (!Number.isSafeInteger(n)) throw new Error("cbor: integer too large");
    } else throw new Error("cbor: indefinite length or reserved");
    switch (major) {
      case 0: return n;
      case 2: need(n); p += n; return b.slice(p - n, p);
      case 3: need(n); p += n; return td.decode(b.subarray(p - n, p));
      case 4: {
        if (n > b.length - p) throw new Error("cbor: truncated");
        const a = [];
        for (let i = 0; i < n; i++) a.push(item(depth + 1));
        return a;
      }
      case 5: {
        if (n > b.length - p) throw new Error("cbor: truncated");
        const o = Object.create(null);
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== "string") throw new Error("cbor: map key not text");
          o[k] = item(depth + 1);
        }
        return o;
      }
      default: throw new Error("cbor: unsupported major type " + major);
    }
  };
  const v = item(0);
  if (p !== b.length) throw new Error("cbor: trailing bytes");
  return v;
}

// ---------------------------------------------------------------------------
// Padding: the sealed size must say as little as possible about the report,
// so the plaintext is made exactly one of a few bucket sizes.

export const BUCKETS = [1024, 4096, 16384, 65536];

const headLen = (n) => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9);

/**
 * Encode `report` (a plain object without "pad") with a "pad" byte string
 * added so the encoding is exactly one of BUCKETS bytes long, the smallest
 * that can be hit. Throws RangeError if the report is too big for 64 KiB.
 */
export function padReport(report) {
  const keys = Object.keys(report);
  const base = encode(report).length;
  // Adding one entry may grow the map head (23 -> 24 entries).
  const grow = headLen(keys.length + 1) - headLen(keys.length);
  for (const size of BUCKETS) {
    // Room left for the bstr head + pad bytes after the 4-byte key "pad".
    const room = size - base - grow - 4;
    // The bstr head length depends on the pad length itself; try each.
    // (A few rooms, e.g. 25, fit no head exactly; then the next bucket.)
    for (const h of [1, 2, 3, 5]) {
      const n = room - h;
      if (n >= 0 && headLen(n) === h) {
        const out = encode(Object.assign({}, report, { pad: new Uint8Array(n) }));
        if (out.length !== size) throw new Error("pad: internal size error");
        return out;
      }
    }
  }
  throw new RangeError("report too large");
}

// ---------------------------------------------------------------------------
// Report building from the form fields (same names as the no-JS form).

// The hotline's decoder takes at most 256 array items (protocol Limits::REPORT).
export const MAX_URLS = 256;

export const CATEGORIES = ["csam", "grooming", "sextortion", "livestream", "self-generated", "other"];

/** YYYY-MM-DD -> unix seconds at 00:00 UTC, or null if not a real date. */
export function dateToUnix(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec((s || "").trim());
  if (!m) return null;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3]);
  const d = new Date(t);
  // Reject 2024-02-31 and friends (Date.UTC would roll them over).
  if (d.getUTCFullYear() !== +m[1] || d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) return null;
  if (t < 0) return null; // uint on the wire
  return t / 1000;
}

/**
 * Fields (strings, as posted) -> report map. Empty fields are left out.
 * A date that is not YYYY-MM-DD (old browsers show a text box) is kept as
 * text in "seen_at_text" rather than lost; Protocol v1 keeps unknown fields.
 */
export function buildReport(f) {
  const r = { v: 1, category: CATEGORIES.indexOf(f.category) >= 0 ? f.category : "other" };
  const urls = (f.urls || "").split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  if (urls.length > MAX_URLS) throw new RangeError("too many links");
  if (urls.length) r.urls = urls;
  const add = (k, v) => { v = (v || "").trim(); if (v) r[k] = v; };
  add("description", f.description);
  add("lang", f.lang);
  const seen = (f.seen_at || "").trim();
  if (seen) {
    const t = dateToUnix(seen);
    if (t !== null) r.seen_at = t; else r.seen_at_text = seen;
  }
  add("platform", f.platform);
  add("contact", f.contact);
  return r;
}

// ---------------------------------------------------------------------------
// Hotline key document.

export const SUITE = [32, 1, 3]; // DHKEM(X25519,HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305
const KEY_CONTEXT = utf8("hotline-key/v1");
const INFO_CONTEXT = utf8("hotline-report/v1");

const concat = (a, b) => { const o = new Uint8Array(a.length + b.length); o.set(a); o.set(b, a.length); return o; };
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const isBytes = (v, n) => v instanceof Uint8Array && (n === undefined || v.length === n);

/**
 * Check a GET /v1/key answer against the pinned Ed25519 signing key and the
 * clock. Returns { kid, pk } or throws Error with .code = "key".
 * `now` is unix seconds.
 */
export async function checkKey(body, signingKey, now) {
  const fail = (why) => { const e = new Error("key: " + why); e.code = "key"; throw e; };
  let outer, doc;
  try { outer = decode(body); } catch (e) { fail("malformed"); }
  if (!outer || !isBytes(outer.key) || !isBytes(outer.sig, 64)) fail("malformed");
  if (!isBytes(signingKey, 32)) fail("no signing key");
  let ok = false;
  try {
    // zip215:false = strict RFC 8032 verification.
    ok = await verifyAsync(outer.sig, concat(KEY_CONTEXT, outer.key), signingKey, { zip215: false });
  } catch (e) { ok = false; }
  if (!ok) fail("bad signature");
  try { doc = decode(outer.key); } catch (e) { fail("malformed"); }
  if (!doc || doc.v !== 1 || !isBytes(doc.kid, 8) || !isBytes(doc.pk, 32) ||
      !Array.isArray(doc.suite) || !eq(doc.suite, SUITE) || typeof doc.not_after !== "number") fail("malformed");
  if (!(doc.not_after > now)) fail("expired");
  // kid = first 8 bytes of SHA-256(pk); cheap to check, catches a mixed-up config.
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", doc.pk));
  if (!eq(h.subarray(0, 8), doc.kid)) fail("kid mismatch");
  return { kid: doc.kid, pk: doc.pk };
}

// ---------------------------------------------------------------------------
// HPKE sealing.

export function hpkeSuite() {
  return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() });
}

export const reportInfo = (kid) => concat(INFO_CONTEXT, kid);

/**
 * Seal `plaintext` to the hotline key; returns the envelope CBOR bytes.
 * `ekm` (ephemeral key material) is only for tests against fixed vectors.
 */
export async function seal(key, plaintext, ekm) {
  const suite = hpkeSuite();
  const params = { recipientPublicKey: await suite.kem.deserializePublicKey(key.pk), info: reportInfo(key.kid) };
  if (ekm) params.ekm = ekm;
  const ctx = await suite.createSenderContext(params);
  const ct = new Uint8Array(await ctx.seal(plaintext)); // empty AAD
  return encode({ v: 1, suite: SUITE, kid: key.kid, enc: new Uint8Array(ctx.enc), ct });
}

/** 16 random bytes, base64url without padding (Idempotency-Key). */
export function randomKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return b64url(b);
}

export function b64url(b) {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Standard or url-safe base64 -> bytes (for the <meta> signing key). */
export function b64decode(s) {
  const t = atob(s.trim().replace(/-/g, "+").replace(/_/g, "/"));
  const o = new Uint8Array(t.length);
  for (let i = 0; i < t.length; i++) o[i] = t.charCodeAt(i);
  return o;
}
