//! The inbox's static files, embedded in the binary at build time (`assets/`). Pages link
//! them with a content hash in the query (`?v=`), so a browser may keep them for good and
//! still never runs an old script against a new page. The service worker and the manifest
//! keep fixed URLs (browsers look them up by URL) and are revalidated every time.

use std::sync::LazyLock;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::AppState;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "inbox.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/inbox.css"),
    },
    Asset {
        name: "inbox.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/inbox.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("assets/icon.svg"),
    },
    Asset {
        name: "icon-192.png",
        content_type: "image/png",
        bytes: include_bytes!("assets/icon-192.png"),
    },
    Asset {
        name: "icon-512.png",
        content_type: "image/png",
        bytes: include_bytes!("assets/icon-512.png"),
    },
];

const SERVICE_WORKER: &[u8] = include_bytes!("assets/sw.js");

/// A hash of every embedded file: changes whenever any of them does.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for file in FILES {
        hash.update(file.bytes);
    }
    hex::encode(&hash.finalize()[..6])
});

/// The URL (relative to the public URL) of an embedded file, with its version.
pub fn versioned(name: &str) -> String {
    format!("assets/{name}?v={}", *VERSION)
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    #[serde(default)]
    v: Option<String>,
}

/// `GET /assets/{file}`.
pub async fn file(
    Path(name): Path<String>,
    query: Result<Query<VersionQuery>, QueryRejection>,
) -> Response {
    let Some(asset) = FILES.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let current = query.is_ok_and(|Query(q)| q.v.as_deref() == Some(VERSION.as_str()));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}

/// `GET /sw.js`: the service worker, at the root so that it may serve the whole inbox.
pub async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SERVICE_WORKER,
    )
        .into_response()
}

/// `GET /manifest.webmanifest`: what a phone needs to add the inbox to its home screen.
pub async fn manifest(State(app): State<AppState>) -> Response {
    let base = app.config.public_url.path();
    let icon = |size: u32| {
        json!({
            "src": format!("{base}{}", versioned(&format!("icon-{size}.png"))),
            "sizes": format!("{size}x{size}"),
            "type": "image/png",
            "purpose": "any",
        })
    };
    let manifest = json!({
        "name": "Switchboard",
        "short_name": "Switchboard",
        "description": "Answer your agents' questions",
        "start_url": base,
        "scope": base,
        "display": "standalone",
        "background_color": "#f5f6fa",
        "theme_color": "#4338ca",
        "icons": [icon(192), icon(512)],
    });
    (
        [
            (header::CONTENT_TYPE, "application/manifest+json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        manifest.to_string(),
    )
        .into_response()
}
