//! The gateway's one route table: every path and method it answers, for the
//! API and the web form alike, with the handler and the metric label.
//! Dispatch, the 405 answers (with `Allow`) and 404 all come from
//! [`ROUTES`]; HEAD is answered wherever GET is, like GET without the body.
//!
//! To add a route: one line in [`ROUTES`], one [`Handler`] variant, one arm
//! in [`call`].

use std::sync::Arc;
use std::time::Instant;

use hotline_protocol::Reason;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request};

use crate::app::{App, Peer};
use crate::error::ApiError;
use crate::http::{self, Resp};
use crate::{api, staff, web};

/// The methods a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    /// GET, and HEAD answered like it without the body.
    Get,
    /// POST.
    Post,
    /// Any method (a fixed answer that does not depend on it).
    Any,
}

/// How a route matches the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPattern {
    /// This path exactly.
    Exact(&'static str),
    /// Any path that starts with this; the handler gets the rest.
    Prefix(&'static str),
}

/// What answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `api::healthz`.
    Healthz,
    /// `api::metrics`.
    Metrics,
    /// `api::key`.
    Key,
    /// `api::submit`.
    Submit,
    /// `api::receipt`, with the code from the path.
    Receipt,
    /// `staff::list`.
    StaffList,
    /// `staff::ack`.
    StaffAck,
    /// `staff::dead`.
    StaffDead,
    /// `web::form`.
    WebForm,
    /// `web::report`: the no-JS submission.
    WebReport,
    /// `web::report_reload`: a reload of the receipt page.
    WebReportReload,
    /// `web::check`.
    WebCheck,
    /// `web::check_post`: the receipt check with the code in the body.
    WebCheckPost,
    /// `web::form_js`.
    FormJs,
    /// `web::form_css`.
    FormCss,
    /// `web::favicon`.
    Favicon,
}

/// One line of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// The path it answers.
    pub path: PathPattern,
    /// The methods it answers there.
    pub methods: Methods,
    /// Its handler.
    pub handler: Handler,
    /// Its `route` label in `hotline_requests_total`.
    pub label: &'static str,
}

const fn route(
    path: PathPattern,
    methods: Methods,
    handler: Handler,
    label: &'static str,
) -> Route {
    Route {
        path,
        methods,
        handler,
        label,
    }
}

use Methods::{Any, Get, Post};
use PathPattern::{Exact, Prefix};

/// Every route of the gateway; no (path, method) twice (a unit test checks).
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    // Operations.
    route(Exact("/healthz"),             Get,  Handler::Healthz,         "healthz"),
    route(Exact("/metrics"),             Get,  Handler::Metrics,         "metrics"),
    // Protocol v1, public.
    route(Exact("/v1/key"),              Get,  Handler::Key,             "key"),
    route(Exact("/v1/reports"),          Post, Handler::Submit,          "reports"),
    route(Prefix("/v1/receipts/"),       Get,  Handler::Receipt,         "receipts"),
    // Protocol v1, staff.
    route(Exact("/v1/staff/reports"),    Get,  Handler::StaffList,       "staff_list"),
    route(Exact("/v1/staff/ack"),        Post, Handler::StaffAck,        "staff_ack"),
    route(Exact("/v1/staff/dead"),       Get,  Handler::StaffDead,       "staff_dead"),
    // The web form.
    route(Exact("/"),                    Get,  Handler::WebForm,         "web_form"),
    route(Exact("/report"),              Post, Handler::WebReport,       "web_report"),
    route(Exact("/report"),              Get,  Handler::WebReportReload, "web_report"),
    route(Exact("/check"),               Get,  Handler::WebCheck,        "web_check"),
    route(Exact("/check"),               Post, Handler::WebCheckPost,    "web_check"),
    route(Exact("/static/form.js"),      Get,  Handler::FormJs,          "web_static"),
    route(Exact("/static/form.css"),     Get,  Handler::FormCss,         "web_static"),
    route(Exact("/favicon.ico"),         Any,  Handler::Favicon,         "web_favicon"),
];

/// The label of requests refused for too many headers, before routing.
const LABEL_HEADERS: &str = "headers";
/// The label of a known path asked with a method it does not take.
const LABEL_METHOD: &str = "method";
/// The label of an unknown path.
const LABEL_OTHER: &str = "other";

/// What the table says about a request.
#[derive(Debug, PartialEq, Eq)]
enum Lookup<'p> {
    /// This route, and the rest of the path after a prefix.
    Found(&'static Route, &'p str),
    /// The path is known, the method is not: the `Allow` value.
    WrongMethod(String),
    /// No route has this path.
    NotFound,
}

impl PathPattern {
    /// The rest of `path` if it matches.
    fn matches(self, path: &str) -> Option<&str> {
        match self {
            Exact(p) => (path == p).then_some(""),
            Prefix(p) => path.strip_prefix(p),
        }
    }
}

impl Methods {
    fn allows(self, method: &Method) -> bool {
        match self {
            Get => *method == Method::GET || *method == Method::HEAD,
            Post => *method == Method::POST,
            Any => true,
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Get => &["GET", "HEAD"],
            Post => &["POST"],
            Any => &[],
        }
    }
}

fn lookup<'p>(method: &Method, path: &'p str) -> Lookup<'p> {
    let mut allow: Vec<&str> = Vec::new();
    for r in ROUTES {
        if let Some(rest) = r.path.matches(path) {
            if r.methods.allows(method) {
                return Lookup::Found(r, rest);
            }
            allow.extend(r.methods.names());
        }
    }
    if allow.is_empty() {
        Lookup::NotFound
    } else {
        Lookup::WrongMethod(allow.join(", "))
    }
}

/// Answers one request. Never fails: errors become error responses, counted
/// by reason, and every answer is counted by route label and status.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, peer: Peer) -> Resp {
    let started = Instant::now();
    let head = *req.method() == Method::HEAD;
    let mut allow = None;
    let (label, result) = if req.headers().len() > app.limits.max_headers {
        let e = ApiError::new(
            Reason::TooManyHeaders,
            format!("at most {} headers are accepted", app.limits.max_headers),
        );
        (LABEL_HEADERS, Err(e))
    } else {
        let path = req.uri().path().to_owned();
        match lookup(req.method(), &path) {
            Lookup::Found(route, rest) => (
                route.label,
                call(&app, route.handler, req, rest, peer).await,
            ),
            Lookup::WrongMethod(methods) => {
                allow = HeaderValue::from_str(&methods).ok();
                (LABEL_METHOD, Err(ApiError::method_not_allowed()))
            }
            Lookup::NotFound => (LABEL_OTHER, Err(ApiError::not_found())),
        }
    };
    let mut resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            app.metrics.rejected(e.reason);
            e.into_response()
        }
    };
    if let Some(allow) = allow {
        resp.headers_mut().insert(ALLOW, allow);
    }
    app.metrics.request(label, resp.status().as_u16());
    tracing::debug!(
        route = label,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    let resp = http::with_common_headers(resp);
    if head {
        http::without_body(resp)
    } else {
        resp
    }
}

/// Runs a route's handler; `rest` is the path after a prefix route's prefix.
async fn call(
    app: &App,
    handler: Handler,
    req: Request<Incoming>,
    rest: &str,
    peer: Peer,
) -> Result<Resp, ApiError> {
    match handler {
        Handler::Healthz => Ok(api::healthz()),
        Handler::Metrics => api::metrics(app, &req, peer),
        Handler::Key => Ok(api::key(app)),
        Handler::Submit => api::submit(app, req, peer).await,
        Handler::Receipt => api::receipt(app, rest, peer).await,
        Handler::StaffList => staff::list(app, &req).await,
        Handler::StaffAck => staff::ack(app, req).await,
        Handler::StaffDead => staff::dead(app, &req).await,
        Handler::WebForm => Ok(web::form(app, &req)),
        Handler::WebReport => Ok(web::report(app, req, peer).await),
        Handler::WebReportReload => Ok(web::report_reload()),
        Handler::WebCheck => Ok(web::check(app, &req, peer).await),
        Handler::WebCheckPost => Ok(web::check_post(app, req, peer).await),
        Handler::FormJs => Ok(web::form_js(&req)),
        Handler::FormCss => Ok(web::form_css(&req)),
        Handler::Favicon => Ok(web::favicon()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(method: Method, path: &str) -> Option<(Handler, &'static str, &str)> {
        match lookup(&method, path) {
            Lookup::Found(r, rest) => Some((r.handler, r.label, rest)),
            _ => None,
        }
    }

    #[test]
    fn no_path_and_method_is_listed_twice() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                let same_path = a.path == b.path;
                let overlap = a.methods == b.methods || a.methods == Any || b.methods == Any;
                assert!(!(same_path && overlap), "{a:?} and {b:?}");
                // A prefix must not hide an exact path of another route.
                if let Prefix(p) = a.path {
                    if let Exact(e) = b.path {
                        assert!(!e.starts_with(p), "{e} is under {p}");
                    }
                }
            }
        }
    }

    #[test]
    fn requests_find_their_handler_and_label() {
        assert_eq!(
            found(Method::GET, "/healthz"),
            Some((Handler::Healthz, "healthz", ""))
        );
        assert_eq!(
            found(Method::HEAD, "/v1/key"),
            Some((Handler::Key, "key", ""))
        );
        assert_eq!(
            found(Method::POST, "/v1/reports"),
            Some((Handler::Submit, "reports", ""))
        );
        assert_eq!(
            found(Method::GET, "/v1/receipts/HX7K-2M9Q"),
            Some((Handler::Receipt, "receipts", "HX7K-2M9Q"))
        );
        assert_eq!(
            found(Method::GET, "/v1/receipts/"),
            Some((Handler::Receipt, "receipts", ""))
        );
        assert_eq!(
            found(Method::GET, "/report"),
            Some((Handler::WebReportReload, "web_report", ""))
        );
        assert_eq!(
            found(Method::POST, "/report"),
            Some((Handler::WebReport, "web_report", ""))
        );
        assert_eq!(
            found(Method::HEAD, "/"),
            Some((Handler::WebForm, "web_form", ""))
        );
        assert_eq!(
            found(Method::DELETE, "/favicon.ico"),
            Some((Handler::Favicon, "web_favicon", ""))
        );
    }

    #[test]
    fn a_known_path_with_another_method_lists_the_allowed_ones() {
        let allow = |m: Method, p: &str| match lookup(&m, p) {
            Lookup::WrongMethod(a) => a,
            other => panic!("{m} {p}: {other:?}"),
        };
        assert_eq!(allow(Method::GET, "/v1/reports"), "POST");
        assert_eq!(allow(Method::POST, "/healthz"), "GET, HEAD");
        assert_eq!(allow(Method::PUT, "/report"), "POST, GET, HEAD");
        assert_eq!(allow(Method::DELETE, "/v1/receipts/x"), "GET, HEAD");
        assert_eq!(allow(Method::OPTIONS, "/"), "GET, HEAD");
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/v2/reports",
            "/v1/receipts",
            "/healthz/",
            "/static/other.js",
            "",
        ] {
            assert_eq!(lookup(&Method::GET, path), Lookup::NotFound, "{path}");
        }
    }
}
