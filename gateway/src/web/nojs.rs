//! The no-JS path of the web form: `POST /report` parses the form, builds
//! the report the script would have built, seals it to the hotline key in
//! memory and queues only the envelope, channel `web-nojs`. Nothing here
//! logs or stores what a reporter wrote or where they came from, and every
//! copy of it this module owns (the body, the fields, the report; the
//! protocol wipes the padded plaintext) is wiped as soon as it is sealed.

use std::collections::HashMap;

use bytes::Bytes;
use hotline_protocol::{Category, Channel, Reason, Report, SealError, MAX_URLS};
use hyper::body::Incoming;
use hyper::header::{HeaderName, ACCEPT_LANGUAGE, HOST, ORIGIN};
use hyper::{HeaderMap, Request, Uri};
use zeroize::Zeroizing;

use super::i18n::default_lang;
use super::lang::{find_lang, lang_from_accept};
use super::pages::{error_page, msg_for, sent_page};
use crate::app::{App, Peer};
use crate::error::ApiError;
use crate::http::{self, Resp};

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
                ApiError::new(Reason::MissingCategory, "choose what the report is about")
            }
            FormError::UnknownCategory => {
                ApiError::new(Reason::UnknownCategory, "not a v1 category")
            }
            FormError::TooManyUrls => ApiError::new(
                Reason::TooManyUrls,
                format!("at most {MAX_URLS} links per report"),
            ),
            FormError::Encoding => {
                ApiError::new(Reason::BadForm, "the form is not valid UTF-8 form data")
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

/// The largest form body: the report's 64 KiB plus percent-encoding, which
/// triples every byte outside ASCII letters and digits.
fn form_body_limit(app: &App) -> usize {
    app.limits.max_body_bytes.saturating_mul(3)
}

/// `POST /report`: parse, seal in memory, queue the envelope, show the
/// receipt. Errors are pages in the reporter's language.
pub async fn post_report(app: &App, req: Request<Incoming>, peer: Peer) -> Resp {
    let accept_lang = http::header(req.headers(), ACCEPT_LANGUAGE).and_then(lang_from_accept);
    let page_lang = accept_lang.unwrap_or_else(default_lang);
    if is_foreign_post(req.headers(), req.uri()) {
        let e = ApiError::new(
            Reason::CrossSite,
            "the form was posted from another site; open the form on this site",
        );
        return error_page(app, page_lang, &e, "msg_cross_site");
    }
    if let Err(e) = app.check_rate(peer) {
        return error_page(app, page_lang, &e, "msg_busy");
    }
    if !http::media_type_is(req.headers(), "application/x-www-form-urlencoded") {
        let e = ApiError::new(
            Reason::WrongMediaType,
            "send the form as application/x-www-form-urlencoded",
        );
        return error_page(app, page_lang, &e, "msg_rejected");
    }
    let body = match http::read_body(req, form_body_limit(app), app.limits.body_timeout).await {
        Ok(body) => owned_body(body),
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
        .and_then(|l| find_lang(l.as_str()))
        .or(accept_lang)
        .unwrap_or_else(default_lang);
    let report = match build_report(&fields) {
        Ok(report) => report,
        Err(e) => return error_page(app, page_lang, &e.api_error(), e.msg_key()),
    };
    drop(fields);
    let doc = &app.keys.document;
    let sealed = hotline_protocol::seal_report(&report, &doc.public_key, doc.aead, &app.rng);
    // Wiped here, before the envelope is stored.
    drop(report);
    let envelope = match sealed {
        Ok(envelope) => envelope,
        Err(SealError::TooLarge(n)) => {
            let e = ApiError::new(
                Reason::ReportTooLarge,
                format!("the report is {n} bytes, more than 64 KiB"),
            );
            return error_page(app, page_lang, &e, "msg_too_large");
        }
        Err(other) => {
            tracing::error!(error = %other, "sealing a web form report failed");
            let e = ApiError::new(Reason::SealFailed, "the report could not be sealed");
            return error_page(app, page_lang, &e, "msg_busy");
        }
    };
    match app
        .store_envelope(envelope.encode(), Channel::WebNojs, idempotency_key)
        .await
    {
        Ok(answer) => sent_page(app, page_lang, &answer.receipt),
        Err(e) => error_page(app, page_lang, &e, msg_for(&e)),
    }
}

/// The form body as a buffer of ours, wiped when dropped. A body that is
/// ours alone (several chunks joined) keeps its buffer; one still shared
/// with hyper's read buffer is copied, and hyper's copy is hyper's.
fn owned_body(body: Bytes) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match body.try_into_mut() {
        Ok(unique) => Vec::from(unique),
        Err(shared) => shared.to_vec(),
    })
}

/// `Sec-Fetch-Site`, sent by every current browser.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Whether a form post comes from a page that is not the gateway's own, so
/// that another site cannot make a visitor's browser file a report (or
/// flood the queue from many visitors).
///
/// `Sec-Fetch-Site`, which a page cannot forge, decides when present:
/// only `same-origin` and `none` (typed, bookmarked) pass; `same-site` is
/// foreign too (a sibling subdomain is another site to us: we never serve
/// the form from one). Without it (older browsers), an `Origin` that is
/// `null` or whose host and port are not the request's own (`Host`, or the
/// HTTP/2 `:authority`) is foreign; the scheme is not compared, as behind a
/// proxy the gateway does not know the public one (the proxy must pass the
/// public `Host` on: docs/deployment.md). A post with neither header (old
/// browsers, some privacy modes) passes.
fn is_foreign_post(headers: &HeaderMap, uri: &Uri) -> bool {
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        let site = site.to_str().unwrap_or("").trim();
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return false;
    };
    let own = http::header(headers, HOST).or_else(|| uri.authority().map(|a| a.as_str()));
    match (origin.to_str().ok().and_then(origin_authority), own) {
        (Some((authority, default_port)), Some(own)) => {
            strip_port(&authority, default_port)
                != strip_port(&own.to_ascii_lowercase(), default_port)
        }
        // `null`, something that is not an origin, or no Host to compare.
        _ => true,
    }
}

/// The lower-cased `host[:port]` of a serialized origin and the default port
/// of its scheme; `None` for `null` or anything that is not
/// `http(s)://authority`.
fn origin_authority(origin: &str) -> Option<(String, &'static str)> {
    let origin = origin.trim().to_ascii_lowercase();
    let (rest, default_port) = if let Some(rest) = origin.strip_prefix("https://") {
        (rest, ":443")
    } else if let Some(rest) = origin.strip_prefix("http://") {
        (rest, ":80")
    } else {
        return None;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    Some((rest.to_owned(), default_port))
}

/// `authority` without the scheme's default port, so `example.org:443`
/// and `example.org` compare equal.
fn strip_port<'a>(authority: &'a str, default_port: &str) -> &'a str {
    authority.strip_suffix(default_port).unwrap_or(authority)
}

/// The idempotency key of a no-JS submission: a hash of the form's nonce and
/// the whole body. A reporter on a slow link who sends the same form again
/// after losing the answer gets the first receipt and no duplicate; edited
/// content from the same page is a new report. Without a well-formed nonce
/// (an old cached page) there is no key.
fn form_idempotency_key(fields: &Fields, body: &[u8]) -> Option<[u8; 16]> {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(fields.get("nonce")?.as_bytes())
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
/// ignored. Each value is wiped when dropped.
type Fields = HashMap<&'static str, Zeroizing<String>>;

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
        let key = Zeroizing::new(http::percent_decode(k).map_err(|_| FormError::Encoding)?);
        let Some(name) = FIELD_NAMES.iter().find(|n| **n == key.as_str()) else {
            continue;
        };
        if fields.contains_key(name) {
            continue;
        }
        let value = http::percent_decode(v).map_err(|_| FormError::Encoding)?;
        fields.insert(name, Zeroizing::new(value));
    }
    Ok(fields)
}

/// The report the fields describe, as the script builds it: empty fields
/// left out, links one per line, a date that is not `YYYY-MM-DD` kept as
/// `seen_at_text`. The report is wiped when dropped, on every path.
fn build_report(fields: &Fields) -> Result<Zeroizing<Report>, FormError> {
    // Browsers send a textarea's line breaks as CRLF; the script (and so
    // the hotline) sees LF, as typed.
    let text = |name: &str| {
        fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(crlf_to_lf)
    };
    let category: Category = match text("category").map(Zeroizing::new) {
        None => return Err(FormError::MissingCategory),
        Some(c) => c.parse().map_err(|_| FormError::UnknownCategory)?,
    };
    let mut report = Zeroizing::new(Report::new(category));
    let urls = fields.get("urls").map(|u| u.as_str()).unwrap_or("");
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
    if let Some(seen) = text("seen_at").map(Zeroizing::new) {
        report.set_seen_at_text(&seen);
    }
    Ok(report)
}

/// What `POST /report` makes of a form body before sealing: the parsed
/// fields and the report built from them, or `None` where the form is
/// refused. Public only for the fuzz targets (`fuzz/`), which must reach the
/// parser without an `App` or a request.
#[doc(hidden)]
pub fn report_from_form(body: &[u8]) -> Option<Zeroizing<Report>> {
    let fields = parse_form(body).ok()?;
    let _ = form_idempotency_key(&fields, body);
    build_report(&fields).ok()
}

/// `text` with every CRLF as LF, in one buffer that never grows (a grown
/// buffer would leave a copy of the text in freed memory).
fn crlf_to_lf(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\r\n") {
        out.push_str(&rest[..i]);
        out.push('\n');
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_protocol::cbor::{Limits, Reader};
    use hotline_protocol::SEEN_AT_TEXT;
    use hyper::StatusCode;

    fn form(body: &str) -> Result<Report, FormError> {
        build_report(&parse_form(body.as_bytes())?).map(|r| (*r).clone())
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
            FormError::MissingCategory.api_error().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            FormError::UnknownCategory.api_error().status(),
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
            assert_eq!(key, SEEN_AT_TEXT);
            assert_eq!(key, "seen_at_text");
            let mut reader = Reader::new(value, Limits::REPORT).unwrap();
            assert_eq!(reader.text("seen_at_text").unwrap(), bad);
            let back = Report::decode(&r.encode()).unwrap();
            assert_eq!(back.extra, r.extra);
        }
        // The date arithmetic is the protocol's (`time::parse_civil_date`,
        // tested there); the form gives it what the reporter typed.
        let seen = |typed: &str| {
            let r = form(&format!("category=other&seen_at={typed}")).unwrap();
            (r.seen_at, r.extra.len())
        };
        assert_eq!(seen("1970-01-01"), (Some(0), 0));
        assert_eq!(seen("2000-03-01"), (Some(951_868_800), 0));
        assert_eq!(seen("2100-02-29"), (None, 1));
        assert_eq!(seen("2024-1-01"), (None, 1));
        assert_eq!(
            seen("%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%94-01-01"),
            (None, 1)
        );
    }

    #[test]
    fn at_most_256_links_are_accepted() {
        assert_eq!(MAX_URLS, 256);
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
            FormError::TooManyUrls.api_error().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(FormError::TooManyUrls.msg_key(), "msg_too_large");
    }

    #[test]
    fn form_encoding_edge_cases() {
        // Decoding itself is tested with `http::percent_decode`.
        assert_eq!(
            form("category=other&description=%FF"),
            Err(FormError::Encoding)
        );
        // Unknown fields are not even decoded.
        assert!(form("category=other&x=%FF&&=&description").is_ok());
    }

    #[test]
    fn posts_from_other_sites_are_foreign_and_header_less_ones_are_not() {
        let uri: Uri = "/report".parse().unwrap();
        let foreign = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            is_foreign_post(&h, &uri)
        };
        let host = ("host", "report.example.org");
        assert!(!foreign(&[]), "no header: an old browser");
        assert!(!foreign(&[host]));
        assert!(!foreign(&[host, ("sec-fetch-site", "same-origin")]));
        assert!(!foreign(&[host, ("sec-fetch-site", "none")]));
        assert!(foreign(&[host, ("sec-fetch-site", "cross-site")]));
        assert!(foreign(&[host, ("sec-fetch-site", "same-site")]));
        assert!(foreign(&[host, ("sec-fetch-site", "cross-origin?")]));
        // The browser's word outranks Host, which a proxy may rewrite.
        assert!(!foreign(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://report.example.org"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!foreign(&[host, ("origin", "https://report.example.org")]));
        assert!(!foreign(&[
            host,
            ("origin", "https://Report.Example.org:443")
        ]));
        assert!(!foreign(&[
            ("host", "report.example.org:443"),
            ("origin", "https://report.example.org")
        ]));
        assert!(!foreign(&[
            ("host", "127.0.0.1:8443"),
            ("origin", "https://127.0.0.1:8443")
        ]));
        assert!(foreign(&[host, ("origin", "null")]));
        assert!(foreign(&[host, ("origin", "https://evil.example")]));
        assert!(foreign(&[host, ("origin", "https://www.example.org")]));
        assert!(foreign(&[
            host,
            ("origin", "https://report.example.org:8443")
        ]));
        assert!(foreign(&[
            host,
            ("origin", "https://report.example.org.evil.example")
        ]));
        assert!(
            foreign(&[("origin", "https://report.example.org")]),
            "no Host"
        );
        assert!(foreign(&[
            host,
            ("origin", "https://report.example.org"),
            ("sec-fetch-site", "cross-site")
        ]));
        let h2: Uri = "https://report.example.org/report".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("origin", "https://report.example.org".parse().unwrap());
        assert!(!is_foreign_post(&h, &h2), "HTTP/2 :authority");
        assert_eq!(
            ApiError::new(Reason::CrossSite, "x").status(),
            StatusCode::FORBIDDEN
        );
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
}
