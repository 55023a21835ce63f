//! Who sent an HTTP request: the Bearer token of its `Authorization` header, checked, and the
//! request described for the event metadata. REST and MCP both authenticate this way, and
//! note the tenant for the request's log line (see [`noting_tenant`]).

use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, header};
use uuid::Uuid;

use super::{AuthError, Authenticator};
use crate::commands::Context;
use crate::domain::{self, InvalidInput, client_type};

/// Why a request has no usable caller.
#[derive(Debug)]
pub enum RequestError {
    Auth(AuthError),
    /// A header that names the request (Idempotency-Key) is malformed.
    Invalid(InvalidInput),
}

impl From<AuthError> for RequestError {
    fn from(e: AuthError) -> Self {
        RequestError::Auth(e)
    }
}

impl From<InvalidInput> for RequestError {
    fn from(e: InvalidInput) -> Self {
        RequestError::Invalid(e)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        AuthError::Missing("Not authenticated: send Authorization: Bearer <API key>".into())
    })?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::Unauthorized("Invalid authentication credentials".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        AuthError::Unauthorized(
            "Invalid authentication credentials: expected Bearer <token>".into(),
        )
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Unauthorized(
            "Invalid authentication credentials: expected Bearer <token>".into(),
        ));
    }
    Ok(token.trim())
}

/// Authenticate `token` and describe the request for the event metadata.
pub async fn context(
    auth: &Authenticator,
    headers: &HeaderMap,
    token: &str,
) -> Result<Context, RequestError> {
    let identity = auth.authenticate(token).await?;
    let _ = TENANT.try_with(|tenant| tenant.set(identity.tenant_id));
    describe(identity, headers)
}

tokio::task_local! {
    /// Where the request being served on this task notes its tenant once authenticated.
    static TENANT: Arc<OnceLock<Uuid>>;
}

/// Run `serve` (one request), noting in `tenant` who it turns out to be: the tenant is known
/// only deep inside the handler, and is wanted outside it, in the request's log line.
pub async fn noting_tenant<F: Future>(tenant: Arc<OnceLock<Uuid>>, serve: F) -> F::Output {
    TENANT.scope(tenant, serve).await
}

/// The command context of an authenticated request.
pub fn describe(identity: super::Identity, headers: &HeaderMap) -> Result<Context, RequestError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Present but not visible ASCII is refused, never ignored: ignoring it would turn a safe
    // retry into a second append.
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|value| domain::idempotency_key(value.as_bytes()))
        .transpose()?;
    Ok(Context {
        tenant_id: identity.tenant_id,
        key_id: identity.grant.key_id(),
        scope: identity.scope,
        grant: identity.grant,
        client_type: Some(client_type::detect(
            text("x-client-type"),
            text(header::USER_AGENT.as_str()),
        )),
        request_id: text("x-request-id").map(str::to_owned),
        idempotency_key,
    })
}
