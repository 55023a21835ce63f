//! `switchboard notify channels add|list|remove|test` and `switchboard notify deliveries`: a
//! user's notification channels and what happened to their notifications, from the operator's
//! shell. The same notifier functions as the REST API; `test` sends from this process, so it
//! takes the same delivery flags as `serve` (`--smtp-url`, `--notify-allow-private`, …).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use uuid::Uuid;

use super::Outcome;
use crate::app::PublicUrl;
use crate::commands::Context;
use crate::config::{DatabaseArgs, NotifyArgs};
use crate::eventlog::EventLog;
use crate::notify::Notifier;
use crate::notify::channels::NewChannel;
use crate::notify::deliveries::{DeliveryFilter, DeliveryView};
use crate::wire::timestamp;

// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Add, list, remove and test a user's channels.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// A user's deliveries, newest first, with every attempt.
    Deliveries {
        #[arg(long)]
        user: Uuid,
        /// pending, delivered, failed or skipped.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ChannelsCommand {
    /// Add a channel; a webhook's signing secret is printed once.
    Add {
        #[arg(long)]
        user: Uuid,
        #[command(subcommand)]
        channel: ChannelArg,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
    /// List a user's channels.
    List {
        #[arg(long)]
        user: Uuid,
    },
    /// Remove a channel; its pending deliveries are dropped.
    Remove {
        #[arg(long)]
        user: Uuid,
        channel_id: Uuid,
    },
    /// Send a test notification to a channel now and show how it went.
    Test {
        #[arg(long)]
        user: Uuid,
        channel_id: Uuid,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ChannelArg {
    /// POSTs signed per Standard Webhooks.
    Webhook { url: String },
    /// Mail through the SMTP server (`--smtp-url`).
    Email { to: String },
    /// A browser's push subscription (`PushSubscription.toJSON()` as JSON text).
    WebPush { subscription: String },
}

/// What adding and testing need to check and reach targets.
#[derive(Args, Debug)]
pub struct DeliveryArgs {
    #[command(flatten)]
    notify: NotifyArgs,
    /// Where people reach the server (links in notifications).
    #[arg(
        long,
        env = "SWITCHBOARD_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    public_url: String,
}

fn web_push(subscription: &str) -> Result<NewChannel, String> {
    let json: serde_json::Value = serde_json::from_str(subscription)
        .map_err(|e| format!("the subscription is not JSON: {e}"))?;
    let text = |pointer: &str| {
        json.pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("the subscription has no {pointer}"))
    };
    Ok(NewChannel::WebPush {
        endpoint: text("/endpoint")?,
        p256dh: text("/keys/p256dh")?,
        auth: text("/keys/auth")?,
        replaces: None,
    })
}

pub async fn run(db_args: &DatabaseArgs, command: NotifyCommand) -> Outcome {
    let db = db_args.open(2).await?;
    let notifier = |delivery: Option<&DeliveryArgs>| -> Result<Notifier, String> {
        let public_url =
            PublicUrl::parse(delivery.map_or("http://localhost:8080", |d| d.public_url.as_str()))?;
        let config = match delivery {
            Some(d) => d.notify.config(&db_args.data_dir, &public_url)?.0,
            None => crate::notify::NotifyConfig::default(),
        };
        Ok(Notifier::new(
            EventLog::new(db.pool.clone()),
            public_url,
            config,
        ))
    };
    let outcome: Outcome = async {
        match command {
            NotifyCommand::Channels(ChannelsCommand::Add {
                user,
                channel,
                delivery,
            }) => {
                let new = match channel {
                    ChannelArg::Webhook { url } => NewChannel::Webhook { url },
                    ChannelArg::Email { to } => NewChannel::Email { to },
                    ChannelArg::WebPush { subscription } => web_push(&subscription)?,
                };
                let added = notifier(Some(&delivery))?
                    .add_channel(&Context::system(user), new)
                    .await?;
                println!(
                    "Added {} channel {} ({}).",
                    added.channel.kind.as_str(),
                    added.channel.id,
                    added.channel.description
                );
                if let Some(secret) = added.secret {
                    println!("Signing secret (shown once):\n{secret}");
                }
            }
            NotifyCommand::Channels(ChannelsCommand::List { user }) => {
                for channel in notifier(None)?.channels(user).await? {
                    println!(
                        "{}  {:<8}  {}  {}",
                        channel.id,
                        channel.kind.as_str(),
                        timestamp(channel.created_at),
                        channel.to.as_deref().unwrap_or(&channel.description),
                    );
                }
            }
            NotifyCommand::Channels(ChannelsCommand::Remove { user, channel_id }) => {
                notifier(None)?
                    .remove_channel(&Context::system(user), channel_id)
                    .await?;
                println!("Removed channel {channel_id}.");
            }
            NotifyCommand::Channels(ChannelsCommand::Test {
                user,
                channel_id,
                delivery,
            }) => {
                let tested = notifier(Some(&delivery))?
                    .test_channel(&Context::system(user), channel_id)
                    .await?;
                print_delivery(&tested);
                if tested.status != "delivered" {
                    return Ok(ExitCode::FAILURE);
                }
            }
            NotifyCommand::Deliveries {
                user,
                status,
                limit,
            } => {
                let filter = DeliveryFilter {
                    status: status.as_deref().map(DeliveryFilter::status).transpose()?,
                    limit: limit.clamp(1, 200),
                    ..DeliveryFilter::default()
                };
                for delivery in notifier(None)?.deliveries(user, &filter).await? {
                    print_delivery(&delivery);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    db.close().await;
    outcome
}

fn print_delivery(d: &DeliveryView) {
    println!(
        "{}  {}  {:<9}  {:<13}  {} {}",
        timestamp(d.created_at),
        d.id,
        d.status,
        d.trigger,
        d.channel_kind,
        d.channel_id,
    );
    for a in &d.attempts {
        println!(
            "    attempt {} at {}: {}{}",
            a.attempt,
            timestamp(a.started_at),
            a.status_code.map_or("no answer".into(), |c| c.to_string()),
            a.error
                .as_deref()
                .map_or(String::new(), |e| format!(" — {e}")),
        );
    }
    if d.attempts.is_empty()
        && let Some(note) = &d.last_error
    {
        println!("    {note}");
    }
}
