//! `/authorize`: where a person connects an app (an MCP host signing in by OAuth) to their
//! account. The request is checked by `crate::oauth::authorize` (the same checks when the page
//! is shown and when it is answered); the person signs in if needed (a pasted key, or an inbox
//! session made by a sign-in link: the sign-in page's script finds a session the SameSite
//! cookie hid from the cross-site redirect), then sees which app asks, who vouches for it, where
//! it sends them back and what it may do, and allows or denies. Allowing makes a single-use
//! code for the app's redirect URI (`crate::auth::apps`).
//!
//! The consent form posts to this page only (Origin checked, like every inbox form); the page
//! may not be framed. Its Content-Security-Policy allows the form's redirect to the app's own
//! redirect URI and nowhere else.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{self, frame, html, problem};
use super::sign_in::from_elsewhere;
use super::views::{self, Frame, page};
use crate::app::AppState;
use crate::auth::apps::{self, Authorization};
use crate::oauth::authorize::{self, Checked, Params, Refusal};

/// Check the request; a response when it cannot go on.
async fn checked(app: &AppState, params: &Params) -> Result<Checked, Response> {
    let public = &app.config.public_url;
    let resource = crate::oauth::resource(public);
    let issuer = crate::oauth::issuer(public);
    authorize::check(params, &app.oauth_clients, &resource, &issuer)
        .await
        .map_err(|refusal| match refusal {
            Refusal::Shown(why) => problem(
                app,
                StatusCode::BAD_REQUEST,
                "This app cannot connect",
                &why,
            ),
            Refusal::Redirect { to, why } => html(
                StatusCode::BAD_REQUEST,
                refused(&frame(app, None), &why, &to),
            ),
        })
}

/// `GET /authorize`.
pub async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let Ok(params) = unique_params(&query) else {
        return problem(
            &app,
            StatusCode::BAD_REQUEST,
            "This app cannot connect",
            "The request is malformed (a parameter is given twice or is not text).",
        );
    };
    let checked = match checked(&app, &params).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let tenant = match pages::signed_in(&app, &headers).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => {
            let next = format!("authorize?{query}");
            let next = super::sign_in::next_page(Some(&next));
            return html(
                StatusCode::OK,
                views::sign_in_for(&frame(&app, None), next, None, Some(&checked.client.name)),
            );
        }
        Err(_) => return sign_in_unavailable(&app),
    };
    let account = app.log.account(tenant).await.ok().flatten();
    let who = account.map_or_else(|| tenant.to_string(), |a| a.name);
    let mut response = html(
        StatusCode::OK,
        consent(&frame(&app, None), &checked, &params, &who),
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        consent_policy(&checked.redirect_uri),
    );
    response
}

fn sign_in_unavailable(app: &AppState) -> Response {
    problem(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Switchboard is unavailable",
        "Your sign-in cannot be checked right now. Try again in a moment.",
    )
}

/// Query parameters, each at most once.
fn unique_params(query: &str) -> Result<Params, ()> {
    let mut seen = std::collections::HashSet::new();
    for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
        if !seen.insert(name.into_owned()) {
            return Err(());
        }
    }
    axum::extract::Query::<Params>::try_from_uri(&format!("/?{query}").parse().map_err(|_| ())?)
        .map(|q| q.0)
        .map_err(|_| ())
}

/// The inbox's policy, with the one place the consent form may lead: the app's redirect URI.
fn consent_policy(redirect_uri: &str) -> HeaderValue {
    let target = crate::commands::connected_apps::redirect_host(redirect_uri);
    let policy = super::CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {target}"),
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static(super::CONTENT_SECURITY_POLICY))
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    #[serde(flatten)]
    params: Params,
    #[serde(default)]
    decision: String,
}

/// `POST /authorize`: the person's answer.
pub async fn answer(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Some(refused) = from_elsewhere(&app, &headers) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return problem(
            &app,
            StatusCode::BAD_REQUEST,
            "This app cannot connect",
            "The form is malformed.",
        );
    };
    let checked = match checked(&app, &form.params).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let tenant = match pages::signed_in(&app, &headers).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => {
            return problem(
                &app,
                StatusCode::UNAUTHORIZED,
                "You are not signed in",
                "Sign in, then connect the app again from where you started.",
            );
        }
        Err(_) => return sign_in_unavailable(&app),
    };
    let issuer = crate::oauth::issuer(&app.config.public_url);
    let to = match form.decision.as_str() {
        "allow" => {
            let authorization = Authorization {
                tenant_id: tenant,
                client_id: checked.client.client_id.clone(),
                client_name: checked.client.name.clone(),
                redirect_uri: checked.redirect_uri.clone(),
                redirect_uri_given: checked.redirect_uri_given,
                code_challenge: checked.code_challenge.clone(),
                resource: checked.resource.clone(),
                scope: checked.scope,
            };
            match apps::create_code(app.log.pool(), &authorization).await {
                Ok(code) => authorize::code_redirect(&checked, &code, &issuer),
                Err(e) => {
                    tracing::warn!("storing an authorization code failed: {e}");
                    return problem(
                        &app,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Switchboard is unavailable",
                        "The app cannot be connected right now. Try again in a moment.",
                    );
                }
            }
        }
        _ => authorize::error_redirect(
            &checked.redirect_uri,
            "access_denied",
            "the person denied the request",
            checked.state.as_deref(),
            &issuer,
        ),
    };
    let mut response = Redirect::to(&to).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        consent_policy(&checked.redirect_uri),
    );
    response
}

/// A request the client got wrong: what, and the way back to the app with the error (a link
/// the person follows, never an automatic redirect).
fn refused(frame: &Frame, why: &str, to: &str) -> Markup {
    let back_to = crate::commands::connected_apps::redirect_host(to);
    page(
        frame,
        "problem",
        "This app cannot connect",
        None,
        html! {
            div.card {
                h1 { "This app cannot connect" }
                p { "Its request was refused: " (why) "." }
                p { a.button href=(to) { "Return to the app (" (back_to) ")" } }
            }
        },
    )
}

/// The consent page.
fn consent(frame: &Frame, checked: &Checked, params: &Params, who: &str) -> Markup {
    let client = &checked.client;
    let back_to = crate::commands::connected_apps::redirect_host(&checked.redirect_uri);
    let hidden = [
        ("response_type", params.response_type.as_deref()),
        ("client_id", params.client_id.as_deref()),
        ("redirect_uri", params.redirect_uri.as_deref()),
        ("state", params.state.as_deref()),
        ("scope", params.scope.as_deref()),
        ("code_challenge", params.code_challenge.as_deref()),
        (
            "code_challenge_method",
            params.code_challenge_method.as_deref(),
        ),
        ("resource", params.resource.as_deref()),
    ];
    page(
        frame,
        "connect",
        "Connect an app",
        None,
        html! {
            div.card.consent {
                img.logo src=(frame.href(&super::assets::versioned("icon.svg"))) alt="" width="48" height="48";
                h1 { "Connect " (client.name) "?" }
                p.lead { "It asks to use Switchboard as " strong { (who) } "." }
                dl.facts {
                    dt { "Identified by" }
                    dd {
                        @match &client.verified_host {
                            Some(host) => { strong { (host) } " (its published metadata)" }
                            None => {
                                span.warning { "Not verified" }
                                " — it registered itself with this server; its name is its own claim."
                            }
                        }
                    }
                    dt { "Sends you back to" }
                    dd { code { (back_to) } }
                    @if let Some(logo) = &client.logo_host {
                        dt { "Logo from" }
                        dd { (logo) }
                    }
                    @if let Some(site) = &client.client_uri {
                        dt { "Web site" }
                        dd { (site) }
                    }
                }
                h2 { "It will be able to" }
                ul.can {
                    li { "post messages and progress to your agent sessions" }
                    li { "ask you questions and approvals, and wait for your answers" }
                    li { "read the answers and instructions you give its sessions" }
                }
                p.fine {
                    "It cannot read your API keys or your audit log, or change your settings. "
                    "Disconnect it at any time in Settings → Connected apps."
                }
                form.buttons method="post" action=(frame.href("authorize")) {
                    @for (name, value) in hidden {
                        @if let Some(value) = value {
                            input type="hidden" name=(name) value=(value);
                        }
                    }
                    button.primary type="submit" name="decision" value="allow" { "Allow" }
                    button type="submit" name="decision" value="deny" { "Deny" }
                }
            }
        },
    )
}
