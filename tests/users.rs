//! Users are events on their account stream: created and renamed through the command line,
//! listed with their keys, named by `/auth/verify`, kept by export and replay, reproduced by a
//! rebuild; keys cannot be made for a user that does not exist.

mod common;

use common::{TestApp, database, switchboard};
use serde_json::{Value, json};
use uuid::Uuid;

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn users(app_db: &common::TestDb) -> Vec<Value> {
    let listed = switchboard(app_db, &["users", "list", "--json"], None).await;
    serde_json::from_str(&stdout(&listed)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_renamed_listed_and_survive_export_and_replay() {
    let app = TestApp::spawn().await;
    let created = switchboard(
        &app.db,
        &[
            "users",
            "create",
            "--name",
            "Ada",
            "--email",
            "ada@example.com",
        ],
        None,
    )
    .await;
    let id: Uuid = stdout(&created).trim().parse().expect("prints the id");

    // A typo in --user creates nothing.
    let typo = Uuid::new_v4().to_string();
    let refused = switchboard(
        &app.db,
        &["keys", "create", "--user", &typo, "--name", "k"],
        None,
    )
    .await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("users create"));
    assert!(users(&app.db).await.iter().all(|u| u["id"] != typo));

    let made = switchboard(
        &app.db,
        &[
            "keys",
            "create",
            "--user",
            &id.to_string(),
            "--name",
            "laptop",
        ],
        None,
    )
    .await;
    let token = stdout(&made).lines().last().unwrap().to_owned();
    let verify: Value = app
        .client
        .get(app.url("/api/v1/auth/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["user_id"], id.to_string());
    assert_eq!(verify["user_name"], "Ada");

    let renamed = switchboard(
        &app.db,
        &["users", "rename", &id.to_string(), "--name", "Ada Lovelace"],
        None,
    )
    .await;
    stdout(&renamed);
    let listed = users(&app.db).await;
    let ada = listed.iter().find(|u| u["id"] == id.to_string()).unwrap();
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["active_keys"], 1);
    // The test tenant has a key but no user record: listed all the same.
    assert!(listed.iter().any(|u| u["id"] == app.tenant.to_string()));

    // --create-user makes the user on the way.
    let other = Uuid::new_v4().to_string();
    let made = switchboard(
        &app.db,
        &[
            "keys",
            "create",
            "--user",
            &other,
            "--name",
            "ci",
            "--create-user",
        ],
        None,
    )
    .await;
    stdout(&made);
    assert!(
        users(&app.db)
            .await
            .iter()
            .any(|u| u["id"] == other && u["name"] == "ci")
    );

    // Export and replay keep them; a rebuild reproduces them.
    let exported = stdout(&switchboard(&app.db, &["export"], None).await);
    let types: Vec<String> = exported
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(types.contains(&"user_created".to_owned()));
    assert!(types.contains(&"user_renamed".to_owned()));
    let empty = database().await;
    stdout(
        &switchboard(
            &empty,
            &["replay", "--from", "-"],
            Some(exported.as_bytes()),
        )
        .await,
    );
    let replayed = users(&empty).await;
    let ada = replayed.iter().find(|u| u["id"] == id.to_string()).unwrap();
    assert_eq!(ada["name"], "Ada Lovelace");
    stdout(&switchboard(&empty, &["projections", "rebuild", "--check"], None).await);
    stdout(&switchboard(&app.db, &["projections", "rebuild", "--check"], None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_user_input_is_refused_and_the_account_stream_is_no_session() {
    let app = TestApp::spawn().await;
    for args in [
        &["users", "create", "--name", ""][..],
        &[
            "users",
            "create",
            "--name",
            "x",
            "--email",
            "not-an-address",
        ],
        &[
            "users",
            "rename",
            &Uuid::new_v4().to_string(),
            "--name",
            "nobody",
        ],
    ] {
        let refused = switchboard(&app.db, args, None).await;
        assert!(!refused.status.success(), "{args:?}");
    }
    let id = stdout(&switchboard(&app.db, &["users", "create", "--name", "Bo"], None).await);
    let twice = switchboard(
        &app.db,
        &["users", "create", "--name", "Bo", "--id", id.trim()],
        None,
    )
    .await;
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"));

    // An agent cannot start a "session" on its own account stream.
    let response = app
        .post(
            "/api/v1/messages/agent",
            &json!({"agent_instance_id": app.tenant, "agent_type": "x", "content": "hi"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant_id = $1")
        .bind(app.tenant)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
}
