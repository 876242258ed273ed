// Tests of the pure helpers in src/lib.js: node --test (see package.json).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CipherSuite } from "@hpke/core";
import { DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/dhkem-x25519";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import * as ed from "@noble/ed25519";
import {
  BUCKETS, b64decode, b64url, buildReport, checkKey, dateToUnix, decode, encode,
  hpkeSuite, padReport, randomKey, reportInfo, seal, utf8,
} from "../src/lib.js";

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));

test("CBOR encodes like RFC 8949 Appendix A", () => {
  const cases = [
    [0, "00"], [23, "17"], [24, "1818"], [100, "1864"], [1000, "1903e8"],
    [1000000, "1a000f4240"], [1000000000000, "1b000000e8d4a51000"],
    [Number.MAX_SAFE_INTEGER, "1b001fffffffffffff"],
    ["", "60"], ["a", "6161"], ["IETF", "6449455446"], ["\u00fc", "62c3bc"],
    [new Uint8Array([1, 2, 3, 4]), "4401020304"], [[], "80"], [[1, [2, 3], [4, 5]], "8301820203820405"],
    [{}, "a0"], [{ a: 1, b: [2, 3] }, "a26161016162820203"],
  ];
  for (const [v, h] of cases) {
    assert.equal(hex(encode(v)), h, JSON.stringify(v));
    assert.deepEqual(decode(unhex(h)), v instanceof Object && !Array.isArray(v) && !(v instanceof Uint8Array)
      ? Object.assign(Object.create(null), v) : v);
  }
  // 25 elements: array head with a 1-byte length.
  const arr = Array.from({ length: 25 }, (_, i) => i);
  assert.equal(hex(encode(arr)).slice(0, 4), "9819");
  assert.deepEqual(decode(encode(arr)), arr);
  assert.throws(() => encode(-1));
  assert.throws(() => encode(1.5));
  assert.throws(() => encode(undefined));
});

test("CBOR round trip of a report-shaped value", () => {
  const v = { v: 1, category: "grooming", urls: ["https://example.org/a", "https://exemple.fr/é"],
    description: "x".repeat(300), seen_at: 1700000000, pad: new Uint8Array(70000) };
  const back = decode(encode(v));
  assert.deepEqual({ ...back }, v);
});

test("CBOR decoder refuses what Protocol v1 does not use", () => {
  for (const h of [
    "", "18", "1901", "6261", "4301", "9f01ff", "5f4101ff", "c11a514b67b0", "f93c00", "20", "a10101",
    "0000", // trailing bytes
    "9b0000000100000000", // absurd array length
    "1b0020000000000000", // beyond 2^53
    "62c328", // invalid UTF-8
  ]) assert.throws(() => decode(unhex(h)), h);
  // nesting bomb
  assert.throws(() => decode(new Uint8Array(1000).fill(0x81)));
});

test("padding hits a bucket exactly, the smallest possible", () => {
  const sizes = [];
  for (let n = 0; n < 70000; n += n < 1100 ? 1 : n < 4200 ? 7 : 331) sizes.push(n);
  let sawGap = false;
  for (const n of sizes) {
    const r = { v: 1, category: "other", description: "d".repeat(n), lang: "fr" };
    const base = encode(r).length;
    let out;
    try { out = padReport(r); } catch (e) {
      assert.ok(e instanceof RangeError);
      assert.ok(base + 5 > 65536 - 3, "only refuses reports that cannot fit: " + base);
      continue;
    }
    assert.ok(BUCKETS.includes(out.length), `size ${out.length} for base ${base}`);
    // smallest bucket that can hold the report plus the smallest pad entry
    // (key "pad" 4 bytes + 1-byte bstr head), except the few gap sizes
    // where no bstr head length lands exactly on the bucket.
    const want = BUCKETS.find((b) => b >= base + 5);
    if (out.length !== want) {
      sawGap = true;
      const room = want - base - 4;
      assert.ok([25, 258].includes(room), "gap only at head-size boundaries, room=" + room);
      assert.equal(out.length, BUCKETS[BUCKETS.indexOf(want) + 1]);
    }
    const back = decode(out);
    assert.equal(back.description, r.description);
    assert.ok(back.pad instanceof Uint8Array);
    assert.ok(back.pad.every((x) => x === 0));
  }
  assert.ok(sawGap, "the gap case was exercised");
  // multi-byte text counts bytes, not characters
  const fr = padReport({ v: 1, category: "csam", description: "é".repeat(600) });
  assert.equal(fr.length, 4096);
  assert.throws(() => padReport({ v: 1, category: "other", description: "x".repeat(65536) }), RangeError);
});

test("buildReport keeps what was typed, drops empty fields", () => {
  const r = buildReport({ category: "sextortion", urls: " https://a.example/1 \r\n\r\nhttps://b.example/2\n",
    description: "  ", platform: "App", seen_at: "2024-02-29", contact: "", lang: "fr" });
  assert.deepEqual(r, { v: 1, category: "sextortion", urls: ["https://a.example/1", "https://b.example/2"],
    lang: "fr", seen_at: 1709164800, platform: "App" });
  assert.deepEqual(buildReport({ category: "nope", seen_at: "29/02/2024" }),
    { v: 1, category: "other", seen_at_text: "29/02/2024" });
  const many = Array.from({ length: 257 }, (_, i) => "https://e.example/" + i).join("\n");
  assert.throws(() => buildReport({ category: "csam", urls: many }), RangeError);
  assert.equal(buildReport({ category: "csam", urls: many.split("\n").slice(1).join("\n") }).urls.length, 256);
  assert.equal(dateToUnix("1970-01-01"), 0);
  assert.equal(dateToUnix("2023-02-29"), null);
  assert.equal(dateToUnix("2024-13-01"), null);
});

// A hotline key document as the gateway serves it.
async function keyAnswer({ notAfter = Math.floor(Date.now() / 1000) + 3600, suite = [32, 1, 3], badKid = false } = {}) {
  const hs = hpkeSuite();
  const kp = await hs.kem.generateKeyPair();
  const pk = new Uint8Array(await hs.kem.serializePublicKey(kp.publicKey));
  const kid = new Uint8Array(await crypto.subtle.digest("SHA-256", pk)).slice(0, 8);
  if (badKid) kid[0] ^= 1;
  const key = encode({ v: 1, kid, suite, pk, not_after: notAfter });
  const sk = ed.utils.randomSecretKey();
  const spk = await ed.getPublicKeyAsync(sk);
  const sig = await ed.signAsync(new Uint8Array([...utf8("hotline-key/v1"), ...key]), sk);
  return { body: encode({ key, sig }), spk, kp, pk, kid };
}

test("key document: signature, expiry, suite and kid are checked", async () => {
  const now = Math.floor(Date.now() / 1000);
  const a = await keyAnswer();
  const k = await checkKey(a.body, a.spk, now);
  assert.deepEqual(k.pk, a.pk);
  assert.deepEqual(k.kid, a.kid);

  const other = await ed.getPublicKeyAsync(ed.utils.randomSecretKey());
  await assert.rejects(checkKey(a.body, other, now), /bad signature/);
  const tampered = a.body.slice(); tampered[10] ^= 1;
  await assert.rejects(checkKey(tampered, a.spk, now), /key:/);
  await assert.rejects(checkKey(a.body, a.spk, now + 7200), /expired/);
  const s = await keyAnswer({ suite: [32, 1, 1] });
  await assert.rejects(checkKey(s.body, s.spk, now), /malformed/);
  const b = await keyAnswer({ badKid: true });
  await assert.rejects(checkKey(b.body, b.spk, now), /kid mismatch/);
  await assert.rejects(checkKey(new Uint8Array([0xa0]), a.spk, now), /malformed/);
});

test("seal, then open with @hpke/core's recipient side, gives the same bytes", async () => {
  const a = await keyAnswer();
  const key = await checkKey(a.body, a.spk, Math.floor(Date.now() / 1000));
  const pt = padReport(buildReport({ category: "csam", urls: "https://x.example/", lang: "en" }));
  const envBytes = await seal(key, pt);
  const env = decode(envBytes);
  assert.deepEqual(Object.keys(env), ["v", "suite", "kid", "enc", "ct"]);
  assert.equal(env.v, 1);
  assert.deepEqual(env.suite, [32, 1, 3]);
  assert.deepEqual(env.kid, a.kid);
  assert.equal(env.enc.length, 32);
  assert.equal(env.ct.length, pt.length + 16);
  // An independent suite object on the recipient side.
  const rs = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() });
  const ctx = await rs.createRecipientContext({ recipientKey: a.kp, enc: env.enc, info: reportInfo(a.kid) });
  const opened = new Uint8Array(await ctx.open(env.ct));
  assert.deepEqual(opened, pt);
  // Wrong info (another kid) must not open.
  const ctx2 = await rs.createRecipientContext({ recipientKey: a.kp, enc: env.enc, info: reportInfo(new Uint8Array(8)) });
  await assert.rejects(ctx2.open(env.ct));
});

test("the HPKE suite matches the RFC 9180 test vector (base, X25519, SHA-256, ChaCha20-Poly1305)", async () => {
  const vectors = JSON.parse(readFileSync(new URL("../../../protocol/tests/vectors/hpke-rfc9180.json", import.meta.url)));
  const v = vectors.find((x) => x.mode === 0 && x.kem_id === 32 && x.kdf_id === 1 && x.aead_id === 3);
  assert.ok(v);
  const hs = hpkeSuite();
  const ekm = await hs.kem.deserializePrivateKey(unhex(v.skEm));
  const ekmPair = { privateKey: ekm, publicKey: await hs.kem.deserializePublicKey(unhex(v.pkEm)) };
  const ctx = await hs.createSenderContext({
    recipientPublicKey: await hs.kem.deserializePublicKey(unhex(v.pkRm)), info: unhex(v.info), ekm: ekmPair,
  });
  assert.equal(hex(new Uint8Array(ctx.enc)), v.enc);
  for (const e of v.encryptions.slice(0, 3)) {
    assert.equal(hex(new Uint8Array(await ctx.seal(unhex(e.pt), unhex(e.aad)))), e.ct);
  }
});

test("base64 helpers", () => {
  const k = randomKey();
  assert.match(k, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(b64url(new Uint8Array([0xfb, 0xff])), "-_8");
  assert.deepEqual(b64decode("+/8="), new Uint8Array([0xfb, 0xff]));
  assert.deepEqual(b64decode("-_8"), new Uint8Array([0xfb, 0xff]));
});
