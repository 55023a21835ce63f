//! `switchboard login-link --user <uuid> [--minutes N]`: a one-time link that signs a person
//! in to the inbox. Works beside a running server (it only writes the link's digest).

use std::process::ExitCode;

use clap::Args;
use uuid::Uuid;

use super::Outcome;
use crate::app::PublicUrl;
use crate::auth::web_sessions::{self, DEFAULT_LINK_MINUTES, MAX_LINK_MINUTES};
use crate::config::DatabaseArgs;
use crate::wire::timestamp;

#[derive(Args, Debug)]
pub struct LoginLinkArgs {
    /// The user (tenant) the link signs in.
    #[arg(long)]
    user: Uuid,

    /// Minutes the link works (it works once), at most a week.
    #[arg(long, default_value_t = DEFAULT_LINK_MINUTES,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LINK_MINUTES)))]
    minutes: u32,

    /// The URL people reach the server at, as given to `serve --public-url`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,

    /// The server's port, for the default public URL `http://localhost:<port>/`.
    #[arg(long, env = "PORT")]
    port: Option<u16>,
}

pub async fn run(db_args: &DatabaseArgs, args: LoginLinkArgs) -> Outcome {
    let public_url = match &args.public_url {
        Some(url) => PublicUrl::parse(url)?,
        None => PublicUrl::local(super::serve::port(args.port)?),
    };
    let db = db_args.open(2).await?;
    if !super::users::exists(&db, args.user).await? {
        db.close().await;
        return Err(format!(
            "no user {}: `switchboard users list` shows who there is",
            args.user
        )
        .into());
    }
    let link = web_sessions::create_link(&db.pool, args.user, args.minutes).await;
    db.close().await;
    let link = link?;
    println!(
        "Sign-in link for user {} (works once, until {}):",
        args.user,
        timestamp(link.expires_at)
    );
    println!("{}", login_url(&public_url, &link.token));
    Ok(ExitCode::SUCCESS)
}

/// Where a sign-in link's token is used.
pub fn login_url(public_url: &PublicUrl, token: &str) -> String {
    public_url.join(&format!("login/{token}"))
}
