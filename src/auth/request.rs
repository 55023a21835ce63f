//! Who sent an HTTP request: the Bearer token of its `Authorization` header, or a person's
//! inbox cookie, checked, and the request described for the event metadata. REST and MCP
//! authenticate this way, and note the tenant for the request's log line (see
//! [`noting_tenant`]).
//!
//! A cookie is sent by the browser whoever made the page that sends the request, so a write
//! authorised by the cookie must come from the inbox itself: its `Origin` (or, without one, its
//! `Referer`) must be the public URL's origin or the request's own host. SameSite=Strict keeps
//! the cookie off cross-site requests in current browsers; this check does not rely on it. The
//! Bearer API is unaffected: a page cannot make a browser send someone's token.

use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, Method, header};
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
    /// A cookie-authenticated write that did not come from the inbox's own pages.
    CrossSite(String),
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

/// Where the inbox is served, as far as requests need to know: the session cookie's name and
/// the origin its writes must come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// Browsers reach the server over https: the cookie is `Secure` and `__Host-` prefixed.
    pub secure: bool,
    /// `scheme://host[:port]` of the public URL.
    pub origin: String,
}

impl Site {
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-switchboard_session"
        } else {
            "switchboard_session"
        }
    }

    /// The session cookie's value, if the request carries one.
    pub fn session_cookie<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find_map(|(n, value)| (n == name && !value.is_empty()).then_some(value))
    }

    /// `Set-Cookie` for a new web session: HttpOnly, SameSite=Strict, the whole site.
    pub fn set_cookie(&self, value: &str, max_age_seconds: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}",
            self.cookie_name()
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        self.set_cookie("", 0)
    }

    /// A cookie-authenticated write must come from this site: its `Origin` (else `Referer`)
    /// is the public URL's origin or the request's own `Host`.
    pub fn check_same_origin(&self, headers: &HeaderMap) -> Result<(), RequestError> {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let (claimed, what) = match (text(header::ORIGIN), text(header::REFERER)) {
            (Some(origin), _) => (origin, "Origin"),
            (None, Some(referer)) => (referer, "Referer"),
            (None, None) => {
                return Err(RequestError::CrossSite(
                    "a write signed in with the inbox cookie must say where it comes from \
                     (Origin header); send Authorization: Bearer <API key> from other clients"
                        .into(),
                ));
            }
        };
        // As browsers serialize it: `scheme://host`, with the port only when not the default.
        let origin = url::Url::parse(claimed)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(|url| url.origin().ascii_serialization());
        let same = origin.is_some_and(|origin| {
            let authority = origin.split_once("://").map_or("", |(_, a)| a);
            origin == self.origin
                || text(header::HOST).is_some_and(|host| host.eq_ignore_ascii_case(authority))
        });
        if same {
            Ok(())
        } else {
            Err(RequestError::CrossSite(format!(
                "a write signed in with the inbox cookie must come from the inbox (its {what} \
                 is another site)"
            )))
        }
    }
}

/// Is this a method that changes something?
fn writes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The caller of an HTTP request: the Bearer token when the request has an `Authorization`
/// header, else `query_token` (browsers' EventSource cannot send headers), else the inbox's
/// session cookie, whose writes must come from the inbox itself.
pub async fn caller(
    auth: &Authenticator,
    site: &Site,
    method: &Method,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Context, RequestError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return context(auth, headers, bearer_token(headers)?).await;
    }
    if let Some(token) = query_token.filter(|t| !t.is_empty()) {
        return context(auth, headers, token).await;
    }
    if let Some(cookie) = site.session_cookie(headers) {
        if writes(method) {
            site.check_same_origin(headers)?;
        }
        let identity = auth.authenticate_web_session(cookie).await?;
        return describe(identity, headers);
    }
    // Nothing usable was sent: say what to send.
    Err(bearer_token(headers).err().map_or_else(
        || RequestError::Auth(AuthError::Missing("Not authenticated".into())),
        RequestError::Auth,
    ))
}

/// Authenticate `token` and describe the request for the event metadata.
pub async fn context(
    auth: &Authenticator,
    headers: &HeaderMap,
    token: &str,
) -> Result<Context, RequestError> {
    let identity = auth.authenticate(token).await?;
    describe(identity, headers)
}

/// The same for a request to the MCP endpoint, where connected apps' tokens are good too.
pub async fn mcp_context(
    auth: &Authenticator,
    headers: &HeaderMap,
    token: &str,
) -> Result<Context, RequestError> {
    let identity = auth.authenticate_mcp(token).await?;
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
    let _ = TENANT.try_with(|tenant| tenant.set(identity.tenant_id));
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
