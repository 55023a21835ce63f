//! MCP sessions: the `Mcp-Session-Id` a client receives from `initialize` and sends on every
//! later request.
//!
//! A session is a row, bound to the tenant that opened it: any node serves it, and another
//! tenant's id answers exactly like an unknown one. It holds what the protocol needs across
//! requests and nothing more: its requests' ids, which a cancellation names (see `calls.rs`),
//! and the client's name and protocol version from `initialize`. Every request still runs on
//! its own, as without a session; a client that never sends the header is served that way.

use sqlx::PgPool;
use uuid::Uuid;

use crate::commands::Context;

/// An open session, as a request in it sees it.
#[derive(Clone, Debug)]
pub struct McpSession {
    pub id: Uuid,
    /// `clientInfo.name` from `initialize`.
    pub client_name: String,
    /// The protocol version the client asked for in `initialize`.
    pub protocol_version: String,
}

const OPEN: &str = "\
INSERT INTO mcp_sessions (id, tenant_id, key_id, client_name, protocol_version)
VALUES ($1, $2, $3, $4, $5)";

const FIND: &str = "\
SELECT client_name, protocol_version FROM mcp_sessions
WHERE id = $1 AND tenant_id = $2 AND ended_at IS NULL";

const END: &str = "\
UPDATE mcp_sessions SET ended_at = now()
WHERE id = $1 AND tenant_id = $2 AND ended_at IS NULL";

/// Open a session for the caller.
pub async fn open(
    pool: &PgPool,
    ctx: &Context,
    client_name: &str,
    protocol_version: &str,
) -> Result<McpSession, sqlx::Error> {
    let session = McpSession {
        id: Uuid::new_v4(),
        client_name: printable(client_name),
        protocol_version: printable(protocol_version),
    };
    sqlx::query(OPEN)
        .bind(session.id)
        .bind(ctx.tenant_id)
        .bind(ctx.key_id)
        .bind(&session.client_name)
        .bind(&session.protocol_version)
        .execute(pool)
        .await?;
    Ok(session)
}

/// The caller's open session with this id (`Mcp-Session-Id`), if there is one.
pub async fn find(
    pool: &PgPool,
    ctx: &Context,
    header: &str,
) -> Result<Option<McpSession>, sqlx::Error> {
    let Ok(id) = Uuid::try_parse(header.trim()) else {
        return Ok(None);
    };
    let row: Option<(String, String)> = sqlx::query_as(FIND)
        .bind(id)
        .bind(ctx.tenant_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(client_name, protocol_version)| McpSession {
        id,
        client_name,
        protocol_version,
    }))
}

/// End the caller's session; `false` when it had no such open session.
pub async fn end(pool: &PgPool, ctx: &Context, id: Uuid) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query(END)
        .bind(id)
        .bind(ctx.tenant_id)
        .execute(pool)
        .await?;
    Ok(ended.rows_affected() == 1)
}

/// A short, printable copy of a client-supplied name.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}
