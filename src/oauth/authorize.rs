//! The authorization request (RFC 6749 §4.1.1 with OAuth 2.1's rules): what a client may ask
//! for, checked the same way when the consent page is shown and when the person answers it.
//!
//! Until the client and its redirect URI are known to belong together, nothing is sent to that
//! URI: the person sees what is wrong. After that, every refusal goes back to the client
//! (`error`, `state`, `iss`, RFC 9207) as the RFC says.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::clients::{Client, Clients};
use crate::commands::Scope;

/// The parameters of an authorization request, from the query (or the consent form).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Params {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
}

/// A request the person may allow.
#[derive(Clone, Debug)]
pub struct Checked {
    pub client: Client,
    pub redirect_uri: String,
    /// The request named its redirect URI (rather than leaving the client's only one).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub scope: Scope,
    pub code_challenge: String,
    pub resource: String,
}

/// A request refused.
#[derive(Debug)]
pub enum Refusal {
    /// The client or its redirect URI is wrong: tell the person, never the URI.
    Shown(String),
    /// Tell the client, at `to` (its redirect URI with `error`, `state`, `iss`): the person
    /// is shown `why` and a link there, never sent on their own (the URI is the client's
    /// claim: an automatic redirect would make this server an open redirector, RFC 9700
    /// §4.11.2).
    Redirect { to: String, why: String },
}

/// Check `params` against the clients and this server's `resource` (its MCP endpoint).
pub async fn check(
    params: &Params,
    clients: &Clients,
    resource: &str,
    issuer: &str,
) -> Result<Checked, Refusal> {
    let client_id = params
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Refusal::Shown("The request does not say which app asks (no client_id).".into())
        })?;
    let client = clients
        .find(client_id)
        .await
        .map_err(|e| Refusal::Shown(format!("The app cannot be identified: {e}.")))?;
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| redirect_matches(r, uri)) =>
        {
            uri.to_owned()
        }
        Some(uri) => {
            return Err(Refusal::Shown(format!(
                "The app asked to send you back to {uri:?}, which is not one of its registered \
                 redirect URIs. Nothing was sent there."
            )));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(Refusal::Shown(
                "The request does not say where to send you back (no redirect_uri).".into(),
            ));
        }
    };
    let refuse = |error: &str, description: &str| Refusal::Redirect {
        to: error_redirect(
            &redirect_uri,
            error,
            description,
            params.state.as_deref(),
            issuer,
        ),
        why: description.to_owned(),
    };
    if params.response_type.as_deref() != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let Some(code_challenge) = params.code_challenge.as_deref() else {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: send code_challenge and code_challenge_method=S256",
        ));
    };
    if params.code_challenge_method.as_deref() != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if !is_s256_challenge(code_challenge) {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    let scope = scope(params.scope.as_deref())
        .ok_or_else(|| refuse("invalid_scope", "the only scope is \"agent\""))?;
    let resource = match params.resource.as_deref() {
        None => resource.to_owned(),
        Some(asked) if same_resource(asked, resource) => resource.to_owned(),
        Some(_) => {
            return Err(refuse(
                "invalid_target",
                &format!("this server grants access to {resource} only"),
            ));
        }
    };
    Ok(Checked {
        client,
        redirect_uri_given: params.redirect_uri.is_some(),
        redirect_uri,
        state: params.state.clone(),
        scope,
        code_challenge: code_challenge.to_owned(),
        resource,
    })
}

/// Does `asked` match the `registered` redirect URI? Exactly; for http on a loopback address,
/// on any port (RFC 8252 §7.3: a native app listens where the system lets it).
pub fn redirect_matches(registered: &str, asked: &str) -> bool {
    if registered == asked {
        return true;
    }
    let loopback = |text: &str| {
        Url::parse(text).ok().filter(|url| {
            url.scheme() == "http"
                && match url.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    _ => false,
                }
        })
    };
    match (loopback(registered), loopback(asked)) {
        (Some(mut registered), Some(mut asked)) => {
            let _ = registered.set_port(None);
            let _ = asked.set_port(None);
            registered == asked
        }
        _ => false,
    }
}

/// The scope asked for: none (the default) or `agent`.
pub fn scope(asked: Option<&str>) -> Option<Scope> {
    let mut words = asked.unwrap_or("").split(' ').filter(|w| !w.is_empty());
    words.all(|w| w == "agent").then_some(Scope::Agent)
}

/// `asked` names `resource` (a trailing slash aside).
pub fn same_resource(asked: &str, resource: &str) -> bool {
    asked.trim_end_matches('/') == resource.trim_end_matches('/')
}

fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Does `verifier` (RFC 7636 §4.1: 43 to 128 unreserved characters) hash to `challenge`?
pub fn verifies(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// `redirect_uri` with `pairs` added to its query.
fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
    }
    url.into()
}

/// Where to send the browser with the code.
pub fn code_redirect(checked: &Checked, code: &str, issuer: &str) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(state) = &checked.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    with_query(&checked.redirect_uri, &pairs)
}

/// Where to send the browser with an error.
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_as_in_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(verifies(verifier, challenge));
        assert!(!verifies(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(!verifies("short", challenge));
    }

    #[test]
    fn scopes_and_resources() {
        assert_eq!(scope(None), Some(Scope::Agent));
        assert_eq!(scope(Some("agent")), Some(Scope::Agent));
        assert_eq!(scope(Some("audit")), None);
        assert!(same_resource(
            "https://sb.example/mcp/",
            "https://sb.example/mcp"
        ));
        assert!(!same_resource(
            "https://other.example/mcp",
            "https://sb.example/mcp"
        ));
    }

    #[test]
    fn loopback_redirects_match_on_any_port_and_others_exactly() {
        assert!(redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53412/callback"
        ));
        assert!(redirect_matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:5/cb"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
        assert!(redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
    }

    #[test]
    fn redirects_keep_the_uris_own_query() {
        let to = error_redirect(
            "https://app.example/cb?x=1",
            "access_denied",
            "no",
            Some("s t"),
            "https://sb.example",
        );
        assert_eq!(
            to,
            "https://app.example/cb?x=1&error=access_denied&error_description=no&state=s+t&iss=https%3A%2F%2Fsb.example"
        );
    }
}
