//! The pages of the web form: the form itself, the receipt check, the
//! receipt after sending and the error page, each in the reporter's
//! language, with the policy headers of `http::html`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use base64::Engine as _;
use hotline_protocol::ReceiptState;
use hyper::header::{HeaderValue, LOCATION, RETRY_AFTER};
use hyper::StatusCode;

use super::i18n::{Lang, LANGS};
use super::templates::{escape, Template};
use crate::app::{App, Peer};
use crate::error::ApiError;
use crate::http::{self, Resp};

static FORM: LazyLock<Template> =
    LazyLock::new(|| Template::compile(include_str!("../../../clients/web/templates/form.html")));
static SENT: LazyLock<Template> =
    LazyLock::new(|| Template::compile(include_str!("../../../clients/web/templates/sent.html")));
static ERROR: LazyLock<Template> =
    LazyLock::new(|| Template::compile(include_str!("../../../clients/web/templates/error.html")));
static CHECK: LazyLock<Template> =
    LazyLock::new(|| Template::compile(include_str!("../../../clients/web/templates/check.html")));

/// The form, with the key fingerprint to compare and a fresh nonce.
pub fn form_page(app: &App, lang: &Lang) -> Resp {
    let fingerprint = app.keys.signing.fingerprint();
    let signing_key = base64::engine::general_purpose::STANDARD.encode(app.keys.signing.0);
    let links = lang_links(lang);
    // A fresh nonce per rendered form lets the no-JS path recognise the same
    // form sent again after a lost answer (see `nojs::form_idempotency_key`).
    let mut nonce = [0u8; 16];
    let nonce = match ring::rand::SecureRandom::fill(&app.rng, &mut nonce) {
        Ok(()) => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce),
        Err(_) => String::new(),
    };
    let body = FORM.render(
        lang,
        &[
            ("lang", lang.code),
            ("fingerprint", &fingerprint),
            ("signing_key", &signing_key),
            ("form_nonce", &nonce),
        ],
        &[("lang_links", &links)],
    );
    http::html(StatusCode::OK, lang.code, body)
}

/// The receipt check's three answers, by translation key.
const CHECK_STATES: [&str; 3] = ["check_queued", "check_delivered", "check_unknown"];

/// `/check`: the receipt check for people, in their language. The same
/// lookup as `GET /v1/receipts/{code}` (one store read whatever the code,
/// unknown and malformed alike), rate limited the same way. The status is
/// padded with spaces (which the browser does not show) to the longest of
/// the three, so every check page of a language has one length, with or
/// without a code.
pub async fn check_page(app: &App, lang: &Lang, code: Option<String>, peer: Peer) -> Resp {
    let status = match code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => "",
        Some(code) => match app.receipt_status(code, peer).await {
            Ok(answer) => match answer.status {
                ReceiptState::Queued => lang.get("check_queued"),
                ReceiptState::Delivered => lang.get("check_delivered"),
                ReceiptState::Unknown => lang.get("check_unknown"),
            },
            Err(e) => return error_page(app, lang, &e, msg_for(&e)),
        },
    };
    let width = CHECK_STATES
        .iter()
        .map(|k| escape(lang.get(k)).len())
        .max()
        .unwrap_or(0);
    let status = format!(
        "{status}{}",
        " ".repeat(width.saturating_sub(escape(status).len()))
    );
    let status = status.as_str();
    let fingerprint = app.keys.signing.fingerprint();
    let links = lang_links(lang);
    let body = CHECK.render(
        lang,
        &[
            ("lang", lang.code),
            ("fingerprint", &fingerprint),
            ("status", status),
        ],
        &[("lang_links", &links)],
    );
    http::html(StatusCode::OK, lang.code, body)
}

/// Every message an error page shows (see [`msg_for`] and the no-JS form).
pub const ERROR_MESSAGES: [&str; 7] = [
    "msg_category",
    "msg_too_large",
    "msg_rejected",
    "msg_cross_site",
    "msg_busy",
    "msg_full",
    "msg_network",
];

/// The receipt, once the report is durable, padded like the error pages.
pub fn sent_page(app: &App, lang: &Lang, receipt: &str) -> Resp {
    let fingerprint = app.keys.signing.fingerprint();
    let body = render_sent(lang, &fingerprint, receipt);
    http::html(
        StatusCode::OK,
        lang.code,
        pad_answer(lang, &fingerprint, body),
    )
}

fn render_sent(lang: &Lang, fingerprint: &str, receipt: &str) -> String {
    SENT.render(
        lang,
        &[
            ("lang", lang.code),
            ("fingerprint", fingerprint),
            ("receipt", receipt),
        ],
        &[],
    )
}

fn render_error(lang: &Lang, msg_key: &str) -> String {
    ERROR.render(
        lang,
        &[("lang", lang.code), ("message", lang.get(msg_key))],
        &[],
    )
}

/// `body` with spaces after `</html>` up to the longest answer a form post
/// can get in this language (the receipt page or any error page), so the
/// length of the answer does not say whether the report was taken.
fn pad_answer(lang: &Lang, fingerprint: &str, mut body: String) -> String {
    let longest = ERROR_MESSAGES
        .iter()
        .map(|k| render_error(lang, k).len())
        .chain([render_sent(lang, fingerprint, "0000-0000-0000-0000").len()])
        .max()
        .unwrap_or(0);
    let pad = longest.saturating_sub(body.len());
    body.extend(std::iter::repeat_n(' ', pad));
    body
}

/// The error page for a rejection, with its status and Retry-After, counted
/// like API rejections; padded like the receipt page.
pub fn error_page(app: &App, lang: &Lang, e: &ApiError, msg_key: &str) -> Resp {
    app.metrics.rejected(e.reason);
    let body = pad_answer(
        lang,
        &app.keys.signing.fingerprint(),
        render_error(lang, msg_key),
    );
    let mut resp = http::html(e.status(), lang.code, body);
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A reload of the receipt page, or a bookmark: back to the form.
pub fn redirect_home() -> Resp {
    let mut resp = http::empty(StatusCode::SEE_OTHER);
    resp.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/"));
    resp
}

/// The message shown for a rejection, by status, like the script's.
pub fn msg_for(e: &ApiError) -> &'static str {
    match e.status().as_u16() {
        413 => "msg_too_large",
        507 => "msg_full",
        408 => "msg_network",
        429 | 503 => "msg_busy",
        s if s >= 500 => "msg_busy",
        _ => "msg_rejected",
    }
}

/// The language switch: one link per language, the current one marked.
fn lang_links(current: &Lang) -> String {
    let mut out = String::new();
    for l in LANGS.iter() {
        if !out.is_empty() {
            out.push(' ');
        }
        let code = escape(l.code);
        let mark = if l.code == current.code {
            " aria-current=\"true\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<a href=\"/?lang={code}\" hreflang=\"{code}\" lang=\"{code}\"{mark}>{}</a>",
            escape(l.get("language_name"))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_protocol::Reason;

    fn lang(code: &str) -> &'static Lang {
        LANGS.iter().find(|l| l.code == code).unwrap()
    }

    #[test]
    fn every_template_renders_in_every_language_with_no_slot_left() {
        for l in LANGS.iter() {
            let links = lang_links(l);
            let vars = [
                ("lang", l.code),
                ("fingerprint", "3F2A 9C1B"),
                ("signing_key", "AAAA"),
                ("form_nonce", "q83vEjRWeJCrze8SNFZ4kA"),
                ("status", "queued"),
                ("receipt", "HX7K-2M9Q"),
                ("message", l.get("msg_busy")),
            ];
            for t in [&*FORM, &*SENT, &*ERROR, &*CHECK] {
                for name in t.slots() {
                    assert!(
                        vars.iter().any(|(k, _)| *k == name)
                            || name == "lang_links"
                            || l.lookup(name).is_some(),
                        "{{{{{name}}}}} unknown in {}",
                        l.code
                    );
                }
                let out = t.render(l, &vars, &[("lang_links", &links)]);
                assert!(!out.contains("{{") && !out.contains("}}"), "{}", l.code);
                assert!(out.contains(&format!("<html lang=\"{}\"", l.code)));
            }
        }
        let links = lang_links(lang("fr"));
        assert!(links.contains(
            "<a href=\"/?lang=fr\" hreflang=\"fr\" lang=\"fr\" aria-current=\"true\">Français</a>"
        ));
        assert!(links.contains("<a href=\"/?lang=en\" hreflang=\"en\" lang=\"en\">English</a>"));
    }

    #[test]
    fn messages_follow_the_status_like_the_script() {
        // One reason of each status, found by its status so the test
        // still says which status shows which message.
        let e = |s: u16| {
            let r = Reason::ALL.iter().find(|r| r.status() == s).unwrap();
            ApiError::new(*r, "x")
        };
        assert_eq!(msg_for(&e(503)), "msg_busy");
        assert_eq!(msg_for(&e(429)), "msg_busy");
        assert_eq!(msg_for(&e(507)), "msg_full");
        assert_eq!(msg_for(&e(413)), "msg_too_large");
        assert_eq!(msg_for(&e(400)), "msg_rejected");
        assert_eq!(msg_for(&e(408)), "msg_network");
        assert_eq!(msg_for(&e(500)), "msg_busy");
        for r in Reason::ALL {
            let key = msg_for(&ApiError::new(*r, "x"));
            assert!(ERROR_MESSAGES.contains(&key), "{key} is not padded for");
        }
    }

    #[test]
    fn the_receipt_page_and_every_error_page_have_one_length_per_language() {
        for l in LANGS.iter() {
            let fp = "3F2A 9C1B 0D4E 7A62";
            let sent = pad_answer(l, fp, render_sent(l, fp, "4829-1057-3366-2914"));
            for k in ERROR_MESSAGES {
                assert!(l.lookup(k).is_some(), "{k} in {}", l.code);
                let error = pad_answer(l, fp, render_error(l, k));
                assert_eq!(error.len(), sent.len(), "{k} in {}", l.code);
            }
            assert!(sent.trim_end().ends_with("</html>"));
        }
    }
}
