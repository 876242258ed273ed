#!/usr/bin/env python3
"""Independent implementation of the hotline protocol v1 envelope (protocol/SPEC.md),
written with pyhpke + cbor2 + pyca/cryptography and none of the Rust code, for the
interop tests in protocol/tests/interop_python.rs.

Subcommands:
  seal --pk-hex H --aead 1|3 --report-json J [--pad]
      Seals the report (JSON, see below) to the raw X25519 public key H and prints
      the envelope's CBOR as hex. With --pad, adds "pad" so the plaintext is exactly
      one of the size buckets.
  open --sk-pem FILE
      Reads envelope hex on stdin, opens it with the PKCS#8 X25519 key in FILE and
      prints the report as JSON, without "pad". Fails if a padded plaintext is not
      exactly a bucket long.

JSON <-> CBOR: a CBOR byte string is the JSON object {"$hex": "..."}; every other
JSON value maps to the obvious CBOR item (integers, text, arrays, maps, true/false/null).
"""

import argparse
import hashlib
import json
import sys

import cbor2
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

VERSION = 1
KEM_ID = 0x0020
KDF_ID = 0x0001
INFO_PREFIX = b"hotline-report/v1"
BUCKETS = (1024, 4096, 16384, 65536)


def to_cbor_value(v):
    if isinstance(v, dict):
        if set(v.keys()) == {"$hex"}:
            return bytes.fromhex(v["$hex"])
        return {k: to_cbor_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_cbor_value(x) for x in v]
    return v


def to_json_value(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$hex": bytes(v).hex()}
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json_value(x) for x in v]
    return v


def kid_of(pk: bytes) -> bytes:
    return hashlib.sha256(pk).digest()[:8]


def suite_for(aead_id: int) -> CipherSuite:
    aead = {1: AEADId.AES128_GCM, 3: AEADId.CHACHA20_POLY1305}[aead_id]
    return CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, aead)


def pad_report(report: dict) -> bytes:
    """Adds "pad" so that the encoding is exactly the smallest bucket that fits."""
    for bucket in BUCKETS:
        base = len(cbor2.dumps({**report, "pad": b""}))
        # The pad's bstr head grows by 0, 1, 2 or 4 bytes with its length.
        for grow in (0, 1, 2, 4):
            n = bucket - base - grow
            if n < 0:
                continue
            out = cbor2.dumps({**report, "pad": bytes(n)})
            if len(out) == bucket:
                return out
    raise SystemExit("report too large for the largest bucket")


def cmd_seal(args) -> None:
    pk = bytes.fromhex(args.pk_hex)
    if len(pk) != 32:
        raise SystemExit("public key must be 32 bytes")
    report = to_cbor_value(json.loads(args.report_json))
    plaintext = pad_report(report) if args.pad else cbor2.dumps(report)
    kid = kid_of(pk)
    suite = suite_for(args.aead)
    pkr = suite.kem.deserialize_public_key(pk)
    enc, ctx = suite.create_sender_context(pkr, INFO_PREFIX + kid)
    ct = ctx.seal(plaintext, b"")
    envelope = {
        "v": VERSION,
        "suite": [KEM_ID, KDF_ID, args.aead],
        "kid": kid,
        "enc": enc,
        "ct": ct,
    }
    print(cbor2.dumps(envelope).hex())


def cmd_open(args) -> None:
    with open(args.sk_pem, "rb") as f:
        sk = load_pem_private_key(f.read(), password=None)
    if not isinstance(sk, X25519PrivateKey):
        raise SystemExit("not an X25519 private key")
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    envelope = cbor2.loads(bytes.fromhex(sys.stdin.read().strip()))
    if envelope.get("v") != VERSION:
        raise SystemExit(f"unsupported version {envelope.get('v')!r}")
    suite_ids = list(envelope["suite"])
    if suite_ids[:2] != [KEM_ID, KDF_ID] or suite_ids[2] not in (1, 3):
        raise SystemExit(f"unsupported suite {suite_ids!r}")
    if envelope["kid"] != kid_of(pk):
        raise SystemExit("envelope sealed to another key")
    suite = suite_for(suite_ids[2])
    ctx = suite.create_recipient_context(
        envelope["enc"], KEMKey.from_pyca_cryptography_key(sk), INFO_PREFIX + envelope["kid"]
    )
    plaintext = ctx.open(envelope["ct"], b"")
    report = cbor2.loads(plaintext)
    if "pad" in report:
        if len(plaintext) not in BUCKETS:
            raise SystemExit(f"padded plaintext of {len(plaintext)} bytes is not a bucket")
        del report["pad"]
    print(json.dumps(to_json_value(report), sort_keys=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seal")
    s.add_argument("--pk-hex", required=True)
    s.add_argument("--aead", type=int, choices=(1, 3), required=True)
    s.add_argument("--report-json", required=True)
    s.add_argument("--pad", action="store_true")
    o = sub.add_parser("open")
    o.add_argument("--sk-pem", required=True)
    args = p.parse_args()
    {"seal": cmd_seal, "open": cmd_open}[args.cmd](args)


if __name__ == "__main__":
    main()
