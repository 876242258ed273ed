//! The public web form (clients/web), rendered and served by the gateway.
//!
//! Everything is embedded at compile time, so the binary is self-contained:
//! the templates, the bundled script and style sheet (with their gzip forms,
//! made by `clients/web/build.sh`) and every `clients/web/i18n/*.json`
//! (listed by `build.rs`, so a new language is one more file).
//!
//! Routes: `GET /` (the form, in the language of `?lang=`, else of
//! `Accept-Language`, else English), `GET /static/form.js` and
//! `/static/form.css`, `/favicon.ico` (404, there is none) and `POST /report`,
//! the no-JS path: the gateway parses the form, seals the report to the
//! hotline key in memory and queues only the envelope, channel `web-nojs`.
//! Nothing here logs or stores what a reporter wrote or where they came from.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use bytes::Bytes;
use hotline_protocol::cbor::Writer;
use hotline_protocol::{Category, Report, SealError};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderName, HeaderValue, ACCEPT_ENCODING, ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_ENCODING,
    CONTENT_LANGUAGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION, RETRY_AFTER, VARY,
};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use crate::api::{App, Peer};
use crate::error::ApiError;

type Resp = Response<Full<Bytes>>;
type Answer = (&'static str, Result<Resp, ApiError>);

/// The policy of every HTML answer: only our own script and style, forms
/// only to us, never framed.
pub const CSP: &str =
    "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Features the form never needs.
const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=()";
/// How long browsers may keep the script and style sheet.
const STATIC_CACHE: &str = "public, max-age=86400";

/// Most links one report may carry (the hotline decoder's array limit; the
/// script refuses more too).
pub const MAX_URLS: usize = 256;

/// The language used when nothing else matches.
const DEFAULT_LANG: &str = "en";

static TRANSLATIONS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/web_i18n.rs"));

const FORM_HTML: &str = include_str!("../../clients/web/templates/form.html");
const SENT_HTML: &str = include_str!("../../clients/web/templates/sent.html");
const ERROR_HTML: &str = include_str!("../../clients/web/templates/error.html");
const CHECK_HTML: &str = include_str!("../../clients/web/templates/check.html");

/// A static file and its gzip form.
struct Asset {
    body: &'static [u8],
    gzip: &'static [u8],
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static [u8], gzip: &'static [u8], content_type: &'static str) -> Asset {
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        let etag = digest.as_ref()[..12]
            .iter()
            .fold(String::from("\""), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
            + "\"";
        Asset {
            body,
            gzip,
            content_type,
            etag,
        }
    }
}

static FORM_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../clients/web/dist/form.js"),
        include_bytes!("../../clients/web/dist/form.js.gz"),
        "text/javascript; charset=utf-8",
    )
});
static FORM_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../clients/web/dist/form.css"),
        include_bytes!("../../clients/web/dist/form.css.gz"),
        "text/css; charset=utf-8",
    )
});

/// One language file.
#[derive(Debug)]
struct Lang {
    /// The file's name, e.g. `fr`: the page's `lang` and the `?lang=` value.
    code: &'static str,
    strings: HashMap<String, String>,
}

impl Lang {
    fn get(&self, key: &str) -> &str {
        self.strings.get(key).map(String::as_str).unwrap_or("")
    }
}

static LANGS: LazyLock<Vec<Lang>> = LazyLock::new(|| {
    TRANSLATIONS
        .iter()
        .filter_map(|(code, text)| match parse_flat_json(text) {
            Ok(pairs) => Some(Lang {
                code,
                strings: pairs.into_iter().collect(),
            }),
            Err(e) => {
                tracing::error!(lang = code, error = %e, "web form language file skipped");
                None
            }
        })
        .collect()
});

/// A template split once into text and `{{name}}` slots.
struct Template(Vec<Piece>);

enum Piece {
    Text(&'static str),
    Slot(&'static str),
}

static FORM: LazyLock<Template> = LazyLock::new(|| Template::compile(FORM_HTML));
static SENT: LazyLock<Template> = LazyLock::new(|| Template::compile(SENT_HTML));
static ERROR: LazyLock<Template> = LazyLock::new(|| Template::compile(ERROR_HTML));
static CHECK: LazyLock<Template> = LazyLock::new(|| Template::compile(CHECK_HTML));

impl Template {
    fn compile(src: &'static str) -> Template {
        let mut pieces = Vec::new();
        let (mut text_from, mut search) = (0, 0);
        while let Some(offset) = src[search..].find("{{") {
            let at = search + offset;
            let rest = &src[at + 2..];
            let name_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
                .count();
            if name_len > 0 && rest[name_len..].starts_with("}}") {
                pieces.push(Piece::Text(&src[text_from..at]));
                pieces.push(Piece::Slot(&rest[..name_len]));
                text_from = at + 2 + name_len + 2;
                search = text_from;
            } else {
                // Like the reference regex: try again one character on.
                search = at + 1;
            }
        }
        pieces.push(Piece::Text(&src[text_from..]));
        Template(pieces)
    }

    /// Fills the slots: runtime `vars` (escaped), then `raw` values (as
    /// they are), then the language's strings (escaped). An unknown name
    /// renders as nothing (the unit tests make sure there is none).
    fn render(&self, lang: &Lang, vars: &[(&str, &str)], raw: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(8 * 1024);
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot(name) => {
                    if let Some((_, v)) = vars.iter().find(|(k, _)| k == name) {
                        escape_into(&mut out, v);
                    } else if let Some((_, v)) = raw.iter().find(|(k, _)| k == name) {
                        out.push_str(v);
                    } else if let Some(v) = lang.strings.get(*name) {
                        escape_into(&mut out, v);
                    } else {
                        tracing::warn!(placeholder = name, "unknown web form placeholder");
                    }
                }
            }
        }
        out
    }
}

/// HTML-escapes `& < > " '`, so strings are safe in text and attributes.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Answers the web form's routes, or gives the request back if it is not one.
pub async fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
    peer: Peer,
) -> Result<(&'static str, Result<Response<Full<Bytes>>, ApiError>), Request<Incoming>> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let answer: Answer = match req.uri().path() {
        "/" if get => {
            let lang = choose_lang(req.uri().query(), header(req.headers(), ACCEPT_LANGUAGE));
            ("web_form", Ok(form_page(app, lang)))
        }
        "/report" if *req.method() == Method::POST => {
            ("web_report", Ok(post_report(app, req, peer).await))
        }
        "/check" if get => {
            let lang = choose_lang(req.uri().query(), header(req.headers(), ACCEPT_LANGUAGE));
            let code = req.uri().query().and_then(|q| query_param(q, "code"));
            ("web_check", Ok(check_page(app, lang, code, peer).await))
        }
        // A reload of the receipt page, or a bookmark: back to the form.
        "/report" if get => ("web_report", Ok(redirect_home())),
        "/static/form.js" if get => ("web_static", Ok(asset(req.headers(), &FORM_JS))),
        "/static/form.css" if get => ("web_static", Ok(asset(req.headers(), &FORM_CSS))),
        "/favicon.ico" => ("web_favicon", Ok(favicon())),
        "/" | "/report" | "/check" | "/static/form.js" | "/static/form.css" => (
            "method",
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed here",
            )),
        ),
        _ => return Err(req),
    };
    Ok(answer)
}

fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------------------
// Pages

fn form_page(app: &App, lang: &Lang) -> Resp {
    let fingerprint = app.keys.signing.fingerprint();
    let signing_key = base64::engine::general_purpose::STANDARD.encode(app.keys.signing.0);
    let links = lang_links(lang);
    // A fresh nonce per rendered form lets the no-JS path recognise the same
    // form sent again after a lost answer (see `form_idempotency_key`).
    let mut nonce = [0u8; 16];
    let nonce = match ring::rand::SecureRandom::fill(&app.rng, &mut nonce) {
        Ok(()) => crate::setup::base64url(&nonce),
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
    html(StatusCode::OK, lang, body)
}

/// `GET /check[?code=…]`: the receipt check for people, in their language.
/// The same lookup as `GET /v1/receipts/{code}` (one store read whatever the
/// code, unknown and malformed alike), rate limited the same way.
async fn check_page(app: &Arc<App>, lang: &Lang, code: Option<String>, peer: Peer) -> Resp {
    let status = match code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => "",
        Some(code) => match app.receipt_status(code, peer).await {
            Ok(answer) => match answer.status.as_str() {
                "queued" => lang.get("check_queued"),
                "delivered" => lang.get("check_delivered"),
                _ => lang.get("check_unknown"),
            },
            Err(e) => return error_page(app, lang, &e, msg_for(&e)),
        },
    };
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
    html(StatusCode::OK, lang, body)
}

fn sent_page(app: &App, lang: &Lang, receipt: &str) -> Resp {
    let fingerprint = app.keys.signing.fingerprint();
    let body = SENT.render(
        lang,
        &[
            ("lang", lang.code),
            ("fingerprint", &fingerprint),
            ("receipt", receipt),
        ],
        &[],
    );
    html(StatusCode::OK, lang, body)
}

/// The error page for a rejection, with its status and Retry-After, counted
/// like API rejections.
fn error_page(app: &App, lang: &Lang, e: &ApiError, msg_key: &str) -> Resp {
    app.metrics.rejection(e.reason);
    let body = ERROR.render(
        lang,
        &[("lang", lang.code), ("message", lang.get(msg_key))],
        &[],
    );
    let mut resp = html(e.status, lang, body);
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
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

fn html(status: StatusCode, lang: &Lang, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // frame-ancestors for browsers too old to know it.
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(lang.code) {
        h.insert(CONTENT_LANGUAGE, v);
    }
    resp
}

fn redirect_home() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/"));
    resp
}

fn favicon() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    // There is none; let browsers stop asking for a day.
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(STATIC_CACHE));
    resp
}

fn asset(headers: &HeaderMap, asset: &Asset) -> Resp {
    let not_modified = header(headers, IF_NONE_MATCH).is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == asset.etag)
    });
    let gzip = accepts_gzip(header(headers, ACCEPT_ENCODING).unwrap_or(""));
    let mut resp = if not_modified {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else if gzip {
        let mut r = Response::new(Full::new(Bytes::from_static(asset.gzip)));
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Full::new(Bytes::from_static(asset.body)))
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(STATIC_CACHE));
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(ETAG, v);
    }
    resp
}

/// Whether `Accept-Encoding` allows gzip (an explicit `q=0` refuses it).
fn accepts_gzip(accept: &str) -> bool {
    accept.split(',').take(32).any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1000), parse_q);
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
            && q.is_some_and(|q| q > 0)
    })
}

// ---------------------------------------------------------------------------
// Language choice

fn default_lang() -> &'static Lang {
    static FALLBACK: LazyLock<Lang> = LazyLock::new(|| Lang {
        code: DEFAULT_LANG,
        strings: HashMap::new(),
    });
    LANGS
        .iter()
        .find(|l| l.code == DEFAULT_LANG)
        .or_else(|| LANGS.first())
        .unwrap_or(&FALLBACK)
}

/// The language file for a BCP 47 tag: the exact name (any case), else its
/// primary subtag (`fr-CH` -> `fr`).
fn find_lang(tag: &str) -> Option<&'static Lang> {
    let tag = tag.trim();
    if tag.is_empty() || tag.len() > 35 {
        return None;
    }
    LANGS
        .iter()
        .find(|l| l.code.eq_ignore_ascii_case(tag))
        .or_else(|| {
            let primary = tag.split('-').next().unwrap_or("");
            LANGS.iter().find(|l| l.code.eq_ignore_ascii_case(primary))
        })
}

/// `?lang=` if it names a language we have, else the best `Accept-Language`
/// entry we have, else English.
fn choose_lang(query: Option<&str>, accept_language: Option<&str>) -> &'static Lang {
    query
        .and_then(|q| query_param(q, "lang"))
        .and_then(|tag| find_lang(&tag))
        .or_else(|| accept_language.and_then(lang_from_accept))
        .unwrap_or_else(default_lang)
}

/// The best language of an `Accept-Language` header (RFC 9110 12.5.4):
/// highest q first, header order among equals, q=0 never.
fn lang_from_accept(header: &str) -> Option<&'static Lang> {
    let mut ranked: Vec<(u16, &str)> = header
        .split(',')
        .take(32)
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = match parts.find_map(|p| p.trim().strip_prefix("q=")) {
                Some(q) => parse_q(q)?,
                None => 1000,
            };
            (q > 0 && !tag.is_empty() && tag != "*").then_some((q, tag))
        })
        .collect();
    ranked.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    ranked.into_iter().find_map(|(_, tag)| find_lang(tag))
}

/// A q-value in thousandths, or `None` if it is not one.
fn parse_q(q: &str) -> Option<u16> {
    let q = q.trim();
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').take(32).find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v.as_bytes()))?.ok()
    })
}

// ---------------------------------------------------------------------------
// The no-JS report

/// Why a posted form is refused, before anything is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormError {
    /// No category chosen.
    MissingCategory,
    /// A category that is not one of v1's.
    UnknownCategory,
    /// More than [`MAX_URLS`] links.
    TooManyUrls,
    /// Not valid UTF-8 once decoded.
    Encoding,
}

impl FormError {
    fn api_error(self) -> ApiError {
        match self {
            FormError::MissingCategory => {
                ApiError::bad_request("missing_category", "choose what the report is about")
            }
            FormError::UnknownCategory => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_category",
                "not a v1 category",
            ),
            FormError::TooManyUrls => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_urls",
                "at most 256 links per report",
            ),
            FormError::Encoding => {
                ApiError::bad_request("bad_form", "the form is not valid UTF-8 form data")
            }
        }
    }

    fn msg_key(self) -> &'static str {
        match self {
            FormError::MissingCategory | FormError::UnknownCategory => "msg_category",
            FormError::TooManyUrls => "msg_too_large",
            FormError::Encoding => "msg_rejected",
        }
    }
}

/// The message shown for a rejection, by status, like the script's.
fn msg_for(e: &ApiError) -> &'static str {
    match e.status.as_u16() {
        413 => "msg_too_large",
        507 => "msg_full",
        408 => "msg_network",
        429 | 503 => "msg_busy",
        s if s >= 500 => "msg_busy",
        _ => "msg_rejected",
    }
}

/// The largest form body: the report's 64 KiB plus percent-encoding, which
/// triples every byte outside ASCII letters and digits.
fn form_body_limit(app: &App) -> usize {
    app.limits.max_body_bytes.saturating_mul(3)
}

/// `POST /report`: parse, seal in memory, queue the envelope, show the
/// receipt. Errors are pages in the reporter's language.
async fn post_report(app: &Arc<App>, req: Request<Incoming>, peer: Peer) -> Resp {
    let accept_lang = header(req.headers(), ACCEPT_LANGUAGE).and_then(lang_from_accept);
    let page_lang = accept_lang.unwrap_or_else(default_lang);
    if let Err(e) = app.check_rate(peer) {
        return error_page(app, page_lang, &e, "msg_busy");
    }
    let form_type = header(req.headers(), CONTENT_TYPE)
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_some_and(|v| v.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        let e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "wrong_media_type",
            "send the form as application/x-www-form-urlencoded",
        );
        return error_page(app, page_lang, &e, "msg_rejected");
    }
    let body = match crate::api::read_body(req, form_body_limit(app), &app.limits).await {
        Ok(body) => body,
        Err(e) => return error_page(app, page_lang, &e, msg_for(&e)),
    };
    let fields = match parse_form(&body) {
        Ok(fields) => fields,
        Err(e) => return error_page(app, page_lang, &e.api_error(), e.msg_key()),
    };
    let idempotency_key = form_idempotency_key(&fields, &body);
    drop(body);
    let page_lang = fields
        .get("lang")
        .and_then(|l| find_lang(l))
        .or(accept_lang)
        .unwrap_or_else(default_lang);
    let report = match build_report(&fields) {
        Ok(report) => report,
        Err(e) => return error_page(app, page_lang, &e.api_error(), e.msg_key()),
    };
    drop(fields);
    let doc = &app.keys.document;
    let sealed = hotline_protocol::seal_report(&report, &doc.public_key, doc.aead, &app.rng);
    drop(report);
    let envelope = match sealed {
        Ok(envelope) => envelope,
        Err(SealError::TooLarge(n)) => {
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "report_too_large",
                format!("the report is {n} bytes, more than 64 KiB"),
            );
            return error_page(app, page_lang, &e, "msg_too_large");
        }
        Err(other) => {
            tracing::error!(error = %other, "sealing a web form report failed");
            let e = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "seal_failed",
                "the report could not be sealed",
            );
            return error_page(app, page_lang, &e, "msg_busy");
        }
    };
    match app
        .store_envelope(
            envelope.encode(),
            hotline_protocol::Channel::WebNojs,
            idempotency_key,
        )
        .await
    {
        Ok(answer) => sent_page(app, page_lang, &answer.receipt),
        Err(e) => error_page(app, page_lang, &e, msg_for(&e)),
    }
}

/// The idempotency key of a no-JS submission: a hash of the form's nonce and
/// the whole body. A reporter on a slow link who sends the same form again
/// after losing the answer gets the first receipt and no duplicate; edited
/// content from the same page is a new report. Without a well-formed nonce
/// (an old cached page) there is no key.
fn form_idempotency_key(fields: &Fields, body: &[u8]) -> Option<[u8; 16]> {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(fields.get("nonce")?)
        .ok()
        .filter(|n| n.len() == 16)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"hotline-web-nojs/v1");
    ctx.update(&nonce);
    ctx.update(body);
    let mut key = [0u8; 16];
    key.copy_from_slice(&ctx.finish().as_ref()[..16]);
    Some(key)
}

/// The form fields the report uses, first occurrence of each; others are
/// ignored.
type Fields = HashMap<&'static str, String>;

const FIELD_NAMES: [&str; 8] = [
    "nonce",
    "category",
    "urls",
    "description",
    "platform",
    "seen_at",
    "contact",
    "lang",
];

/// Parses `application/x-www-form-urlencoded` (UTF-8).
fn parse_form(body: &[u8]) -> Result<Fields, FormError> {
    let mut fields = Fields::new();
    for pair in body.split(|b| *b == b'&') {
        let split = pair.iter().position(|b| *b == b'=');
        let (k, v) = match split {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let key = percent_decode(k).map_err(|_| FormError::Encoding)?;
        let Some(name) = FIELD_NAMES.iter().find(|n| **n == key) else {
            continue;
        };
        if fields.contains_key(name) {
            continue;
        }
        let value = percent_decode(v).map_err(|_| FormError::Encoding)?;
        fields.insert(name, value);
    }
    Ok(fields)
}

/// Decodes `+` and `%XX`; a `%` not followed by two hex digits stays as is.
fn percent_decode(input: &[u8]) -> Result<String, std::string::FromUtf8Error> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                input.get(i + 1).and_then(|b| hex(*b)),
                input.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
}

/// The report the fields describe, as the script builds it: empty fields
/// left out, links one per line, a date that is not `YYYY-MM-DD` kept as
/// `seen_at_text`.
fn build_report(fields: &Fields) -> Result<Report, FormError> {
    // Browsers send a textarea's line breaks as CRLF; the script (and so
    // the hotline) sees LF, as typed.
    let text = |name: &str| {
        fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| v.replace("\r\n", "\n"))
    };
    let category: Category = match text("category") {
        None => return Err(FormError::MissingCategory),
        Some(c) => c.parse().map_err(|_| FormError::UnknownCategory)?,
    };
    let mut report = Report::new(category);
    let urls = fields.get("urls").map(String::as_str).unwrap_or("");
    for url in urls.split('\n').map(str::trim).filter(|u| !u.is_empty()) {
        if report.urls.len() == MAX_URLS {
            return Err(FormError::TooManyUrls);
        }
        report.urls.push(url.to_owned());
    }
    report.description = text("description");
    report.lang = text("lang");
    report.platform = text("platform");
    report.contact = text("contact");
    if let Some(seen) = text("seen_at") {
        match parse_date(&seen) {
            Some(t) => report.seen_at = Some(t),
            None => {
                let mut w = Writer::new();
                w.text(&seen);
                report
                    .extra
                    .push(("seen_at_text".to_owned(), w.into_bytes()));
            }
        }
    }
    Ok(report)
}

/// `YYYY-MM-DD` -> unix seconds at 00:00 UTC, if it is a real date from 1970.
fn parse_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if y < 1970 || d == 0 || d > month_days {
        return None;
    }
    // Days from civil (H. Hinnant), for years from 1970.
    let (y, m, d) = (i64::from(y), i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400).ok()
}

// ---------------------------------------------------------------------------
// Language files: one flat JSON object of string -> string.

/// Parses a flat JSON object whose values are all strings.
fn parse_flat_json(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut p = JsonParser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    p.ws();
    p.expect(b'{')?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let value = p.string()?;
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(format!("duplicate key {key:?}"));
            }
            pairs.push((key, value));
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(format!("expected , or }} at byte {}", p.i)),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing data at byte {}", p.i));
    }
    Ok(pairs)
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        self.i += 1;
        b
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, want: u8) -> Result<(), String> {
        match self.next() {
            Some(b) if b == want => Ok(()),
            _ => Err(format!(
                "expected {:?} at byte {}",
                want as char,
                self.i - 1
            )),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| format!("bad \\u escape at byte {}", self.i))?;
        self.i += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next() {
                None => return Err("unterminated string".to_owned()),
                Some(b'"') => break,
                Some(b'\\') => {
                    let c = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                                    return Err("lone surrogate".to_owned());
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("bad surrogate pair".to_owned());
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or("bad \\u escape")?
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i - 1)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(b) if b < 0x20 => {
                    return Err(format!("control character at byte {}", self.i - 1))
                }
                Some(b) => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| "invalid UTF-8".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_protocol::cbor::{Limits, Reader};

    fn lang(code: &str) -> &'static Lang {
        LANGS.iter().find(|l| l.code == code).unwrap()
    }

    fn form(body: &str) -> Result<Report, FormError> {
        build_report(&parse_form(body.as_bytes())?)
    }

    #[test]
    fn every_language_file_parses_and_has_every_key_of_english() {
        assert_eq!(
            LANGS.len(),
            TRANSLATIONS.len(),
            "a language file did not parse"
        );
        let en = lang("en");
        assert!(LANGS.iter().any(|l| l.code == "fr"));
        for l in LANGS.iter() {
            for key in en.strings.keys() {
                assert!(l.strings.contains_key(key), "{}.json lacks {key}", l.code);
            }
            assert!(
                ["ltr", "rtl"].contains(&l.get("dir")),
                "{}.json dir",
                l.code
            );
            assert!(!l.get("language_name").is_empty());
        }
    }

    #[test]
    fn language_from_query_then_accept_language_then_english() {
        let pick = |q: Option<&str>, a: Option<&str>| choose_lang(q, a).code;
        assert_eq!(pick(None, None), "en");
        assert_eq!(pick(None, Some("fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5")), "fr");
        assert_eq!(pick(None, Some("en;q=0.5, fr;q=0.9")), "fr");
        assert_eq!(
            pick(None, Some("en;q=0.9, fr;q=0.9")),
            "en",
            "header order among equals"
        );
        assert_eq!(pick(None, Some("zz-ZZ, FR-fr;q=0.1")), "fr");
        assert_eq!(pick(None, Some("fr;q=0, en;q=0.1")), "en");
        assert_eq!(pick(None, Some("fr;q=0")), "en", "q=0 means not acceptable");
        assert_eq!(pick(None, Some("fr;q=2, *")), "en", "invalid q is ignored");
        assert_eq!(pick(None, Some("fr;q=0.001")), "fr");
        assert_eq!(pick(None, Some(",,;;,fr")), "fr");
        assert_eq!(pick(Some("lang=fr"), Some("en")), "fr");
        assert_eq!(pick(Some("x=1&lang=en"), Some("fr")), "en");
        assert_eq!(
            pick(Some("lang=zz"), Some("fr")),
            "fr",
            "unknown ?lang= falls through"
        );
        assert_eq!(pick(Some("lang=%3Cb%3E"), None), "en");
        assert_eq!(pick(Some("lang=fr-BE"), None), "fr");
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.25"), Some(250));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("abc"), None);
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn templates_escape_strings_and_values_but_not_the_language_links() {
        let t =
            Template::compile("<p title=\"{{a}}\">{{b}} {{lang_links}} {{{{c}} {{Not}} {{x}}</p>");
        let l = Lang {
            code: "en",
            strings: [("b", "<script>&'\"</script>"), ("c", "ok")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        let out = t.render(
            &l,
            &[("a", "\" onload=\"x'&<>")],
            &[("lang_links", "<a href=\"/?lang=fr\">Français</a>")],
        );
        assert_eq!(
            out,
            "<p title=\"&quot; onload=&quot;x&#39;&amp;&lt;&gt;\">&lt;script&gt;&amp;&#39;&quot;&lt;/script&gt; \
             <a href=\"/?lang=fr\">Français</a> {{ok {{Not}} </p>"
        );
        // Runtime values win over strings of the same name.
        let t = Template::compile("{{b}}");
        assert_eq!(t.render(&l, &[("b", "v")], &[]), "v");
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
                for piece in &t.0 {
                    if let Piece::Slot(name) = piece {
                        assert!(
                            vars.iter().any(|(k, _)| k == name)
                                || *name == "lang_links"
                                || l.strings.contains_key(*name),
                            "{{{{{name}}}}} unknown in {}",
                            l.code
                        );
                    }
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
    fn a_full_form_becomes_the_report_the_script_would_send() {
        let r = form(
            "lang=fr&category=grooming&urls=https%3A%2F%2Fa.example%2Fx%0D%0A%0D%0A++https%3A%2F%2Fb.example%2F%3Fq%3D1+%0D%0A\
             &description=Il+%C3%A9crit+%22%3Cb%3E%22%0D%0A%26+plus&platform=Chat%C3%A9&seen_at=2024-02-29\
             &contact=&unknown=x&category=csam",
        )
        .unwrap();
        assert_eq!(r.category, Category::Grooming, "first occurrence wins");
        assert_eq!(r.urls, ["https://a.example/x", "https://b.example/?q=1"]);
        assert_eq!(r.description.as_deref(), Some("Il écrit \"<b>\"\n& plus"));
        assert_eq!(r.platform.as_deref(), Some("Chaté"));
        assert_eq!(r.lang.as_deref(), Some("fr"));
        assert_eq!(r.seen_at, Some(1_709_164_800));
        assert_eq!(r.contact, None, "empty fields are left out");
        assert!(r.extra.is_empty());
        // It seals and opens as the same report.
        let decoded = Report::decode(&r.encode_padded().unwrap()).unwrap();
        assert_eq!(decoded, r);
    }

    #[test]
    fn a_form_with_only_a_category_has_only_a_category() {
        let r = form("category=self-generated&urls=%0D%0A&description=+&lang=").unwrap();
        assert_eq!(r, Report::new(Category::SelfGenerated));
    }

    #[test]
    fn the_category_is_required_and_checked() {
        assert_eq!(
            form("urls=https%3A%2F%2Fa.example%2F"),
            Err(FormError::MissingCategory)
        );
        assert_eq!(form("category=+"), Err(FormError::MissingCategory));
        assert_eq!(form("category=nudity"), Err(FormError::UnknownCategory));
        assert_eq!(
            FormError::MissingCategory.api_error().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            FormError::UnknownCategory.api_error().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(FormError::MissingCategory.msg_key(), "msg_category");
    }

    #[test]
    fn a_date_that_is_not_a_date_is_kept_as_seen_at_text() {
        for bad in [
            "last tuesday",
            "2024-02-30",
            "29/02/2024",
            "1969-12-31",
            "2024-13-01",
        ] {
            let body = format!("category=other&seen_at={}", bad.replace(' ', "+"));
            let r = form(&body).unwrap();
            assert_eq!(r.seen_at, None, "{bad}");
            let (key, value) = &r.extra[0];
            assert_eq!(key, "seen_at_text");
            let mut reader = Reader::new(value, Limits::REPORT).unwrap();
            assert_eq!(reader.text("seen_at_text").unwrap(), bad);
            let back = Report::decode(&r.encode()).unwrap();
            assert_eq!(back.extra, r.extra);
        }
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(951_868_800));
        assert_eq!(parse_date("2100-02-29"), None);
        assert_eq!(parse_date("2024-1-01"), None);
        assert_eq!(parse_date("２０２４-01-01"), None);
    }

    #[test]
    fn at_most_256_links_are_accepted() {
        let urls = |n: usize| {
            (0..n)
                .map(|i| format!("https%3A%2F%2Fexample.org%2F{i}"))
                .collect::<Vec<_>>()
                .join("%0A")
        };
        let r = form(&format!("category=csam&urls={}%0A%0A", urls(256))).unwrap();
        assert_eq!(r.urls.len(), 256);
        assert_eq!(
            form(&format!("category=csam&urls={}", urls(257))),
            Err(FormError::TooManyUrls)
        );
        assert_eq!(
            FormError::TooManyUrls.api_error().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(FormError::TooManyUrls.msg_key(), "msg_too_large");
    }

    #[test]
    fn form_encoding_edge_cases() {
        assert_eq!(percent_decode(b"a+b%20c%zz%4").unwrap(), "a b c%zz%4");
        assert!(percent_decode(b"%FF").is_err());
        assert_eq!(
            form("category=other&description=%FF"),
            Err(FormError::Encoding)
        );
        // Unknown fields are not even decoded.
        assert!(form("category=other&x=%FF&&=&description").is_ok());
    }

    #[test]
    fn messages_follow_the_status_like_the_script() {
        let e = |s: u16| ApiError::new(StatusCode::from_u16(s).unwrap(), "x", "x");
        assert_eq!(msg_for(&e(503)), "msg_busy");
        assert_eq!(msg_for(&e(429)), "msg_busy");
        assert_eq!(msg_for(&e(507)), "msg_full");
        assert_eq!(msg_for(&e(413)), "msg_too_large");
        assert_eq!(msg_for(&e(400)), "msg_rejected");
    }

    #[test]
    fn the_same_form_sent_twice_has_one_idempotency_key_and_an_edit_another() {
        let body = b"nonce=q83vEjRWeJCrze8SNFZ4kA&category=csam&description=a";
        let key = |b: &[u8]| form_idempotency_key(&parse_form(b).unwrap(), b);
        assert!(key(body).is_some());
        assert_eq!(key(body), key(body));
        assert_ne!(
            key(body),
            key(b"nonce=q83vEjRWeJCrze8SNFZ4kA&category=csam&description=b")
        );
        assert_eq!(key(b"category=csam"), None, "no nonce, no key");
        assert_eq!(key(b"nonce=short&category=csam"), None);
    }

    #[test]
    fn flat_json() {
        let pairs = parse_flat_json("");
        assert!(pairs.is_err(), "empty input");
        let pairs =
            parse_flat_json(r#" { "a" : "x\"\\\/\n\u00e9\ud83d\ude00", "b":"" } "#).unwrap();
        assert_eq!(pairs[0], ("a".to_owned(), "x\"\\/\né😀".to_owned()));
        assert_eq!(pairs[1], ("b".to_owned(), String::new()));
        assert_eq!(parse_flat_json("{}").unwrap(), vec![]);
        for bad in [
            r#"{"a":1}"#,
            r#"{"a":"x",}"#,
            r#"{"a":"x"} x"#,
            r#"{"a":"x","a":"y"}"#,
            r#"{"a":"\ud83d"}"#,
            "{\"a\":\"\n\"}",
            r#"{"a":"x""#,
        ] {
            assert!(parse_flat_json(bad).is_err(), "{bad}");
        }
    }
}
