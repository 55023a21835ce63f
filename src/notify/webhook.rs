//! Webhook channels: a JSON POST signed per the Standard Webhooks specification, so receivers
//! verify it with any `standardwebhooks` library.
//!
//! Headers: `webhook-id` (the delivery id: derived from the channel and the triggering event,
//! the same on every retry, so receivers can make delivery exactly-once), `webhook-timestamp`
//! (the attempt's time, seconds) and `webhook-signature`: `v1,` + base64 HMAC-SHA256 of
//! `id.timestamp.body` under the channel's `whsec_` secret. The body is
//! `{"type", "timestamp", "data"}`; `data` is the delivery's payload (ids, the text, the
//! session's link, and `sms: true` when the agent asked for a text message).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue, header};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use url::Url;

use super::outbound::{Outbound, Reply, SendError};

const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    OsRng.fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` value for one attempt.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| "the channel's secret is not base64".to_owned())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Send one signed delivery.
pub async fn send(
    outbound: &Outbound,
    url: &Url,
    secret: &str,
    id: &str,
    body: Vec<u8>,
) -> Result<Reply, SendError> {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign(secret, id, timestamp, &body).map_err(SendError::Failed)?;
    let value = |text: String| {
        HeaderValue::try_from(text).map_err(|e| SendError::Failed(format!("bad header: {e}")))
    };
    let headers = vec![
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (HeaderName::from_static("webhook-id"), value(id.to_owned())?),
        (
            HeaderName::from_static("webhook-timestamp"),
            value(timestamp.to_string())?,
        ),
        (
            HeaderName::from_static("webhook-signature"),
            value(signature)?,
        ),
    ];
    outbound.post(url, headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_like_the_specification() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_fresh_and_prefixed() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a != b);
        assert_eq!(STANDARD.decode(&a[6..]).unwrap().len(), 24);
    }
}
