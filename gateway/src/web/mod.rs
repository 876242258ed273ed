//! The public web form (clients/web), rendered and served by the gateway.
//!
//! Everything is embedded at compile time, so the binary is self-contained:
//! the templates, the bundled script and style sheet (with their gzip forms,
//! made by `clients/web/build.sh`) and every `clients/web/i18n/*.json`
//! (read by `build.rs`, so a new language is one more file).
//!
//! The handlers below are the web form's entries in `routes::ROUTES`; each
//! job has its module: [`assets`], [`templates`], [`i18n`], [`lang`],
//! [`nojs`] and [`pages`]. Nothing here logs or stores what a reporter
//! wrote or where they came from.

mod assets;
mod i18n;
mod lang;
mod nojs;
mod pages;
mod templates;

#[doc(hidden)]
pub use nojs::report_from_form;

use hyper::body::Incoming;
use hyper::header::ACCEPT_LANGUAGE;
use hyper::Request;

use crate::app::{App, Peer};
use crate::http::{self, Resp};

/// `GET /`: the form, in the language of `?lang=`, else of
/// `Accept-Language`, else English.
pub fn form(app: &App, req: &Request<Incoming>) -> Resp {
    pages::form_page(app, request_lang(req))
}

/// `GET /check[?code=…]`: the receipt check for people.
pub async fn check(app: &App, req: &Request<Incoming>, peer: Peer) -> Resp {
    let code = req.uri().query().and_then(|q| http::query_param(q, "code"));
    pages::check_page(app, request_lang(req), code, peer).await
}

/// `POST /report`: the no-JS submission, sealed by the gateway.
pub async fn report(app: &App, req: Request<Incoming>, peer: Peer) -> Resp {
    nojs::post_report(app, req, peer).await
}

/// `GET /report`: a reload of the receipt page, or a bookmark.
pub fn report_reload() -> Resp {
    pages::redirect_home()
}

/// `GET /static/form.js`.
pub fn form_js(req: &Request<Incoming>) -> Resp {
    assets::serve(req.headers(), &assets::FORM_JS)
}

/// `GET /static/form.css`.
pub fn form_css(req: &Request<Incoming>) -> Resp {
    assets::serve(req.headers(), &assets::FORM_CSS)
}

/// `/favicon.ico`: there is none.
pub fn favicon() -> Resp {
    assets::favicon()
}

/// The language a page is shown in.
fn request_lang(req: &Request<Incoming>) -> &'static i18n::Lang {
    lang::choose_lang(
        req.uri().query(),
        http::header(req.headers(), ACCEPT_LANGUAGE),
    )
}
