//! The dashboard's page: `GET /` (`index.html`), `GET /app.js` and
//! `GET /style.css`, embedded in the binary from `assets/` (plain HTML, CSS
//! and JavaScript; no framework, nothing fetched from elsewhere: the
//! machines are offline).
//!
//! Every answer carries a strict Content-Security-Policy (only this origin;
//! no inline script or style; no framing), `X-Content-Type-Options:
//! nosniff`, `Referrer-Policy: no-referrer` and `Cache-Control: no-store`
//! (an ops screen should never show a stale build). The script inserts data
//! with `textContent` only, never as HTML; a test keeps it that way.
//! The page uses the API of `docs/dashboard-api.md` and nothing else.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The Content-Security-Policy of every page answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page's routes (no state needed).
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    async fn get(path: &str) -> Response {
        routes::<()>()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_the_security_headers() {
        for (path, content_type, body) in [
            ("/", "text/html; charset=utf-8", INDEX_HTML),
            ("/app.js", "text/javascript; charset=utf-8", APP_JS),
            ("/style.css", "text/css; charset=utf-8", STYLE_CSS),
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.starts_with("default-src 'self';"), "{csp}");
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe"), "{csp}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            assert_eq!(bytes, body.as_bytes(), "{path}");
        }
        assert_eq!(get("/nothing.js").await.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = INDEX_HTML.to_lowercase();
        for (at, _) in html.match_indices("<script") {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            assert!(tag.contains(" src="), "inline script: {tag}");
        }
        assert!(!html.contains(" style="), "inline style attribute");
        assert!(!html.contains("<style"), "inline style element");
        for handler in [
            " onclick=",
            " onload=",
            " onsubmit=",
            " onerror=",
            "javascript:",
        ] {
            assert!(!html.contains(handler), "inline handler {handler}");
        }
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing from elsewhere"
        );
    }

    #[test]
    fn the_script_never_parses_data_as_html() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
        assert!(!APP_JS.contains("http://") && !APP_JS.contains("https://"));
    }

    #[test]
    fn the_script_uses_the_documented_api() {
        for path in [
            "\"/api/login\"",
            "\"/api/logout\"",
            "\"/api/me\"",
            "\"/api/overview\"",
            "new EventSource(\"/api/stream\")",
            "`/api/trace${",
            "`/api/trace/${encodeURIComponent(",
            "`/api/dead-letters${",
            "\"/api/dead-letters/replay\"",
            "\"/api/dead-letters/discard\"",
            "\"/api/access-log?limit=100\"",
            "`/api/emergency-access${",
            "\"/api/emergency-access/close\"",
        ] {
            assert!(APP_JS.contains(path), "app.js does not use {path}");
        }
    }

    /// The `data-testid`s the browser test (integration-tests/browser)
    /// relies on.
    const TEST_IDS: &[&str] = &[
        "login-username",
        "login-password",
        "login-submit",
        "login-error",
        "whoami",
        "logout",
        "live-status",
        "registry-banner",
        "total-received",
        "total-routed",
        "total-denied",
        "total-rejected",
        "total-dead-letters",
        "exchange-row",
        "flow-cell",
        "flow-row",
        "adapter-row",
        "adapter-status",
        "queue-row",
        "trace-message-id",
        "trace-nhs-number",
        "trace-org",
        "trace-category",
        "trace-from",
        "trace-to",
        "trace-search",
        "trace-message",
        "trace-result",
        "trace-open",
        "trace-patient",
        "timeline",
        "timeline-row",
        "timeline-stage",
        "dead-letters-refresh",
        "dead-letter-row",
        "dead-letter-checkbox",
        "dead-letter-actions",
        "dry-run-checkbox",
        "replay-button",
        "discard-button",
        "replay-results",
        "replay-result",
        "replay-outcome",
    ];

    #[test]
    fn every_test_id_the_browser_test_uses_exists() {
        for id in TEST_IDS {
            let in_html = INDEX_HTML.contains(&format!("data-testid=\"{id}\""));
            let in_js = APP_JS.contains(&format!("\"data-testid\": \"{id}\""));
            assert!(in_html || in_js, "data-testid {id} is gone");
        }
    }
}
