//! The form's script and style sheet, embedded at compile time with their
//! gzip forms (made by `clients/web/build.sh`), served with ETags so a
//! browser that has them gets a 304.

use std::sync::LazyLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, VARY,
};
use hyper::{HeaderMap, Response, StatusCode};

use crate::http::{self, Resp};

/// How long browsers may keep the script, the style sheet and the absence
/// of a favicon.
const STATIC_CACHE: &str = "public, max-age=86400";

/// A static file and its gzip form.
#[derive(Debug)]
pub struct Asset {
    body: &'static [u8],
    gzip: &'static [u8],
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static [u8], gzip: &'static [u8], content_type: &'static str) -> Asset {
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        let etag = format!("\"{}\"", hex::encode(&digest.as_ref()[..12]));
        Asset {
            body,
            gzip,
            content_type,
            etag,
        }
    }
}

/// `/static/form.js`.
pub static FORM_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../../clients/web/dist/form.js"),
        include_bytes!("../../../clients/web/dist/form.js.gz"),
        "text/javascript; charset=utf-8",
    )
});

/// `/static/form.css`.
pub static FORM_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../../clients/web/dist/form.css"),
        include_bytes!("../../../clients/web/dist/form.css.gz"),
        "text/css; charset=utf-8",
    )
});

/// The asset for a request: 304 if the browser has this version, else the
/// gzip form if accepted, else the plain one.
pub fn serve(headers: &HeaderMap, asset: &Asset) -> Resp {
    let not_modified = http::header(headers, IF_NONE_MATCH).is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == asset.etag)
    });
    let gzip = accepts_gzip(http::header(headers, ACCEPT_ENCODING).unwrap_or(""));
    let mut resp = if not_modified {
        http::empty(StatusCode::NOT_MODIFIED)
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
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(ETAG, v);
    }
    resp
}

/// `/favicon.ico`: there is none; let browsers stop asking for a day.
pub fn favicon() -> Resp {
    let mut resp = http::empty(StatusCode::NOT_FOUND);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(STATIC_CACHE));
    resp
}

/// Whether `Accept-Encoding` allows gzip (an explicit `q=0` refuses it).
fn accepts_gzip(accept: &str) -> bool {
    accept.split(',').take(32).any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1000), http::parse_q);
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
            && q.is_some_and(|q| q > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_the_quoted_start_of_the_sha256() {
        let a = Asset::new(b"abc", b"", "text/plain");
        assert_eq!(a.etag, "\"ba7816bf8f01cfea414140de\"");
        for asset in [&*FORM_JS, &*FORM_CSS] {
            assert_eq!(asset.etag.len(), 26);
        }
    }

    #[test]
    fn gzip_unless_refused() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("identity"));
    }
}
