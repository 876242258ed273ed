//! The public edge under abuse: a form posted by another site is refused
//! and stores nothing, while the gateway's own form (and browsers that
//! send no fetch metadata) keep working; /metrics is never left open behind
//! a proxy; the receipt answers have one size whatever the code says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hotline_e2e::*;
use hotline_gateway::config::{LoopbackAddr, Sha256Hex};
use hyper::Method;

const FORM: &str = "category=grooming&description=posted+from+somewhere&lang=en";

async fn post_form(t: &hotline_https::Transport, headers: &[(&str, &str)]) -> (u16, String) {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    let a = t
        .send(Method::POST, "/report", &all, FORM.as_bytes().to_vec())
        .await
        .unwrap();
    (
        a.status.as_u16(),
        String::from_utf8_lossy(&a.body).into_owned(),
    )
}

#[test]
fn a_form_posted_by_another_site_is_refused_and_nothing_is_stored() {
    let mut gw = Gateway::with_engine("redb").in_process();
    gw.start();
    let own = format!("https://127.0.0.1:{}", gw.addr.unwrap().port());
    runtime().block_on(async {
        let t = gw.transport();
        let stored = |t: hotline_https::Transport, token: String| async move {
            staff_list_all(&t, &token).await.reports.len()
        };
        for headers in [
            &[("sec-fetch-site", "cross-site")][..],
            &[("sec-fetch-site", "same-site")],
            &[("origin", "https://evil.example")],
            &[("origin", "null")],
            &[("origin", own.as_str()), ("sec-fetch-site", "cross-site")],
        ] {
            let (status, page) = post_form(&t, headers).await;
            assert_eq!(status, 403, "{headers:?}");
            assert!(
                page.contains("<html lang=\"en\""),
                "a page in the form's style"
            );
            assert!(
                page.contains("sent from another website"),
                "a clear message: {page}"
            );
            assert_eq!(stored(t.clone(), gw.staff_token()).await, 0, "{headers:?}");
        }
        assert_eq!(
            metric(&t, "hotline_rejections_total{reason=\"cross_site\"}").await,
            5.0
        );
        // The French page for a French browser.
        let (status, page) = post_form(
            &t,
            &[("sec-fetch-site", "cross-site"), ("accept-language", "fr")],
        )
        .await;
        assert_eq!(status, 403);
        assert!(page.contains("depuis un autre site web"), "{page}");

        // The gateway's own form, and a browser that says nothing.
        let (status, _) = post_form(
            &t,
            &[("sec-fetch-site", "same-origin"), ("origin", own.as_str())],
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = post_form(&t, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(stored(t.clone(), gw.staff_token()).await, 2);
    });
}

/// A config that listens in plain HTTP for a proxy, with no /metrics token.
fn plain_without_metrics_token(gw: &mut Gateway) {
    let plain = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    gw.config.listen.plain = Some(LoopbackAddr::try_from(plain).unwrap());
    gw.config.metrics.token_sha256 = None;
}

#[test]
fn a_plain_listener_without_a_metrics_token_is_refused_by_check_config_and_at_start() {
    let mut gw = Gateway::with_engine("redb");
    plain_without_metrics_token(&mut gw);
    let config_file = gw.path("config.toml");
    std::fs::write(&config_file, toml::to_string(&gw.config).unwrap()).unwrap();
    let out = std::process::Command::new(bin("hotline-gateway"))
        .args(["check-config", "--config"])
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("1 problem(s)")
            && text.contains("listen.plain is set but metrics.token_sha256 is not"),
        "{text}"
    );
    // The daemon does not start with it either (the library's bind, which
    // `run` calls).
    let bound = runtime().block_on(hotline_gateway::Gateway::bind(gw.config.clone()));
    let err = bound.err().expect("bind refuses the config").to_string();
    assert!(err.contains("metrics.token_sha256"), "{err}");
    // With a token, both accept it.
    gw.config.metrics.token_sha256 = Some(Sha256Hex([7; 32]));
    std::fs::write(&config_file, toml::to_string(&gw.config).unwrap()).unwrap();
    let out = std::process::Command::new(bin("hotline-gateway"))
        .args(["check-config", "--config"])
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
