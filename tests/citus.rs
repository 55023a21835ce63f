//! Switchboard on a real Citus cluster (a coordinator and two workers, `scripts/citus-cluster`):
//! the migrations distribute the tenant tables by tenant, two `serve` processes share the
//! coordinator, an agent waiting on one is woken by a reply posted on the other, and tenants'
//! rows land on both workers. The other test binaries run against the same cluster with
//! `DATABASE_URL` (see `.ci/run`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{ServerProcess, TestDb};
use serde_json::{Value, json};
use uuid::Uuid;

/// A fresh distributed database on the cluster.
async fn citus_database() -> TestDb {
    common::use_citus();
    common::database().await
}

/// The worker (its port) holding `tenant`'s rows of every table colocated with `events`.
async fn worker_of(db: &TestDb, tenant: Uuid) -> i32 {
    sqlx::query_scalar(
        "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
         WHERE p.shardid = get_shard_id_for_distribution_column('events', $1)",
    )
    .bind(tenant)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

/// Tenants, at least two on each worker.
async fn tenants_on_both_workers(db: &TestDb) -> Vec<Uuid> {
    let mut by_worker: BTreeMap<i32, Vec<Uuid>> = BTreeMap::new();
    while by_worker.len() < 2 || by_worker.values().any(|t| t.len() < 2) {
        let tenant = Uuid::new_v4();
        let worker = worker_of(db, tenant).await;
        if by_worker.get(&worker).is_none_or(|t| t.len() < 2) {
            by_worker.entry(worker).or_default().push(tenant);
        }
        assert!(by_worker.len() <= 2, "three workers? {by_worker:?}");
    }
    by_worker.into_values().flatten().collect()
}

/// `switchboard keys create --create-user` for `tenant`: the printed token.
async fn create_key(db: &TestDb, tenant: Uuid) -> String {
    let tenant = tenant.to_string();
    let created = common::switchboard(
        db,
        &[
            "keys",
            "create",
            "--user",
            &tenant,
            "--name",
            "agent",
            "--create-user",
        ],
        None,
    )
    .await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    stdout.lines().last().unwrap().trim().to_owned()
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    post_once(client, url, token, None, body).await
}

/// POST `body`, with an `Idempotency-Key` when given; the JSON answer, which must be a 200.
async fn post_once(
    client: &reqwest::Client,
    url: String,
    token: &str,
    idempotency_key: Option<&str>,
    body: Value,
) -> Value {
    let mut request = client.post(url).bearer_auth(token).json(&body);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_citus_serve_tenants_spread_over_both_workers() {
    let db = citus_database().await;
    let distributed: Vec<(String, String)> =
        sqlx::query_as("SELECT table_name::text, citus_table_type FROM citus_tables ORDER BY 1")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let kind = |name: &str| {
        distributed
            .iter()
            .find(|(t, _)| t == name)
            .map(|(_, kind)| kind.as_str())
    };
    assert_eq!(kind("events"), Some("distributed"));
    assert_eq!(kind("api_keys"), Some("distributed"));
    assert_eq!(kind("projection_generation"), Some("reference"));
    let colocated: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT colocation_id) FROM citus_tables WHERE citus_table_type = 'distributed'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(colocated, 1, "every tenant table colocated with events");

    let node_a = ServerProcess::start(&db).await;
    let node_b = ServerProcess::start(&db).await;
    let client = reqwest::Client::new();
    let tenants = tenants_on_both_workers(&db).await;
    for tenant in &tenants {
        let token = create_key(&db, *tenant).await;
        let session = Uuid::new_v4();
        // The agent's question, sent to both nodes at once (a client retrying elsewhere): one
        // append, and both answer with it (the loser of the race learns of the winner by
        // reading, whatever error Citus reported).
        let ask = json!({"agent_instance_id": session, "agent_type": "claude_code",
                         "content": "Which database?", "requires_user_input": true});
        let key = format!("ask-{session}");
        let (on_a, on_b) = tokio::join!(
            post_once(
                &client,
                node_a.url("/api/v1/messages/agent"),
                &token,
                Some(&key),
                ask.clone()
            ),
            post_once(
                &client,
                node_b.url("/api/v1/messages/agent"),
                &token,
                Some(&key),
                ask
            ),
        );
        assert_eq!(on_a, on_b);
        let question = on_a["message_id"].as_str().unwrap().to_owned();
        // The agent waits on node A ...
        let waiting = tokio::spawn({
            let request = client
                .get(node_a.url(&format!(
                    "/api/v1/messages/pending?agent_instance_id={session}\
                     &last_read_message_id={question}&wait=60"
                )))
                .bearer_auth(&token);
            async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
        });
        // ... parked before the reply (a reply first would be answered at once, proving nothing).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "nothing to answer yet");
        // ... and its person answers on node B.
        post(
            &client,
            node_b.url("/api/v1/messages/user"),
            &token,
            json!({"agent_instance_id": session, "content": format!("Citus, for {tenant}"),
                   "mark_as_read": false}),
        )
        .await;
        let answer = tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .expect("woken by the reply on the other node")
            .unwrap();
        assert_eq!(
            answer["messages"][0]["content"],
            format!("Citus, for {tenant}")
        );
        // Pending now: nothing left unread for the agent.
        let pending: Value = client
            .get(node_b.url(&format!(
                "/api/v1/messages/pending?agent_instance_id={session}"
            )))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(pending["messages"], json!([]), "{pending}");
        let said: Value = client
            .get(node_a.url(&format!("/api/v1/sessions/{session}/messages")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            said.as_array().unwrap().len(),
            2,
            "one question, one reply: {said}"
        );
    }

    // Every worker holds events, and each tenant's are where Citus says they are.
    let rows_per_worker: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT s.nodeport, sum(r.result::bigint)::bigint
         FROM run_command_on_shards('events', 'SELECT count(*) FROM %s') r
         JOIN citus_shards s ON s.shardid = r.shardid
         WHERE r.success GROUP BY s.nodeport ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows_per_worker.len(), 2, "{rows_per_worker:?}");
    assert!(rows_per_worker.iter().all(|(_, rows)| *rows > 0));

    // The auditor's view: each tenant's export, and the whole log verifies.
    for tenant in &tenants {
        let exported =
            common::switchboard(&db, &["export", "--user", &tenant.to_string()], None).await;
        assert!(exported.status.success());
        let lines = String::from_utf8(exported.stdout).unwrap();
        let types: Vec<String> = lines
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].to_string())
            .collect();
        assert!(types.len() >= 3, "{types:?}");
        assert!(lines.contains(&format!("Citus, for {tenant}")));
    }
    let verified = common::switchboard(&db, &["verify"], None).await;
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(node_a.terminate().success());
    assert!(node_b.terminate().success());
}
