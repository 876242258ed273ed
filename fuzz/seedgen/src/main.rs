//! Writes `fuzz/corpus/<target>/` seeds and the fixed fuzz-only keys the
//! targets embed. Valid messages come from the protocol's own encoders, so
//! the seeds follow the code; hand-written edge cases sit beside them.
//! Deterministic except for HPKE's ephemeral keys and receipt codes, so
//! re-running only rewrites files whose content changed.
//!
//! Run from the repository root: `ops/fuzz --seeds`
//! (= `cargo run --manifest-path fuzz/Cargo.toml -p hotline-fuzz-seedgen`).
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

use hotline_protocol::cbor::Writer;
use hotline_protocol::{
    seal_report, AckAnswer, AckRequest, Aead, Category, Channel, DeadItem, DeadList, ErrorBody,
    HashAlg, HpkeSecretKey, ImageHash, KeyAnswer, KeyDocument, Reason, ReceiptAnswer, ReceiptCode,
    RecordId, Report, SigningKey, StaffItem, StaffList, SubmitAnswer,
};
use ring::rand::SystemRandom;

/// Far in the future, so the fixed key document never expires for the
/// request target, which loads it as a live gateway does.
const NOT_AFTER: u64 = 4_102_444_800;
/// The fuzz-only HPKE private key (never a real one).
const HPKE_RAW: [u8; 32] = [0x42; 32];

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/")
        .to_owned();
    let rng = SystemRandom::new();
    let signing = signing_key(&fuzz.join("seedgen/signing-key.pem"), &rng);
    let hpke = HpkeSecretKey::from_raw(&HPKE_RAW).expect("fixed HPKE key");
    let doc = KeyDocument {
        public_key: hpke.public_key(),
        aead: Aead::ChaCha20Poly1305,
        not_after: NOT_AFTER,
    };
    let signed = doc.sign(&signing);
    let targets = fuzz.join("fuzz_targets");
    write(
        &targets.join("pinned-signing.key"),
        &signing.verifying_key().0,
    );
    write(&targets.join("key-document.cbor"), &signed);
    write(
        &targets.join("signing-public.pem"),
        signing.verifying_key().to_pem().expect("pem").as_bytes(),
    );

    let corpus = fuzz.join("corpus");
    let reports = sample_reports();
    let mut envelopes = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let aead = if i % 2 == 0 {
            Aead::ChaCha20Poly1305
        } else {
            Aead::Aes128Gcm
        };
        envelopes.push(
            seal_report(r, &doc.public_key, aead, &rng)
                .expect("seal")
                .encode(),
        );
    }

    // envelope
    let dir = corpus.join("envelope");
    for (i, e) in envelopes.iter().enumerate() {
        write(&dir.join(format!("sealed-{i}")), e);
    }
    let mut w = Writer::new();
    w.map(6).text("v").uint(1).text("suite").array(3);
    w.uint(32).uint(1).uint(3);
    w.text("kid").bytes(&[1; 8]).text("enc").bytes(&[2; 32]);
    w.text("ct").bytes(&[3; 16]).text("future").map(1).text("x");
    w.array(1).null();
    write(&dir.join("unknown-field"), &w.into_bytes());
    write(&dir.join("empty-map"), &[0xa0]);
    write(&dir.join("indefinite-map"), &[0xbf, 0xff]);
    write(
        &dir.join("huge-string"),
        &[
            0xa1, 0x61, b'v', 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );

    // report
    let dir = corpus.join("report");
    for (i, r) in reports.iter().enumerate() {
        write(&dir.join(format!("plain-{i}")), &r.encode());
    }
    write(
        &dir.join("padded-0"),
        &reports[0].encode_padded().expect("pad"),
    );
    let mut w = Writer::new();
    w.map(3).text("v").uint(1).text("category").text("csam");
    w.text("hashes").array(1).map(2).text("alg").text("md5");
    w.text("value").bytes(&[0; 15]);
    write(&dir.join("short-hash"), &w.into_bytes());

    // key_document
    let dir = corpus.join("key_document");
    write(&dir.join("signed"), &signed);
    write(&dir.join("inner"), &doc.encode());
    let expired = KeyDocument {
        not_after: 1,
        aead: Aead::Aes128Gcm,
        ..doc.clone()
    };
    write(&dir.join("signed-expired"), &expired.sign(&signing));
    // What `GET /v1/key` serves: the answer naming its signer.
    let served = KeyAnswer::sign(&doc, &signing)
        .with_signer(signing.verifying_key())
        .encode();
    write(&dir.join("served"), &served);

    // messages
    let dir = corpus.join("messages");
    let item = |i: u8| StaffItem {
        id: record_id(u128::from(i) * 0x1234_5678_9abc),
        received_at: 1_750_000_000 - 1_750_000_000 % 3600,
        channel: Channel::ALL[usize::from(i) % Channel::ALL.len()],
        envelope: envelopes[usize::from(i) % envelopes.len()].clone(),
    };
    let receipt = ReceiptCode::generate(&rng).expect("receipt").to_string();
    let messages: Vec<(&str, Vec<u8>)> = vec![
        (
            "submit-answer",
            SubmitAnswer {
                id: record_id(7),
                receipt: receipt.clone(),
            }
            .encode(),
        ),
        (
            "error-body",
            ErrorBody::new(Reason::CborTruncated, "input ends before the message does").encode(),
        ),
        (
            "staff-list",
            StaffList {
                reports: vec![item(0), item(1)],
                next: Some("2".into()),
            }
            .encode(),
        ),
        (
            "staff-list-end",
            StaffList {
                reports: vec![],
                next: None,
            }
            .encode(),
        ),
        (
            "dead-list",
            DeadList {
                reports: vec![DeadItem {
                    item: item(2),
                    reason: "422 invalid_envelope".into(),
                }],
            }
            .encode(),
        ),
        ("key-answer", served.clone()),
        (
            "ack-request",
            AckRequest {
                ids: vec![item(0).id.to_string(), item(1).id.to_string()],
            }
            .encode(),
        ),
        ("ack-answer", AckAnswer { acked: 2 }.encode()),
        (
            "receipt-delivered",
            ReceiptAnswer::delivered(20_000).encode(),
        ),
        ("receipt-queued", ReceiptAnswer::QUEUED.encode()),
        ("receipt-code", receipt.clone().into_bytes()),
        (
            "receipt-code-spaces",
            receipt.replace('-', " ").into_bytes(),
        ),
        (
            "hpke-public-pem",
            hpke.public_key().to_pem().expect("pem").into_bytes(),
        ),
        ("hpke-secret-pem", hpke.to_pem().expect("pem").into_bytes()),
        (
            "signing-public-pem",
            signing.verifying_key().to_pem().expect("pem").into_bytes(),
        ),
    ];
    for (name, bytes) in &messages {
        write(&dir.join(name), bytes);
    }

    // cbor_reader: limits prefix (ENVELOPE-like), op count, ops, input.
    let dir = corpus.join("cbor_reader");
    let prefix = |ops: &[u8]| -> Vec<u8> {
        let mut p = vec![0x00, 0x01, 4, 255, 8, 32, ops.len() as u8];
        p.extend_from_slice(ops);
        p
    };
    let walk = [9u8]; // for_each_entry over the top-level map
    for (name, bytes) in messages.iter().filter(|(n, _)| !n.contains("pem")) {
        write(&dir.join(name), &[prefix(&[]), bytes.clone()].concat());
    }
    write(
        &dir.join("envelope-walk"),
        &[prefix(&walk), envelopes[0].clone()].concat(),
    );
    write(
        &dir.join("report-walk"),
        &[prefix(&[0, 2, 4, 2, 2, 1, 2, 7]), reports[1].encode()].concat(),
    );
    write(
        &dir.join("deep"),
        &[prefix(&[]), vec![0x81; 20], vec![0x00]].concat(),
    );
    write(
        &dir.join("tagged"),
        &[prefix(&[]), vec![0xc1, 0xd8, 0x20, 0x63, b'a', b'b', b'c']].concat(),
    );

    // nojs_form
    let dir = corpus.join("nojs_form");
    let forms: [(&str, &str); 5] = [
        (
            "full",
            "nonce=q83vEjRWeJCrze8SNFZ4kA&lang=fr&category=grooming&urls=https%3A%2F%2Fa.example%2Fx%0D%0A%0D%0A++https%3A%2F%2Fb.example%2F%3Fq%3D1+%0D%0A\
             &description=Il+%C3%A9crit+%22%3Cb%3E%22%0D%0A%26+plus&platform=Chat%C3%A9&seen_at=2024-02-29\
             &contact=me%40example.org&unknown=x&category=csam",
        ),
        ("category-only", "category=self-generated&urls=%0D%0A&description=+&lang="),
        ("date-text", "category=other&seen_at=last+tuesday"),
        ("bad-utf8", "category=other&description=%FF"),
        ("odd-encoding", "category=livestream&x=%FF&&=&description&%=%%41%4"),
    ];
    for (name, body) in forms {
        write(&dir.join(name), body.as_bytes());
    }

    // config
    let dir = corpus.join("config");
    let scratch = tempfile::tempdir().expect("tempdir");
    let installed = hotline_gateway::setup::install(scratch.path(), true).expect("install");
    let demo = fs::read_to_string(&installed.config).expect("config");
    write(&dir.join("demo"), demo.as_bytes());
    let minimal = "[keys]\nkey_document = \"k.cbor\"\nsigning_public_key = \"s.pem\"\nmaster_key = \"m.key\"\n";
    write(&dir.join("minimal"), minimal.as_bytes());
    write(
        &dir.join("forward"),
        format!(
            "{minimal}log_level = \"warn,hotline_gateway=debug\"\n[forward]\nbackend_url = \"http://[::1]:9000/in\"\n\
             concurrency = 65\nclient_cert = \"c.pem\"\n[metrics]\ntoken_sha256 = \"{}\"\n",
            "ab".repeat(32)
        )
        .as_bytes(),
    );
    write(
        &dir.join("bad-values"),
        format!(
            "{minimal}data_dir = \"/nonexistent\"\n[listen]\nplain = \"0.0.0.0:80\"\n[limits]\nmax_headers = 1\n\
             rate_buckets = 0\n[store]\nengine = \"sled\"\nepoch_secs = 0\n[staff]\ntoken_sha256 = [\"{}\", \"zz\"]\n",
            "0F".repeat(32)
        )
        .as_bytes(),
    );

    // request: raw HTTP/1.1; the target fixes Content-Length and fills {TOKEN}.
    let dir = corpus.join("request");
    let get = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nhost: gw\r\n{extra}\r\n").into_bytes()
    };
    let post = |path: &str, headers: &str, body: &[u8]| {
        [
            format!("POST {path} HTTP/1.1\r\nhost: gw\r\n{headers}\r\n").into_bytes(),
            body.to_vec(),
        ]
        .concat()
    };
    let cbor = "content-type: application/cbor\r\n";
    let staff = "authorization: Bearer {TOKEN}\r\n";
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("healthz", get("/healthz", "")),
        ("head-key", b"HEAD /v1/key HTTP/1.1\r\nhost: gw\r\n\r\n".to_vec()),
        ("metrics", get("/metrics", "authorization: Bearer nope\r\n")),
        (
            "submit",
            post(
                "/v1/reports",
                &format!("{cbor}idempotency-key: q83vEjRWeJCrze8SNFZ4kA\r\nhotline-channel: web\r\n"),
                &envelopes[0],
            ),
        ),
        ("submit-aes", post("/v1/reports", cbor, &envelopes[1])),
        ("submit-wrong-type", post("/v1/reports", "content-type: text/plain\r\n", b"hello")),
        ("receipt", get(&format!("/v1/receipts/{receipt}"), "")),
        ("receipt-spaces", get("/v1/receipts/1234%205678+9012-3456", "")),
        ("staff-list", get("/v1/staff/reports?after=0&limit=5", staff)),
        ("staff-list-bad", get("/v1/staff/reports?after=x&limit=100000", staff)),
        ("staff-dead", get("/v1/staff/dead?limit=3", staff)),
        (
            "staff-ack",
            post(
                "/v1/staff/ack",
                &format!("{cbor}{staff}"),
                &AckRequest {
                    ids: vec![item(0).id.to_string(), "not-an-id".into()],
                }
                .encode(),
            ),
        ),
        ("staff-no-token", get("/v1/staff/reports", "")),
        ("form", get("/?lang=de", "accept-language: fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5\r\n")),
        (
            "form-post",
            post(
                "/report",
                "content-type: application/x-www-form-urlencoded\r\naccept-language: es\r\n",
                forms[0].1.as_bytes(),
            ),
        ),
        ("check", get(&format!("/check?code={receipt}&lang=nl"), "")),
        (
            "check-post",
            post(
                "/check",
                "content-type: application/x-www-form-urlencoded\r\naccept-language: de\r\n",
                format!("code={}&lang=fr", receipt.replace('-', "+")).as_bytes(),
            ),
        ),
        (
            "form-post-cross-site",
            post(
                "/report",
                "content-type: application/x-www-form-urlencoded\r\nsec-fetch-site: cross-site\r\norigin: https://evil.example\r\n",
                forms[1].1.as_bytes(),
            ),
        ),
        (
            "form-post-same-origin",
            post(
                "/report",
                "content-type: application/x-www-form-urlencoded\r\nsec-fetch-site: same-origin\r\norigin: https://gw\r\n",
                forms[2].1.as_bytes(),
            ),
        ),
        ("static-js", get("/static/form.js", "accept-encoding: gzip, br\r\nif-none-match: \"x\"\r\n")),
        ("static-css", get("/static/form.css", "")),
        ("report-reload", get("/report", "accept-language: fr\r\n")),
        ("favicon-delete", b"DELETE /favicon.ico HTTP/1.1\r\nhost: gw\r\n\r\n".to_vec()),
        ("wrong-method", b"PUT /report HTTP/1.1\r\nhost: gw\r\n\r\n".to_vec()),
        ("not-found", get("/v2/reports", "")),
        (
            "chunked",
            b"POST /v1/reports HTTP/1.1\r\nhost: gw\r\ncontent-type: application/cbor\r\ntransfer-encoding: chunked\r\n\r\n1\r\n\xa0\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "keep-alive-two",
            b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\nGET /v1/key HTTP/1.1\r\nhost: gw\r\n\r\n".to_vec(),
        ),
    ];
    for (name, bytes) in &requests {
        write(&dir.join(name), bytes);
    }
}

/// The record id whose 16 bytes are `n`.
fn record_id(n: u128) -> RecordId {
    RecordId::from_bytes(n.to_be_bytes())
}

/// The fixed fuzz-only signing key, made once and kept in git.
fn signing_key(path: &Path, rng: &SystemRandom) -> SigningKey {
    if let Ok(pem) = fs::read_to_string(path) {
        return SigningKey::from_pem(&pem).expect("fuzz signing key");
    }
    let key = SigningKey::generate(rng).expect("signing key");
    write(path, key.to_pem().as_bytes());
    key
}

fn sample_reports() -> Vec<Report> {
    let mut full = Report::new(Category::Grooming);
    full.urls = vec![
        "https://a.example/x".into(),
        "https://b.example/?q=1".into(),
    ];
    full.description = Some("Il écrit \"<b>\"\n& plus".into());
    full.lang = Some("fr".into());
    full.seen_at = Some(1_709_164_800);
    full.platform = Some("Chaté".into());
    full.hashes = vec![
        ImageHash {
            alg: HashAlg::Sha256,
            value: vec![0xab; 32],
        },
        ImageHash {
            alg: HashAlg::Md5,
            value: vec![0xcd; 16],
        },
    ];
    full.contact = Some("signal: +41 00 000 00 00".into());
    full.reply_key = Some([9; 32]);
    let mut w = Writer::new();
    w.text("last tuesday");
    full.extra = vec![("seen_at_text".into(), w.into_bytes())];
    let mut big = Report::new(Category::Csam);
    big.urls = (0..40)
        .map(|i| format!("https://example.org/{i}"))
        .collect();
    big.description = Some("x".repeat(3000));
    vec![
        Report::new(Category::Other),
        full,
        big,
        Report::new(Category::SelfGenerated),
    ]
}

/// Writes a file unless it already holds these bytes.
fn write(path: &Path, bytes: &[u8]) {
    if fs::read(path).ok().as_deref() == Some(bytes) {
        return;
    }
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
}
