//! HTTP helpers shared by the API and the web form, so neither imports the
//! other: response builders, the headers every answer carries, bounded body
//! reading, header and query access, form decoding and q-values.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE,
};
use hyper::{HeaderMap, Request, Response, StatusCode};

use hotline_protocol::Reason;

use crate::error::ApiError;

/// Every answer the gateway builds: a whole body in memory.
pub type Resp = Response<Full<Bytes>>;

/// The policy of every HTML answer: only our own script and style, forms
/// only to us, never framed.
pub const CSP: &str =
    "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Features the form never needs.
const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=()";

/// A response with a status and no body.
pub fn empty(status: StatusCode) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// A protocol answer: CBOR with the protocol's media type.
pub fn cbor(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(hotline_protocol::MEDIA_TYPE),
    );
    resp
}

/// A plain text answer (health, metrics).
pub fn text(status: StatusCode, body: &str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A page of the web form in language `lang`, with the policy headers only
/// HTML needs; [`with_common_headers`] adds the rest.
pub fn html(status: StatusCode, lang: &str, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    // frame-ancestors for browsers too old to know it.
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if let Ok(v) = HeaderValue::from_str(lang) {
        h.insert(CONTENT_LANGUAGE, v);
    }
    resp
}

/// Headers every answer carries: nothing cached (unless the handler said
/// otherwise), nothing referred, nothing sniffed.
pub fn with_common_headers(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    h.entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000"),
    );
    resp
}

/// The answer to HEAD: the GET answer's status and headers, with the length
/// of its body but not the body, whatever the HTTP version.
pub fn without_body(resp: Resp) -> Resp {
    use hyper::body::Body as _;
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.size_hint().exact().filter(|n| *n > 0) {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Full::new(Bytes::new()))
}

/// A header's value as text, if present and visible ASCII.
pub fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `Content-Type` names `media` (parameters and case ignored).
pub fn media_type_is(headers: &HeaderMap, media: &str) -> bool {
    header(headers, CONTENT_TYPE)
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_some_and(|v| v.eq_ignore_ascii_case(media))
}

/// 415 unless the body is declared as the protocol's CBOR.
pub fn require_cbor(headers: &HeaderMap) -> Result<(), ApiError> {
    if media_type_is(headers, hotline_protocol::MEDIA_TYPE) {
        Ok(())
    } else {
        Err(ApiError::new(
            Reason::WrongMediaType,
            "send the envelope as application/cbor",
        ))
    }
}

/// Most bytes of a refused body read and discarded before answering.
pub const LINGER_BYTES: u64 = 1 << 20;

/// Reads a whole body within `max` bytes and `timeout`.
///
/// A body refused as too large on HTTP/1.1 is first read and thrown away
/// (up to [`LINGER_BYTES`], within `timeout`), as nginx's lingering close
/// does: a client that writes its whole body before reading, as most do,
/// would otherwise meet a reset instead of the 413.
pub async fn read_body(
    req: Request<Incoming>,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let linger = req.version() <= hyper::Version::HTTP_11;
    let deadline = tokio::time::Instant::now() + timeout;
    let too_large = || {
        ApiError::new(
            Reason::BodyTooLarge,
            format!("the body is larger than {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        if linger && declared.is_some_and(|n| n <= LINGER_BYTES) {
            discard(req.into_body(), deadline).await;
        }
        return Err(too_large());
    }
    let mut body = req.into_body();
    let collect = Limited::new(&mut body, max).collect();
    match tokio::time::timeout_at(deadline, collect).await {
        Err(_) => Err(ApiError::new(
            Reason::BodyTimeout,
            "the body took too long to arrive",
        )),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            if linger {
                discard(body, deadline).await;
            }
            Err(too_large())
        }
        Ok(Err(_)) => Err(ApiError::new(
            Reason::BodyIncomplete,
            "the body was cut short",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Reads and drops what is left of a body, up to [`LINGER_BYTES`] in all
/// and until `deadline`; it ends early at the body's end or an error.
async fn discard(mut body: Incoming, deadline: tokio::time::Instant) {
    let mut left = LINGER_BYTES;
    let drain = async {
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, drain).await;
}

/// The `name=value` pairs of a query string, as sent (not decoded); a pair
/// without `=` has an empty value.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// The first value of `name` among the first 32 pairs, decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query_pairs(query)
        .take(32)
        .find_map(|(k, v)| (k == name).then(|| percent_decode(v.as_bytes()))?.ok())
}

/// Decodes `+` and `%XX` (form and query encoding); a `%` not followed by
/// two hex digits stays as is.
pub fn percent_decode(input: &[u8]) -> Result<String, std::string::FromUtf8Error> {
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

/// A q-value (RFC 9110 12.4.2) in thousandths, or `None` if it is not one.
pub fn parse_q(q: &str) -> Option<u16> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a+b%20c%zz%4").unwrap(), "a b c%zz%4");
        assert!(percent_decode(b"%FF").is_err());
        assert_eq!(
            query_param("x=1&lang=fr%2DBE&lang=en", "lang").as_deref(),
            Some("fr-BE")
        );
        assert_eq!(query_param("lang", "lang").as_deref(), Some(""));
    }

    #[test]
    fn a_head_answer_keeps_status_headers_and_length_but_no_body() {
        use hyper::body::Body as _;
        let page = || with_common_headers(html(StatusCode::OK, "fr", "<p>bonjour</p>".into()));
        let (get, head) = (page(), without_body(page()));
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()[CONTENT_LENGTH], "14");
        assert_eq!(head.headers()["content-security-policy"], CSP);
        assert_eq!(head.headers()[CONTENT_LANGUAGE], "fr");
        assert_eq!(head.body().size_hint().exact(), Some(0));
        for (name, value) in get.headers() {
            assert_eq!(head.headers().get(name), Some(value), "{name}");
        }
    }
}
