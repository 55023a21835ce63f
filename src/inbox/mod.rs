//! The inbox: the web app people use to see what their agents are doing and to answer them,
//! served by the same binary with everything embedded (no CDN, no build step).
//!
//! Pages are rendered on the server (`views`, maud) and read the same read models as REST;
//! replies and "end session" go through the REST API (`/api/v1/messages/user`,
//! `/api/v1/sessions/end`) with the session cookie, so they run the same commands as every other
//! client. A page stays current by listening to the tenant's event stream (`/api/v1/stream`) and
//! fetching server-rendered fragments when something changed: agent text only ever reaches the
//! browser as HTML escaped here (`markdown`), never through script-built markup.
//!
//! The settings page (`settings`) is where a person manages notification channels, sees which
//! deliveries failed, and turns on web push for the device they are on; the service worker
//! (`assets/sw.js`) shows those pushes.
//!
//! Sign-in (`sign_in`) makes a web session, a server-side record behind an HttpOnly,
//! SameSite=Strict cookie. Every inbox response carries a Content-Security-Policy without inline
//! scripts, denies framing and sniffing, and is gzip-compressed.

mod answer;
mod assets;
mod connect;
mod decisions;
mod markdown;
mod pages;
mod read;
mod settings;
mod sign_in;
mod views;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

/// The path of a session's page (relative to the public URL): what notification links and the
/// inbox agree on.
pub fn session_path(session_id: uuid::Uuid) -> String {
    format!("sessions/{session_id}")
}

/// Scripts, styles, images and connections only from this server; no frames, no plugins.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; \
     worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The inbox's routes. `/` is the inbox for browsers and `service_info` for everything else
/// (clients that ask for JSON keep getting the service description).
pub fn routes(service_info: fn() -> Response) -> Router<AppState> {
    let secure = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    Router::new()
        .route(
            "/",
            get(move |state, headers, query| pages::home(state, headers, query, service_info)),
        )
        .route("/sessions/{session_id}", get(pages::session))
        .route("/inbox/list", get(pages::list_fragment))
        .route("/inbox/sessions/{session_id}", get(pages::session_fragment))
        .route("/inbox/waiting", get(pages::waiting))
        .route("/settings", get(settings::show))
        .route("/inbox/settings", get(settings::fragment))
        .route("/login", get(sign_in::page).post(sign_in::with_key))
        .route(
            "/login/{token}",
            get(sign_in::link_page).post(sign_in::with_link),
        )
        .route(
            "/answer/{capability}",
            get(answer::confirm).post(answer::give),
        )
        .route("/authorize", get(connect::show).post(connect::answer))
        .route("/logout", post(sign_in::sign_out))
        .route("/logout/everywhere", post(sign_in::sign_out_everywhere))
        .route("/sw.js", get(assets::service_worker))
        .route("/manifest.webmanifest", get(assets::manifest))
        .route("/assets/{file}", get(assets::file))
        .layer(secure(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(secure(header::X_FRAME_OPTIONS, "DENY"))
        .layer(secure(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Same-origin requests keep their Referer (and POSTs their Origin): both are what the
        // CSRF check reads. Nothing leaves for other sites, sign-in link tokens included.
        .layer(secure(header::REFERRER_POLICY, "same-origin"))
        .layer(CompressionLayer::new().gzip(true))
}
