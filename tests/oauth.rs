//! Switchboard as the OAuth authorization server of its MCP endpoint, over real HTTP: the
//! metadata a client discovers from the 401, registration, the consent form a signed-in person
//! answers, the token endpoint's grants, and every misuse the RFCs name refused with nothing
//! issued. A revoked app's token is refused on every node (a second server process). The
//! official TypeScript client's own flow, with the consent page in Chromium, is in
//! `tests/inbox.rs`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ServerProcess, TestApp};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard::app::Config;
use uuid::Uuid;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Form bodies (the reqwest of the tests has no form feature).
trait WithForm {
    fn with_form<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl WithForm for reqwest::RequestBuilder {
    fn with_form<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A test app whose public URL is its own address, with a user account for its tenant.
async fn app() -> TestApp {
    let app = TestApp::spawn_public(Config::default()).await;
    common::create_user(&app.log, app.tenant).await;
    app
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The inbox cookie of the test tenant (signed in with its key).
async fn cookie(app: &TestApp) -> String {
    let response = browser()
        .post(app.url("/login"))
        .header("Origin", app.address.as_str())
        .with_form(&[("api_key", app.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set = response.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn register(app: &TestApp, redirect_uris: Value) -> reqwest::Response {
    app.client
        .post(app.url("/register"))
        .json(&json!({ "client_name": "Test host", "redirect_uris": redirect_uris }))
        .send()
        .await
        .unwrap()
}

async fn client_id(app: &TestApp) -> String {
    let response = register(app, json!([REDIRECT])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_endpoint_auth_method"], "none");
    body["client_id"].as_str().unwrap().to_owned()
}

/// A well-formed authorization request of `client`, with `changes` applied (`None` drops).
fn request(app: &TestApp, client: &str, changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let challenge = challenge(VERIFIER);
    let resource = app.url("/mcp");
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("state", "st-1"),
        ("scope", "agent"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", resource.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        if let Some(value) = value {
            params.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    params
}

fn query(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// GET /authorize as the signed-in person.
async fn show(app: &TestApp, cookie: &str, params: &[(String, String)]) -> reqwest::Response {
    browser()
        .get(app.url(&format!("/authorize?{}", query(params))))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The person answers the consent form; where the browser is sent.
async fn decide(
    app: &TestApp,
    cookie: &str,
    params: &[(String, String)],
    decision: &str,
) -> url::Url {
    let mut form = params.to_vec();
    form.push(("decision".into(), decision.into()));
    let response = browser()
        .post(app.url("/authorize"))
        .header("Cookie", cookie)
        .header("Origin", app.address.as_str())
        .with_form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A fresh code for `client`, allowed by the person.
async fn code(app: &TestApp, cookie: &str, client: &str) -> String {
    let to = decide(app, cookie, &request(app, client, &[]), "allow").await;
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&to, "iss").as_deref(), Some(app.address.as_str()));
    param(&to, "code").expect("a code")
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/token"))
        .with_form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

async fn exchange(app: &TestApp, client: &str, code: &str, verifier: &str) -> (StatusCode, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("resource", &app.url("/mcp")),
        ],
    )
    .await
}

/// Connect `client` all the way: the tokens.
async fn connect(app: &TestApp, cookie: &str, client: &str) -> Value {
    let code = code(app, cookie, client).await;
    let (status, tokens) = exchange(app, client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

/// `initialize` at `/mcp` of `base` with `token`: the status.
async fn mcp(base: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": { "name": "oauth-test", "version": "1" }
            }
        }))
        .send()
        .await
        .unwrap()
        .status()
}

/// GET `path` without credentials; the JSON body.
async fn anonymous_json(app: &TestApp, path: &str) -> Value {
    app.client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn app_events(app: &TestApp) -> Vec<(String, Value)> {
    sqlx::query_as(
        "SELECT event_type, data::jsonb FROM events WHERE tenant_id = $1
         AND event_type LIKE 'app_%' ORDER BY seq",
    )
    .bind(app.tenant)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_client_finds_everything_from_the_mcp_endpoints_401() {
    let app = app().await;
    let response = app.client.post(app.url("/mcp")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    let metadata_url = app.url("/.well-known/oauth-protected-resource/mcp");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    let resource: Value = anonymous_json(&app, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(resource["resource"], app.url("/mcp"));
    assert_eq!(resource["authorization_servers"], json!([app.address]));
    let root: Value = anonymous_json(&app, "/.well-known/oauth-protected-resource").await;
    assert_eq!(root, resource);
    let server: Value = anonymous_json(&app, "/.well-known/oauth-authorization-server").await;
    assert_eq!(server["issuer"], app.address);
    assert_eq!(server["authorization_endpoint"], app.url("/authorize"));
    assert_eq!(server["token_endpoint"], app.url("/token"));
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(server["client_id_metadata_document_supported"], true);
    assert_eq!(
        server["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    // A page of another origin may read the metadata (browser-based MCP clients).
    let cors = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header("Origin", "https://inspector.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cors.headers()["access-control-allow-origin"],
        "https://inspector.example"
    );
    let other = app
        .client
        .get(app.url("/.well-known/oauth-protected-resource/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn registration_accepts_public_clients_with_safe_redirects_only() {
    let app = app().await;
    for (uris, error) in [
        (json!([]), "invalid_redirect_uri"),
        (json!(["http://example.com/cb"]), "invalid_redirect_uri"),
        (json!(["javascript:alert(1)"]), "invalid_redirect_uri"),
        (json!(["https://app.example/cb#x"]), "invalid_redirect_uri"),
        (
            json!(["https://app.example/cb\u{0}x"]),
            "invalid_redirect_uri",
        ),
    ] {
        let response = register(&app, uris.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uris}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{uris}: {body}");
    }
    let bad_grant = app
        .client
        .post(app.url("/register"))
        .json(&json!({ "redirect_uris": [REDIRECT], "grant_types": ["client_credentials"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_grant.status(), StatusCode::BAD_REQUEST);
    // NUL or other control characters anywhere: refused, nothing stored.
    for extra in [
        json!({ "client_name": "a\u{0}b" }),
        json!({ "client_name": "x".repeat(101) }),
        json!({ "logo_uri": "https://app.example/\u{0}" }),
        json!({ "client_uri": "https://app.example/x\u{0}" }),
    ] {
        let mut body = json!({ "redirect_uris": [REDIRECT] });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = app
            .client
            .post(app.url("/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let refused: Value = response.json().await.unwrap();
        assert_eq!(
            refused["error"], "invalid_client_metadata",
            "{body}: {refused}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_clients")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "no refused registration was stored");
    let not_json = app
        .client
        .post(app.url("/register"))
        .body("redirect_uris=x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let confidential = app
        .client
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": ["cursor://anysphere.cursor-retrieval/oauth/callback"],
            "token_endpoint_auth_method": "client_secret_basic"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(confidential.status(), StatusCode::CREATED);
    let body: Value = confidential.json().await.unwrap();
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert!(body.get("client_secret").is_none());
}

#[tokio::test]
async fn the_consent_page_shows_the_app_and_refuses_what_it_must() {
    let app = app().await;
    let client = client_id(&app).await;
    let cookie = cookie(&app).await;

    let page = show(&app, &cookie, &request(&app, &client, &[])).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("Connect Test host?"), "{text}");
    assert!(text.contains("Not verified"), "{text}");

    // Not signed in: the sign-in page, which comes back here.
    let anonymous = browser()
        .get(app.url(&format!(
            "/authorize?{}",
            query(&request(&app, &client, &[]))
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    let text = anonymous.text().await.unwrap();
    assert!(text.contains("to connect"), "{text}");
    assert!(text.contains("name=\"next\" value=\"authorize?"), "{text}");

    // Client or redirect URI wrong: the person is told; nothing goes to the URI.
    for changes in [
        vec![("redirect_uri", Some("http://127.0.0.1:9/other"))],
        vec![("client_id", Some("no-such-client"))],
        vec![("client_id", None)],
        vec![("client_id", Some("https://127.0.0.1:1/client.json"))],
    ] {
        let response = show(&app, &cookie, &request(&app, &client, &changes)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{changes:?}");
        assert!(response.headers().get("location").is_none());
    }
    // Everything else goes back to the client, with its state and our issuer.
    for (changes, error) in [
        (vec![("code_challenge", None)], "invalid_request"),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (vec![("scope", Some("audit"))], "invalid_scope"),
        (
            vec![("resource", Some("https://other.example/mcp"))],
            "invalid_target",
        ),
    ] {
        // Shown with a link back to the app, never an automatic redirect (RFC 9700 §4.11.2).
        let response = show(&app, &cookie, &request(&app, &client, &changes)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{changes:?}");
        assert!(response.headers().get("location").is_none());
        let page = response.text().await.unwrap();
        let href = page
            .split("href=\"")
            .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"))
            .find(|href| href.starts_with(REDIRECT))
            .unwrap_or_else(|| panic!("a link back to the app: {page}"));
        let to = url::Url::parse(&href).unwrap();
        assert_eq!(param(&to, "error").as_deref(), Some(error), "{changes:?}");
        assert_eq!(param(&to, "state").as_deref(), Some("st-1"));
        assert_eq!(param(&to, "iss").as_deref(), Some(app.address.as_str()));
    }
    // A loopback redirect URI matches on any port (RFC 8252 §7.3).
    let other_port = show(
        &app,
        &cookie,
        &request(
            &app,
            &client,
            &[("redirect_uri", Some("http://127.0.0.1:4567/callback"))],
        ),
    )
    .await;
    assert_eq!(other_port.status(), StatusCode::OK);
    // Deny: access_denied, no code.
    let denied = decide(&app, &cookie, &request(&app, &client, &[]), "deny").await;
    assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
    assert!(param(&denied, "code").is_none());
    // The form only from the inbox itself.
    let mut form = request(&app, &client, &[]);
    form.push(("decision".into(), "allow".into()));
    let forged = browser()
        .post(app.url("/authorize"))
        .header("Cookie", &cookie)
        .header("Origin", "https://evil.example")
        .with_form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let signed_out = browser()
        .post(app.url("/authorize"))
        .header("Origin", app.address.as_str())
        .with_form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::UNAUTHORIZED);
    let codes: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_codes")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(codes, 0, "no refusal made a code");
}

#[tokio::test]
async fn codes_are_single_use_bound_to_client_redirect_verifier_and_resource() {
    let app = app().await;
    let client = client_id(&app).await;
    let other_client = client_id(&app).await;
    let cookie = cookie(&app).await;
    let keys = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE token_sha256 IS NULL")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        n
    };

    let wrong = "x".repeat(43);
    let bad_exchanges: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("code_verifier", wrong.clone())], "invalid_grant"),
        (vec![("client_id", other_client.clone())], "invalid_grant"),
        (
            vec![("redirect_uri", "http://127.0.0.1:9/other".into())],
            "invalid_grant",
        ),
        (
            vec![("resource", "https://other.example/mcp".into())],
            "invalid_target",
        ),
    ];
    for (changes, error) in bad_exchanges {
        let code = code(&app, &cookie, &client).await;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code),
            ("client_id", client.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", VERIFIER.into()),
            ("resource", app.url("/mcp")),
        ];
        for (name, value) in changes {
            form.retain(|(k, _)| *k != name);
            form.push((name, value));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = token(&app, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(body["error"], error, "{form:?}: {body}");
        assert!(body.get("access_token").is_none());
    }
    // An authorization request that left out the redirect URI (the client has one): the token
    // request may leave it out too; one that named it must name it again.
    let unnamed = decide(
        &app,
        &cookie,
        &request(&app, &client, &[("redirect_uri", None)]),
        "allow",
    )
    .await;
    let unnamed_code = param(&unnamed, "code").unwrap();
    let named_code = code(&app, &cookie, &client).await;
    let without = |code: String| {
        let client = client.clone();
        let app = &app;
        async move {
            token(
                app,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("client_id", &client),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await
        }
    };
    let (status, body) = without(named_code.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = without(unnamed_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A refused exchange left the code usable: the right request still gets it.
    let (status, body) = exchange(&app, &client, &named_code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let missing = token(&app, &[("grant_type", "authorization_code"), ("code", "x")]).await;
    assert_eq!(missing.1["error"], "invalid_request");
    let twice = app
        .client
        .post(app.url("/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&grant_type=refresh_token")
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    let unknown = token(&app, &[("grant_type", "password")]).await;
    assert_eq!(unknown.1["error"], "unsupported_grant_type");
    assert_eq!(
        keys().await,
        2,
        "only the two good exchanges issued anything"
    );

    // A good exchange, then the same code again: refused, and what it bought is revoked.
    let code = code(&app, &cookie, &client).await;
    let (status, tokens) = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "agent");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp(&app.address, access).await, StatusCode::OK);
    let (status, again) = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
    assert_eq!(mcp(&app.address, access).await, StatusCode::UNAUTHORIZED);
    let events = app_events(&app).await;
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "app_connected",
            "app_connected",
            "app_connected",
            "app_disconnected"
        ]
    );
    assert!(
        events[3].1["reason"]
            .as_str()
            .unwrap()
            .contains("second time")
    );
}

#[tokio::test]
async fn an_apps_token_is_for_mcp_only_refreshes_rotate_and_a_replay_disconnects() {
    let app = app().await;
    let client = client_id(&app).await;
    let cookie = cookie(&app).await;
    let tokens = connect(&app, &cookie, &client).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    assert_eq!(mcp(&app.address, &access).await, StatusCode::OK);
    // Not the REST API, not the inbox's key sign-in: the audience is the MCP endpoint.
    let rest = app
        .client
        .get(app.url("/api/v1/sessions"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::UNAUTHORIZED);
    let pasted = browser()
        .post(app.url("/login"))
        .header("Origin", app.address.as_str())
        .with_form(&[("api_key", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(pasted.status(), StatusCode::UNAUTHORIZED);
    // A token of ours for another audience is refused at /mcp too.
    let key_id: Uuid = sqlx::query_scalar("SELECT key_id FROM oauth_grants")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let elsewhere = app
        .keys
        .sign(&switchboard::auth::Claims {
            sub: app.tenant.to_string(),
            jti: Some(key_id.to_string()),
            iat: None,
            exp: Some(time::OffsetDateTime::now_utc().unix_timestamp() + 600),
            scope: Some("agent".into()),
            aud: Some("https://other.example/mcp".into()),
        })
        .unwrap();
    assert_eq!(
        mcp(&app.address, &elsewhere).await,
        StatusCode::UNAUTHORIZED
    );

    // Refresh: new tokens, the old refresh token used up.
    let refreshed = |refresh: String| {
        let app = &app;
        let client = client.clone();
        async move {
            token(
                app,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", &client),
                ],
            )
            .await
        }
    };
    let (status, next) = refreshed(refresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let next_access = next["access_token"].as_str().unwrap().to_owned();
    let next_refresh = next["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next_refresh, refresh);
    assert_eq!(mcp(&app.address, &next_access).await, StatusCode::OK);
    let (_, wrong_client) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &next_refresh),
            ("client_id", "someone-else"),
        ],
    )
    .await;
    assert_eq!(wrong_client["error"], "invalid_grant");
    // The old one again at once: a concurrent refresh of the same client, refused, nothing
    // else happens.
    let (status, concurrent) = refreshed(refresh.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(concurrent["error"], "invalid_grant");
    assert_eq!(mcp(&app.address, &next_access).await, StatusCode::OK);
    // The old one again later: a copy is in other hands; the app is disconnected.
    sqlx::query("UPDATE oauth_grants SET refreshed_at = refreshed_at - interval '1 minute'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (status, replay) = refreshed(refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(replay["error"], "invalid_grant");
    assert_eq!(
        mcp(&app.address, &next_access).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, after) = refreshed(next_refresh).await;
    assert_eq!(after["error"], "invalid_grant");
    let events = app_events(&app).await;
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["app_connected", "app_disconnected"]);
    assert_eq!(events[0].1["client_name"], "Test host");
    assert_eq!(events[0].1["redirect_host"], "http://127.0.0.1:9");
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains("sbr_") && !all.contains(&access[..40]),
        "no secret in the log"
    );
}

#[tokio::test]
async fn a_disconnected_app_is_refused_on_every_node() {
    let app = app().await;
    let node = ServerProcess::start(&app.db).await;
    let client = client_id(&app).await;
    let cookie = cookie(&app).await;

    // Disconnected in the inbox (REST with the cookie), by the app itself, by the operator.
    let first = connect(&app, &cookie, &client).await;
    let second = connect(&app, &cookie, &client).await;
    let third = connect(&app, &cookie, &client).await;
    let access = |t: &Value| t["access_token"].as_str().unwrap().to_owned();
    for tokens in [&first, &second, &third] {
        assert_eq!(mcp(&node.url(""), &access(tokens)).await, StatusCode::OK);
    }
    let listed: Value = app.get_json("/api/v1/apps").await;
    let ids: Vec<String> = listed["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "{listed}");
    let key_of = |tokens: &Value| -> String {
        let claims: switchboard::auth::Claims = app
            .keys
            .verify(tokens["access_token"].as_str().unwrap())
            .unwrap();
        claims.jti.unwrap()
    };

    let disconnected = browser()
        .delete(app.url(&format!("/api/v1/apps/{}", key_of(&first))))
        .header("Cookie", &cookie)
        .header("Origin", app.address.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(disconnected.status(), StatusCode::OK);
    let revoked = app
        .client
        .post(app.url("/revoke"))
        .with_form(&[("token", second["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let out = common::switchboard(&app.db, &["keys", "revoke", &key_of(&third)], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Revoked connected app"));

    for tokens in [&first, &second, &third] {
        assert_eq!(
            mcp(&node.url(""), &access(tokens)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            mcp(&app.address, &access(tokens)).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let listed: Value = app.get_json("/api/v1/apps").await;
    assert_eq!(listed["apps"], json!([]));
    let reasons: Vec<String> = app_events(&app)
        .await
        .into_iter()
        .filter(|(t, _)| t == "app_disconnected")
        .map(|(_, d)| d["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    // Another tenant cannot disconnect them, and ordinary keys are not apps.
    let stranger = app
        .key(Uuid::new_v4(), switchboard::commands::Scope::Agent)
        .await;
    let refused = app
        .client
        .delete(app.url(&format!("/api/v1/apps/{}", key_of(&first))))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let out = common::switchboard(
        &app.db,
        &["keys", "list", "--user", &app.tenant.to_string()],
        None,
    )
    .await;
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("(connected app: "), "{listing}");
}
