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

/// `GET /check[?code=…]`: the receipt check for people. The page's form
/// posts the code (below); a code in the query (a link shared before the
/// form posted, a script) is still answered, but lands in the browser's
/// history, so the page never makes such links.
pub async fn check(app: &App, req: &Request<Incoming>, peer: Peer) -> Resp {
    let code = req.uri().query().and_then(|q| http::query_param(q, "code"));
    pages::check_page(app, request_lang(req), code, peer).await
}

/// The largest `POST /check` body: a code as people type it and a
/// language tag, with room to spare.
const CHECK_BODY_LIMIT: usize = 1024;

/// `POST /check`: the receipt check with the code in the form body, so it
/// never lands in the browser's history, a bookmark or a proxy's log.
pub async fn check_post(app: &App, req: Request<Incoming>, peer: Peer) -> Resp {
    let lang = request_lang(&req);
    if !http::media_type_is(req.headers(), "application/x-www-form-urlencoded") {
        let e = crate::error::ApiError::new(
            hotline_protocol::Reason::WrongMediaType,
            "send the form as application/x-www-form-urlencoded",
        );
        return pages::error_page(app, lang, &e, "msg_rejected");
    }
    let body = match http::read_body(req, CHECK_BODY_LIMIT, app.limits.body_timeout).await {
        Ok(body) => body,
        Err(e) => return pages::error_page(app, lang, &e, pages::msg_for(&e)),
    };
    let form = std::str::from_utf8(&body).unwrap_or("");
    let lang = http::query_param(form, "lang")
        .and_then(|l| lang::find_lang(&l))
        .unwrap_or(lang);
    let code = http::query_param(form, "code");
    pages::check_page(app, lang, code, peer).await
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
