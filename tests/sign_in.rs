//! People's sign-in over plain HTTP: one-time links, pasted API keys, the session cookie and
//! what it may do (the REST API, CSRF-checked writes), sign-out, revocation on every node, the
//! inbox's security headers, compression and size, and `/` for browsers and for clients.

mod common;

use std::time::Duration;

use common::{ServerProcess, TestApp};
use futures::StreamExt;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use switchboard::app::{Config, PublicUrl};
use switchboard::auth::{api_keys, web_sessions};
use switchboard::commands::Scope;
use uuid::Uuid;

/// `application/x-www-form-urlencoded`, as a browser sends a form.
fn form<V: AsRef<str>>(fields: &[(&str, V)]) -> String {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        body.append_pair(name, value.as_ref());
    }
    body.finish()
}

/// A client that shows redirects instead of following them, and keeps no cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn new_link(app: &TestApp, tenant: Uuid) -> String {
    let link = web_sessions::create_link(&app.db.pool, tenant, 15)
        .await
        .unwrap();
    link.token
}

/// The `Set-Cookie` header of a response.
fn set_cookie(headers: &HeaderMap) -> String {
    headers
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `name=value` of a `Set-Cookie` header, as a browser sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Sign in with a fresh link for the test tenant; the `Cookie` header to send.
async fn signed_in(app: &TestApp) -> String {
    let token = new_link(app, app.tenant).await;
    let response = browser()
        .post(app.url(&format!("/login/{token}")))
        .header("Origin", app.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    cookie_pair(&set_cookie(response.headers()))
}

async fn events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// A session of the test tenant with one question in it.
async fn question(app: &TestApp) -> Uuid {
    let session = Uuid::new_v4();
    let response = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "claude-code",
                    "content": "Ship it?", "requires_user_input": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    session
}

#[tokio::test]
async fn the_root_is_the_inbox_for_browsers_and_the_service_description_for_clients() {
    let app = TestApp::spawn().await;
    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut request = browser().get(app.url("/"));
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let info: Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(info["message"], "Switchboard", "{accept:?}");
    }
    let page = browser()
        .get(app.url("/"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    let cookie = signed_in(&app).await;
    let page = browser()
        .get(app.url("/"))
        .header("Accept", "text/html")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<h1>Inbox</h1>"));
}

#[tokio::test]
async fn a_link_is_used_only_by_a_post_from_the_inbox_and_only_once() {
    let app = TestApp::spawn().await;
    let token = new_link(&app, app.tenant).await;
    let url = app.url(&format!("/login/{token}"));
    // Looking at it (a link preview) changes nothing.
    for _ in 0..2 {
        let page = browser().get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers().get(SET_COOKIE).is_none());
        assert!(page.text().await.unwrap().contains("id=\"link-sign-in\""));
    }
    // A POST from another site (or that hides where it comes from) is refused.
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let mut request = browser().post(&url);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{origin:?}");
        assert!(response.headers().get(SET_COOKIE).is_none());
    }
    let response = browser()
        .post(&url)
        .header("Origin", app.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    let cookie = set_cookie(response.headers());
    assert!(cookie.starts_with("switchboard_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // Used: never again, by anyone.
    let again = browser()
        .post(&url)
        .header("Origin", app.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);
    assert!(again.headers().get(SET_COOKIE).is_none());
    assert!(again.text().await.unwrap().contains("used already"));
    let looked = browser().get(&url).send().await.unwrap();
    assert_eq!(looked.status(), 410);
}

#[tokio::test]
async fn of_many_concurrent_uses_of_a_link_exactly_one_signs_in() {
    let app = TestApp::spawn().await;
    let token = new_link(&app, app.tenant).await;
    let url = app.url(&format!("/login/{token}"));
    let uses = (0..8).map(|_| browser().post(&url).header("Origin", app.url("")).send());
    let statuses: Vec<u16> = futures::future::join_all(uses)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 410).count(),
        7,
        "{statuses:?}"
    );
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM web_sessions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure_and_host_prefixed() {
    let app = TestApp::spawn_with(Config {
        public_url: PublicUrl::parse("https://inbox.example.com/").unwrap(),
        ..Config::default()
    })
    .await;
    let token = new_link(&app, app.tenant).await;
    let response = browser()
        .post(app.url(&format!("/login/{token}")))
        .header("Origin", "https://inbox.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = set_cookie(response.headers());
    assert!(
        cookie.starts_with("__Host-switchboard_session="),
        "{cookie}"
    );
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
}

#[tokio::test]
async fn the_cookie_opens_the_rest_api_and_its_writes_must_come_from_the_inbox() {
    let app = TestApp::spawn().await;
    let session = question(&app).await;
    let cookie = signed_in(&app).await;
    let listed = browser()
        .get(app.url("/api/v1/sessions"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed[0]["id"], session.to_string());

    let reply = |origin: Option<(&'static str, String)>| {
        let mut request = browser()
            .post(app.url("/api/v1/messages/user"))
            .header("Cookie", &cookie)
            .json(&json!({"agent_instance_id": session, "content": "yes", "mark_as_read": false}));
        if let Some((name, value)) = origin {
            request = request.header(name, value);
        }
        request.send()
    };
    let before = events(&app).await;
    for origin in [
        None,
        Some(("Origin", "https://evil.example".to_owned())),
        Some(("Origin", "null".to_owned())),
        Some(("Referer", "https://evil.example/page".to_owned())),
        Some(("Origin", format!("{}.evil.example", app.url("")))),
    ] {
        let response = reply(origin.clone()).await.unwrap();
        assert_eq!(response.status(), 403, "{origin:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("inbox"), "{body}");
    }
    assert_eq!(
        events(&app).await,
        before,
        "a refused write appended something"
    );

    // From the inbox: Origin, or without one the Referer, is this server.
    let sent = reply(Some(("Origin", app.url("")))).await.unwrap();
    assert_eq!(sent.status(), 200);
    let sent = reply(Some(("Referer", app.url("/sessions/x"))))
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let recorded: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT metadata->>'web_session' FROM events WHERE event_type = 'user_message'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(Option::is_some), "{recorded:?}");

    // The Bearer API is unchanged: no Origin needed, and nothing about web sessions recorded.
    let bearer = app
        .post(
            "/api/v1/messages/user",
            &json!({"agent_instance_id": session, "content": "from a script"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let metadata: String = sqlx::query_scalar(
        "SELECT metadata::text FROM events WHERE event_type = 'user_message' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(!metadata.contains("web_session"), "{metadata}");
}

#[tokio::test]
async fn forged_and_malformed_cookies_are_refused() {
    let app = TestApp::spawn().await;
    let good = signed_in(&app).await;
    let (id, _) = good
        .trim_start_matches("switchboard_session=")
        .split_once('.')
        .unwrap();
    for cookie in [
        format!("switchboard_session={id}.wrong-secret"),
        format!("switchboard_session={}.x", Uuid::new_v4().simple()),
        "switchboard_session=garbage".to_owned(),
        "switchboard_session=\u{1F600}".to_owned(),
        "other=1".to_owned(),
    ] {
        let response = browser()
            .get(app.url("/api/v1/auth/verify"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{cookie}");
        let page = browser()
            .get(app.url("/"))
            .header("Accept", "text/html")
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 303, "{cookie}");
        let fragment = browser()
            .get(app.url("/inbox/list"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(fragment.status(), 401, "{cookie}");
    }
}

#[tokio::test]
async fn an_agent_key_can_be_pasted_to_sign_in_and_other_keys_cannot() {
    let app = TestApp::spawn().await;
    let paste = |key: String| {
        browser()
            .post(app.url("/login"))
            .header("Origin", app.url(""))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[("api_key", key.as_str()), ("next", "")]))
            .send()
    };
    let response = paste(app.token.clone()).await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = cookie_pair(&set_cookie(response.headers()));
    let verify = browser()
        .get(app.url("/api/v1/auth/verify"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    let verify: Value = verify.json().await.unwrap();
    assert_eq!(verify["user_id"], app.tenant.to_string());

    let audit = app.key(app.tenant, Scope::Audit).await;
    let (revoked_key, revoked) = api_keys::create(
        &app.db.pool,
        &app.keys,
        app.tenant,
        "gone",
        Scope::Agent,
        None,
    )
    .await
    .unwrap();
    api_keys::revoke(&app.db.pool, revoked_key.id)
        .await
        .unwrap();
    let session_token = app
        .keys
        .sign(&json!({"sub": app.tenant, "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 600}))
        .unwrap();
    for (key, status) in [
        (audit, 403),
        (revoked, 401),
        ("not a key".to_owned(), 401),
        (String::new(), 400),
        (session_token, 401),
        ("a\0b".to_owned(), 401),
    ] {
        let response = paste(key.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{key:?}");
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert!(response.text().await.unwrap().contains("role=\"alert\""));
    }
    // Not a form at all, or far too big: a clear refusal, never a server error.
    let odd = browser()
        .post(app.url("/login"))
        .header("Origin", app.url(""))
        .header("Content-Type", "application/json")
        .body("{\"api_key\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status(), 400);
    let huge = browser()
        .post(app.url("/login"))
        .header("Origin", app.url(""))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("api_key", "x".repeat(3 * 1024 * 1024))]))
        .send()
        .await
        .unwrap();
    assert!(huge.status().is_client_error(), "{}", huge.status());
    let foreign = browser()
        .post(app.url("/login"))
        .header("Origin", "https://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("api_key", app.token.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(foreign.headers().get(SET_COOKIE).is_none());
}

/// Whether the event stream at `url` with `cookie` ends within a few seconds.
async fn stream_ends(
    client: &reqwest::Client,
    url: String,
    cookie: &str,
) -> impl Future<Output = bool> {
    let response = client
        .get(url)
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    async move {
        let drained = async { while let Some(Ok(_)) = body.next().await {} };
        tokio::time::timeout(Duration::from_secs(5), drained)
            .await
            .is_ok()
    }
}

#[tokio::test]
async fn revoking_the_pasted_key_or_signing_out_everywhere_ends_sessions_and_streams_on_every_node()
{
    let app = TestApp::spawn().await;
    let node = ServerProcess::start(&app.db).await;
    let (key, token) = api_keys::create(
        &app.db.pool,
        &app.keys,
        app.tenant,
        "pasted",
        Scope::Agent,
        None,
    )
    .await
    .unwrap();
    let pasted = browser()
        .post(node.url("/login"))
        .header("Origin", node.url(""))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("api_key", token.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(pasted.status(), 303);
    let pasted = cookie_pair(&set_cookie(pasted.headers()));
    let linked = signed_in(&app).await;
    let client = reqwest::Client::new();
    // Both open the tenant stream on the other node; both work there.
    let pasted_stream = stream_ends(&client, node.url("/api/v1/stream"), &pasted).await;
    let linked_stream = stream_ends(&client, node.url("/api/v1/stream"), &linked).await;

    let revoked = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["keys", "revoke", &key.id.to_string()])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        pasted_stream.await,
        "the pasted key's stream outlived the key"
    );
    for url in [
        app.url("/api/v1/auth/verify"),
        node.url("/api/v1/auth/verify"),
    ] {
        let status = client
            .get(url)
            .header("Cookie", &pasted)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    // The link's session is not the key's: it goes on until the person signs out everywhere.
    let status = client
        .get(node.url("/api/v1/auth/verify"))
        .header("Cookie", &linked)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let out = browser()
        .post(app.url("/logout/everywhere"))
        .header("Origin", app.url(""))
        .header("Cookie", &linked)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(set_cookie(out.headers()).contains("Max-Age=0"));
    assert!(
        linked_stream.await,
        "the stream outlived sign-out everywhere"
    );
    let status = client
        .get(node.url("/api/v1/auth/verify"))
        .header("Cookie", &linked)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    assert!(node.terminate().success());
}

#[tokio::test]
async fn sign_out_everywhere_ends_only_the_own_tenants_sessions() {
    let app = TestApp::spawn().await;
    let mine = signed_in(&app).await;
    let other = Uuid::new_v4();
    let token = new_link(&app, other).await;
    let theirs = browser()
        .post(app.url(&format!("/login/{token}")))
        .header("Origin", app.url(""))
        .send()
        .await
        .unwrap();
    let theirs = cookie_pair(&set_cookie(theirs.headers()));
    let out = browser()
        .post(app.url("/logout/everywhere"))
        .header("Origin", app.url(""))
        .header("Cookie", &mine)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let verify = |cookie: String| {
        browser()
            .get(app.url("/api/v1/auth/verify"))
            .header("Cookie", cookie)
            .send()
    };
    assert_eq!(verify(mine).await.unwrap().status(), 401);
    assert_eq!(verify(theirs).await.unwrap().status(), 200);
}

#[tokio::test]
async fn inbox_pages_carry_security_headers_and_are_compressed_and_small() {
    let app = TestApp::spawn().await;
    let session = question(&app).await;
    let cookie = signed_in(&app).await;
    let gzip = |path: String| {
        browser()
            .get(app.url(&path))
            .header("Accept", "text/html")
            .header("Accept-Encoding", "gzip")
            .header("Cookie", &cookie)
            .send()
    };
    let page = gzip("/".into()).await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["cache-control"], "no-store");
    let body = page.bytes().await.unwrap();
    assert_eq!(body[..2], [0x1f, 0x8b], "a gzip stream");

    // What a first visit loads: the page and every file it links, compressed.
    let plain = browser()
        .get(app.url("/"))
        .header("Accept", "text/html")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !plain.contains("<script>") && !plain.contains(" style="),
        "inline script or style"
    );
    let mut total = 0;
    let mut linked: Vec<String> = plain
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/") || *s == "/manifest.webmanifest")
        .map(str::to_owned)
        .collect();
    linked.push("/sw.js".into());
    linked.push("/".into());
    linked.dedup();
    for path in &linked {
        let response = gzip(path.replace("&amp;", "&")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        total += response.bytes().await.unwrap().len();
    }
    assert!(linked.iter().any(|p| p.contains("inbox.js")), "{linked:?}");
    assert!(total <= 150_000, "first load {total} bytes: {linked:?}");

    let session_page = gzip(format!("/sessions/{session}")).await.unwrap();
    assert_eq!(session_page.status(), 200);
    assert_eq!(session_page.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn fragments_answer_only_the_signed_in_tenant_and_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let mine = question(&app).await;
    let cookie = signed_in(&app).await;
    let other = Uuid::new_v4();
    let theirs = Uuid::new_v4();
    let other_key = app.key(other, Scope::Agent).await;
    app.client
        .post(app.url("/api/v1/messages/agent"))
        .bearer_auth(other_key)
        .json(&json!({"agent_instance_id": theirs, "agent_type": "x", "content": "secret"}))
        .send()
        .await
        .unwrap();
    let get = |path: String| {
        browser()
            .get(app.url(&path))
            .header("Cookie", &cookie)
            .send()
    };
    let update = get(format!("/inbox/sessions/{mine}?after=0"))
        .await
        .unwrap();
    assert_eq!(update.status(), 200);
    assert!(update.text().await.unwrap().contains("Ship it?"));
    for (path, status) in [
        (format!("/inbox/sessions/{theirs}?after=0"), 404),
        (format!("/inbox/sessions/{}?after=0", Uuid::new_v4()), 404),
        (format!("/inbox/sessions/{mine}?after=-1"), 422),
        (format!("/inbox/sessions/{mine}?after=x"), 422),
        ("/inbox/sessions/not-a-uuid".to_owned(), 404),
        (format!("/sessions/{theirs}"), 404),
        ("/sessions/%00".to_owned(), 404),
        ("/login/%E2%80%AE%00".to_owned(), 404),
        ("/assets/..%2Fmod.rs".to_owned(), 404),
    ] {
        let response = get(path.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert!(!response.text().await.unwrap().contains("secret"), "{path}");
    }
    let waiting: Value = get("/inbox/waiting".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(waiting["waiting"], 1);
    let list = get("/inbox/list".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("Ship it?") && !list.contains("secret"));
}

#[tokio::test]
async fn the_cli_prints_a_link_that_signs_in_and_serve_prints_one_on_first_start() {
    let app = TestApp::spawn().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "login-link",
            "--user",
            &app.tenant.to_string(),
            "--minutes",
            "5",
        ])
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHBOARD_PUBLIC_URL", app.url("/"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let link = stdout.lines().last().unwrap();
    assert!(link.starts_with(&app.url("/login/")), "{stdout}");
    let used = browser()
        .post(link)
        .header("Origin", app.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 303);
    let expires: time::OffsetDateTime = sqlx::query_scalar("SELECT expires_at FROM login_links")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let minutes = (expires - time::OffsetDateTime::now_utc()).whole_minutes();
    assert!((3..=5).contains(&minutes), "{minutes}");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "login-link",
            "--user",
            &app.tenant.to_string(),
            "--minutes",
            "0",
        ])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let nobody = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["login-link", "--user", &Uuid::new_v4().to_string()])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user"));

    // A fresh install prints a first key and a link beside it.
    let fresh = common::database().await;
    let node = ServerProcess::start(&fresh).await;
    let banner = node.banner.join("\n");
    let link = banner
        .lines()
        .find(|l| l.contains("/login/"))
        .unwrap_or_else(|| panic!("no sign-in link in:\n{banner}"))
        .trim()
        .to_owned();
    let port = node.address.rsplit(':').next().unwrap();
    assert!(
        link.starts_with(&format!("http://localhost:{port}/login/")),
        "{link}"
    );
    let used = browser()
        .post(node.url(&format!("/login/{}", link.rsplit('/').next().unwrap())))
        .header("Origin", format!("http://localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 303);
    assert!(node.terminate().success());
}

#[tokio::test]
async fn the_openapi_document_describes_the_inbox_routes_and_the_cookie() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get_json("/openapi.json").await;
    for (path, method) in [
        ("/", "get"),
        ("/sessions/{session_id}", "get"),
        ("/login", "get"),
        ("/login", "post"),
        ("/login/{token}", "get"),
        ("/login/{token}", "post"),
        ("/logout", "post"),
        ("/logout/everywhere", "post"),
        ("/inbox/list", "get"),
        ("/inbox/sessions/{session_id}", "get"),
        ("/inbox/waiting", "get"),
        ("/sw.js", "get"),
        ("/manifest.webmanifest", "get"),
        ("/assets/{file}", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["inboxCookie"]["in"],
        "cookie"
    );
}
