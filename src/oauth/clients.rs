//! Who is asking: OAuth clients, known by a Client ID Metadata Document (the `client_id` is an
//! https URL whose document describes the client; what Claude and current MCP hosts use) or by
//! dynamic registration (RFC 7591; the fallback older hosts use).
//!
//! A metadata document is fetched through the same outbound guard as webhooks (https only, no
//! private addresses unless the operator allows them, a time and a size limit, no redirects),
//! must name itself (`client_id` equal to its URL), and is cached for [`DOCUMENT_TTL`]. The
//! host that serves it is what the consent page shows as the app's verified origin; a client
//! that registered itself has none, and the page says so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use url::Url;
use uuid::Uuid;

use crate::auth::apps::{self, RegisteredClient};
use crate::notify::outbound::Outbound;

/// How long a fetched metadata document is trusted.
pub const DOCUMENT_TTL: Duration = Duration::from_secs(5 * 60);
/// Largest metadata document read.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// Longest a metadata document may take to arrive.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Most metadata documents cached at once.
const MAX_CACHED: usize = 1_000;
/// Most redirect URIs a client may have.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest URL accepted in client metadata.
const MAX_URL: usize = 2_000;
/// Longest client name accepted.
const MAX_NAME: usize = 100;

/// A client, as the authorization and token endpoints need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Host of the logo the client named (shown as text: the page loads nothing from others).
    pub logo_host: Option<String>,
    pub client_uri: Option<String>,
    /// The host that vouches for the client: its metadata document's. `None`: it registered
    /// itself, and nothing vouches for its name.
    pub verified_host: Option<String>,
}

/// Why a client cannot be used; the text is for the person (and the client's developer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError(pub String);

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most metadata documents fetched at once (anyone can ask for one).
const MAX_FETCHES: usize = 8;
/// Most registrations a day brings (anyone can register).
const MAX_REGISTRATIONS_A_DAY: i64 = 10_000;

/// Finds clients; caches metadata documents.
pub struct Clients {
    pool: PgPool,
    outbound: Outbound,
    cache: Mutex<HashMap<String, (Instant, Client)>>,
    fetches: tokio::sync::Semaphore,
}

impl Clients {
    pub fn new(pool: PgPool, outbound: Outbound) -> Clients {
        Clients {
            pool,
            outbound,
            cache: Mutex::new(HashMap::new()),
            fetches: tokio::sync::Semaphore::new(MAX_FETCHES),
        }
    }

    /// The client `client_id` names.
    pub async fn find(&self, client_id: &str) -> Result<Client, ClientError> {
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return self.by_document(client_id).await;
        }
        let registered = apps::registered(&self.pool, client_id)
            .await
            .map_err(|e| {
                tracing::warn!("reading a registered OAuth client failed: {e}");
                ClientError("the client cannot be looked up right now; try again shortly".into())
            })?
            .ok_or_else(|| {
                ClientError(format!(
                    "no client {client_id:?} is registered with this server (registrations \
                     nobody connected are forgotten after a day)"
                ))
            })?;
        Ok(Client {
            logo_host: registered.logo_uri.as_deref().and_then(host_of),
            client_id: registered.client_id,
            name: registered.client_name,
            redirect_uris: registered.redirect_uris,
            client_uri: registered.client_uri,
            verified_host: None,
        })
    }

    async fn by_document(&self, client_id: &str) -> Result<Client, ClientError> {
        if let Some((fetched, client)) = self.cache.lock().expect("not poisoned").get(client_id)
            && fetched.elapsed() < DOCUMENT_TTL
        {
            return Ok(client.clone());
        }
        let url = document_url(client_id)?;
        // What went wrong is logged; the page says only that the document is not usable (the
        // fetch must not tell a stranger about the network it ran in).
        let unusable = |detail: &dyn std::fmt::Display| {
            tracing::info!(%client_id, "an OAuth client metadata document is not usable: {detail}");
            ClientError(format!(
                "its metadata document at {} could not be used",
                url.host_str().unwrap_or_default()
            ))
        };
        let url = self
            .outbound
            .check(url.as_str())
            .map_err(|r| unusable(&r))?;
        let _turn = tokio::time::timeout(FETCH_TIMEOUT, self.fetches.acquire())
            .await
            .map_err(|_| ClientError("too many apps are being looked up; try again".into()))?
            .map_err(|_| ClientError("the server is shutting down".into()))?;
        let fetched = self
            .outbound
            .get(&url, "application/json", MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| unusable(&e))?;
        if fetched.status != 200 {
            return Err(unusable(&format!("HTTP {}", fetched.status)));
        }
        if !fetched.complete {
            return Err(unusable(&format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        let client = from_document(client_id, &url, &fetched.body)?;
        let mut cache = self.cache.lock().expect("not poisoned");
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| at.elapsed() < DOCUMENT_TTL);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(client_id.to_owned(), (Instant::now(), client.clone()));
        Ok(client)
    }
}

/// A metadata document's URL: https, with a path, without credentials, fragment or dot
/// segments (draft-ietf-oauth-client-id-metadata-document §3).
fn document_url(client_id: &str) -> Result<Url, ClientError> {
    let refuse = |why: &str| ClientError(format!("the client id {client_id:?} {why}"));
    let url = Url::parse(client_id).map_err(|_| refuse("is not a URL"))?;
    if url.scheme() != "https" {
        return Err(refuse("must be an https URL"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(refuse("must have a path"));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(refuse("must not have a query, a fragment or credentials"));
    }
    if client_id.split(['/', '?']).any(|s| s == "." || s == "..") || url.as_str() != client_id {
        return Err(refuse(
            "must be written in its normal form, without . or .. segments",
        ));
    }
    Ok(url)
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
    #[serde(default)]
    logo_uri: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

fn from_document(client_id: &str, url: &Url, body: &[u8]) -> Result<Client, ClientError> {
    let doc: Document = serde_json::from_slice(body).map_err(|e| {
        ClientError(format!(
            "the client's metadata document is not valid client metadata: {e}"
        ))
    })?;
    if doc.client_id != client_id {
        return Err(ClientError(
            "the client's metadata document names another client".into(),
        ));
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(ClientError(format!(
                "the client authenticates with {other:?}; this server supports public clients \
                 (token_endpoint_auth_method \"none\", with PKCE) only"
            )));
        }
    }
    let redirect_uris = redirect_uris(&doc.redirect_uris)?;
    let host = url.host_str().unwrap_or_default().to_owned();
    Ok(Client {
        client_id: client_id.to_owned(),
        name: name(doc.client_name.as_deref()).unwrap_or_else(|| host.clone()),
        logo_host: doc.logo_uri.as_deref().and_then(host_of),
        client_uri: doc.client_uri.filter(|u| is_web_url(u)),
        redirect_uris,
        verified_host: Some(host),
    })
}

/// A client name as shown: trimmed, without control characters, at most [`MAX_NAME`].
fn name(text: Option<&str>) -> Option<String> {
    let cleaned: String = text?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

fn host_of(url: &str) -> Option<String> {
    Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .and_then(|u| u.host_str().map(str::to_owned))
}

fn is_web_url(text: &str) -> bool {
    text.len() <= MAX_URL && !text.chars().any(char::is_control) && host_of(text).is_some()
}

/// Redirect URIs a client may have: https; http on loopback only (RFC 8252 §7.3); or an app's
/// own scheme (RFC 8252 §7.1), never one a browser would run or show as a page. No fragments.
fn redirect_uris(list: &[String]) -> Result<Vec<String>, ClientError> {
    if list.is_empty() {
        return Err(ClientError("the client has no redirect_uris".into()));
    }
    if list.len() > MAX_REDIRECT_URIS {
        return Err(ClientError(format!(
            "the client has more than {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    for uri in list {
        check_redirect_uri(uri)
            .map_err(|why| ClientError(format!("redirect URI {uri:?} {why}")))?;
    }
    Ok(list.to_vec())
}

fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > MAX_URL {
        return Err("is too long");
    }
    if uri.chars().any(char::is_control) {
        return Err("contains a control character (NUL, a line break, …)");
    }
    let url = Url::parse(uri).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("must not have a fragment");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(url::Host::Domain("localhost")) => Ok(()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err("uses http: only loopback addresses may (use https)"),
        },
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ws" | "wss" | "ftp"
        | "mailto" => Err("uses a scheme that cannot receive a redirect"),
        _ => Ok(()),
    }
}

/// An RFC 7591 registration refused: the error code and why.
#[derive(Debug)]
pub struct RegistrationError {
    pub code: &'static str,
    pub description: String,
}

#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
    #[serde(default)]
    logo_uri: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
}

/// Register a client from its RFC 7591 metadata; the response body. Public clients only: a
/// request for another authentication method is registered as `none` (RFC 7591 §3.2.1 lets
/// the server replace values; the response says what was registered).
pub async fn register(pool: &PgPool, body: &[u8]) -> Result<Value, RegistrationError> {
    let metadata = |description: String| RegistrationError {
        code: "invalid_client_metadata",
        description,
    };
    let request: Registration = serde_json::from_slice(body).map_err(|e| {
        metadata(format!(
            "the body is not client metadata (a JSON object): {e}"
        ))
    })?;
    let uris = request.redirect_uris.unwrap_or_default();
    let redirect_uris = redirect_uris(&uris).map_err(|e| RegistrationError {
        code: "invalid_redirect_uri",
        description: e.0,
    })?;
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(other) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(metadata(format!(
            "grant type {other:?} is not supported (authorization_code and refresh_token are)"
        )));
    }
    let response_types = request
        .response_types
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(metadata(
            "only the response type \"code\" is supported".into(),
        ));
    }
    for (field, value) in [
        ("client_uri", &request.client_uri),
        ("logo_uri", &request.logo_uri),
    ] {
        if value.as_deref().is_some_and(|u| !is_web_url(u)) {
            return Err(metadata(format!("{field} must be an http(s) URL")));
        }
    }
    if request
        .client_name
        .as_deref()
        .is_some_and(|n| n.chars().any(char::is_control) || n.chars().count() > MAX_NAME)
    {
        return Err(metadata(format!(
            "client_name must be at most {MAX_NAME} characters without control characters"
        )));
    }
    let client = RegisteredClient {
        client_id: Uuid::new_v4().to_string(),
        client_name: name(request.client_name.as_deref()).unwrap_or_else(|| "Unnamed app".into()),
        client_uri: request.client_uri,
        logo_uri: request.logo_uri,
        redirect_uris,
        created_at: crate::eventlog::chain::now_micros(),
    };
    let unavailable = |e: sqlx::Error| {
        tracing::warn!("registering an OAuth client failed: {e}");
        RegistrationError {
            code: "temporarily_unavailable",
            description: "the registration cannot be stored right now; retry shortly".into(),
        }
    };
    apps::forget_unused_registrations(pool)
        .await
        .map_err(unavailable)?;
    if apps::registrations_today(pool).await.map_err(unavailable)? >= MAX_REGISTRATIONS_A_DAY {
        return Err(RegistrationError {
            code: "temporarily_unavailable",
            description: "too many clients registered today; try again tomorrow".into(),
        });
    }
    apps::register(pool, &client).await.map_err(unavailable)?;
    let mut response = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at.unix_timestamp(),
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": "none",
    });
    if let Some(uri) = client.client_uri {
        response["client_uri"] = json!(uri);
    }
    if let Some(uri) = client.logo_uri {
        response["logo_uri"] = json!(uri);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_an_apps_own_scheme() {
        for good in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:6274/oauth/callback",
            "http://[::1]:8080/cb",
            "cursor://anysphere.cursor-retrieval/oauth/user-callback",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(check_redirect_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "http://example.com/cb",
            "https://claude.ai/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/relative",
            "file:///etc/passwd",
            "https://app.example/cb\u{0}",
            "https://app.example/c\nb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_document_urls_are_https_with_a_path_in_normal_form() {
        assert!(document_url("https://claude.ai/oauth/mcp-oauth-client-metadata").is_ok());
        for bad in [
            "http://claude.ai/oauth/metadata",
            "https://claude.ai/",
            "https://claude.ai",
            "https://u:p@claude.ai/x",
            "https://claude.ai/x#f",
            "https://claude.ai/a/../b",
            "https://claude.ai/x?a=1",
            "https://CLAUDE.ai/x",
        ] {
            assert!(document_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_metadata_document_must_name_itself_and_be_a_public_client() {
        let id = "https://app.example/client.json";
        let url = Url::parse(id).unwrap();
        let doc = |extra: &str| {
            format!(r#"{{"client_id":"{id}","redirect_uris":["https://app.example/cb"]{extra}}}"#)
        };
        let client =
            from_document(id, &url, doc(r#","client_name":" App\u0007 ""#).as_bytes()).unwrap();
        assert_eq!(client.name, "App");
        assert_eq!(client.verified_host.as_deref(), Some("app.example"));
        let other = doc("").replace(id, "https://evil.example/c.json");
        assert!(from_document(id, &url, other.as_bytes()).is_err());
        let secret = doc(r#","token_endpoint_auth_method":"client_secret_basic""#);
        assert!(from_document(id, &url, secret.as_bytes()).is_err());
        assert!(from_document(id, &url, b"[]").is_err());
    }
}
