//! Tokens: what is accepted, what is refused (always 401 with `WWW-Authenticate: Bearer`),
//! scopes, and revocation reaching every server process at once.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ServerProcess, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard::auth::api_keys;
use switchboard::commands::Scope;
use uuid::Uuid;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims signed with the server's own key (EdDSA).
fn signed(app: &TestApp, claims: Value) -> String {
    app.keys.sign(&claims).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn verify_status(app: &TestApp, token: &str) -> (u16, Option<String>, Value) {
    let response = app
        .client
        .get(app.url("/api/v1/auth/verify"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// The status a token gets once a key change has reached the server (within two seconds).
async fn status_soon(app: &TestApp, token: &str, expected: u16) -> u16 {
    let mut status = 0;
    for _ in 0..100 {
        status = verify_status(app, token).await.0;
        if status == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    status
}

#[tokio::test]
async fn forged_expired_and_malformed_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant.to_string();
    let (public_pem, _) = common::signing_key_pems().await;
    let other_key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let other_pem = {
        use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
        other_key.to_pkcs8_pem(LineEnding::LF).unwrap()
    };
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let rsa_pem = {
        use rsa::pkcs8::EncodePrivateKey;
        rsa_key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap()
    };

    let valid = app.token.clone();
    let mut flipped_signature = valid.clone();
    let last = flipped_signature.pop().unwrap();
    flipped_signature.push(if last == 'A' { 'B' } else { 'A' });
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&json!({"sub": Uuid::new_v4(), "jti": Uuid::new_v4(), "iat": now()})),
        parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&json!({"sub": tenant, "exp": now() + 3600}))
    );
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": tenant, "exp": now() + 3600}),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    let other_ed25519 = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &json!({"sub": tenant, "exp": now() + 3600}),
        &EncodingKey::from_ed_pem(other_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let rs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({"sub": tenant, "exp": now() + 3600}),
        &EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap(),
    )
    .unwrap();

    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-token".into()),
        ("empty segments", "..".into()),
        ("flipped signature", flipped_signature),
        ("tampered payload", tampered),
        ("alg none", alg_none),
        ("HS256 keyed with the public key", hs256_with_public_key),
        ("another Ed25519 key", other_ed25519),
        ("RS256 while EdDSA is configured", rs256),
        (
            "expired",
            signed(&app, json!({"sub": tenant, "exp": now() - 120})),
        ),
        (
            "not yet valid",
            signed(
                &app,
                json!({"sub": tenant, "exp": now() + 3600, "nbf": now() + 600}),
            ),
        ),
        (
            "no jti and no exp",
            signed(&app, json!({"sub": tenant, "iat": now()})),
        ),
        (
            "unknown jti",
            signed(&app, json!({"sub": tenant, "jti": Uuid::new_v4()})),
        ),
        (
            "jti not a uuid",
            signed(&app, json!({"sub": tenant, "jti": "key-1"})),
        ),
        (
            "sub not a uuid",
            signed(&app, json!({"sub": "alice", "exp": now() + 3600})),
        ),
        ("no sub", signed(&app, json!({"exp": now() + 3600}))),
        (
            "exp not a number",
            signed(&app, json!({"sub": tenant, "exp": "tomorrow"})),
        ),
        (
            "unknown scope",
            signed(
                &app,
                json!({"sub": tenant, "exp": now() + 3600, "scope": "root"}),
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (name, token) in &cases {
        let (status, challenge, body) = verify_status(&app, token).await;
        if status != 401 || challenge.as_deref() != Some("Bearer") || !body["detail"].is_string() {
            failures.push(format!("{name}: {status} {challenge:?} {body}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Reusing a valid key's jti under another user is refused too.
    let key_id: Uuid = sqlx::query_scalar("SELECT id FROM api_keys LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let borrowed = signed(&app, json!({"sub": Uuid::new_v4(), "jti": key_id}));
    assert_eq!(verify_status(&app, &borrowed).await.0, 401);
}

#[tokio::test]
async fn missing_or_wrong_schemes_are_refused_with_a_challenge() {
    let app = TestApp::spawn().await;
    for header in [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer"),
        Some("Bearer "),
        Some("Token abc"),
    ] {
        let mut request = app
            .client
            .post(app.url("/api/v1/messages/agent"))
            .json(&json!({}));
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{header:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string());
    }
}

#[tokio::test]
async fn short_lived_tokens_without_a_key_work_until_they_expire() {
    let app = TestApp::spawn().await;
    let token = signed(&app, json!({"sub": app.tenant, "exp": now() + 600}));
    let (status, _, body) = verify_status(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], app.tenant.to_string());
}

#[tokio::test]
async fn expired_and_revoked_api_keys_are_refused() {
    let app = TestApp::spawn().await;
    let (key, token) = api_keys::create(
        &app.db.pool,
        &app.keys,
        app.tenant,
        "expiring",
        Scope::Agent,
        Some(30),
    )
    .await
    .unwrap();
    assert_eq!(verify_status(&app, &token).await.0, 200);
    // Time passes: the key's expiry is now behind us (and every node is told to look again,
    // as with any change to a key).
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(key.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('switchboard_keys', $1)")
        .bind(key.id.to_string())
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status_soon(&app, &token, 401).await, 401);

    let (key, token) = api_keys::create(
        &app.db.pool,
        &app.keys,
        app.tenant,
        "revoked",
        Scope::Agent,
        None,
    )
    .await
    .unwrap();
    assert_eq!(verify_status(&app, &token).await.0, 200);
    api_keys::revoke(&app.db.pool, key.id).await.unwrap();
    assert_eq!(status_soon(&app, &token, 401).await, 401);
    let (status, _, body) = verify_status(&app, &token).await;
    assert_eq!(status, 401);
    assert!(body["detail"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn keys_are_stored_as_hashes_and_last_use_is_recorded_in_batches() {
    let app = TestApp::spawn().await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_sha256 FROM api_keys")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], api_keys::token_sha256(&app.token));
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'api_keys'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        !columns.iter().any(|c| c == "token" || c == "api_key"),
        "{columns:?}"
    );
}

#[tokio::test]
async fn audit_keys_read_but_never_write() {
    let app = TestApp::spawn().await;
    let session = Uuid::new_v4();
    let created = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": session, "agent_type": "t", "content": "x"}),
        )
        .send()
        .await
        .unwrap();
    let message_id = created.json::<Value>().await.unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let audit = app.key(app.tenant, Scope::Audit).await;
    let reads = [
        "/api/v1/auth/verify".to_owned(),
        "/api/v1/sessions".to_owned(),
        format!("/api/v1/sessions/{session}"),
        format!("/api/v1/sessions/{session}/messages"),
        format!("/api/v1/messages/pending?agent_instance_id={session}"),
    ];
    for path in reads {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(&audit)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let writes = [
        (
            reqwest::Method::POST,
            "/api/v1/messages/agent".to_owned(),
            json!({"agent_instance_id": session, "content": "x"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/messages/user".to_owned(),
            json!({"agent_instance_id": session, "content": "x"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/sessions/end".to_owned(),
            json!({"agent_instance_id": session}),
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/messages/{message_id}/request-input"),
            json!({}),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/agents/instances/{session}/heartbeat"),
            json!({}),
        ),
        (
            reqwest::Method::GET,
            format!(
                "/api/v1/messages/pending?agent_instance_id={session}&last_read_message_id={message_id}"
            ),
            json!({}),
        ),
    ];
    for (method, path, body) in writes {
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&audit);
        if method != reqwest::Method::GET {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        assert!(response.json::<Value>().await.unwrap()["detail"].is_string());
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 2);
}

#[tokio::test]
async fn revocation_takes_effect_at_once_on_every_server() {
    let app = TestApp::spawn().await;
    let node_a = ServerProcess::start(&app.db).await;
    let node_b = ServerProcess::start(&app.db).await;
    let (key, token) = api_keys::create(
        &app.db.pool,
        &app.keys,
        app.tenant,
        "shared",
        Scope::Agent,
        None,
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let verify = |node: &ServerProcess| {
        client
            .get(node.url("/api/v1/auth/verify"))
            .bearer_auth(&token)
            .send()
    };
    // Warm both nodes (a node may cache the key).
    for _ in 0..3 {
        assert_eq!(verify(&node_a).await.unwrap().status(), 200);
        assert_eq!(verify(&node_b).await.unwrap().status(), 200);
    }
    // Revoke through the CLI, as an operator would.
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
    // Each node hears of it through its LISTEN connection within moments of the commit.
    for node in [&node_a, &node_b] {
        let mut status = 0;
        for _ in 0..100 {
            status = verify(node).await.unwrap().status().as_u16();
            if status == 401 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(status, 401, "{}", node.address);
    }
    assert!(node_a.terminate().success());
    assert!(node_b.terminate().success());
}
