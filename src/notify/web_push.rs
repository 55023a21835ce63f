//! Web Push channels: a browser (the inbox, also on a phone's home screen) subscribed with the
//! server's VAPID public key; each notification is a POST to the subscription's push service.
//!
//! - The payload is encrypted for the subscription per RFC 8291 (`aes128gcm`, RFC 8188): an
//!   ephemeral P-256 key agrees a secret with the browser's key, HKDF with the subscription's
//!   auth secret derives the content key and nonce, AES-128-GCM seals one record.
//! - The request is signed per RFC 8292 (VAPID): an ES256 JWT for the push service's origin,
//!   valid 12 hours, with the server's public key beside it.
//!
//! The VAPID key pair is kept like the token signing keys: `SWITCHBOARD_VAPID_PRIVATE_KEY`
//! (PEM) when set, else `vapid-private.pem` in the data directory, generated on first start.
//! Every process that delivers must use the same pair (browsers subscribed with its public key).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use http::{HeaderName, HeaderValue, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use p256::{PublicKey, SecretKey};
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use sha2::Sha256;
use url::Url;

use super::outbound::{Outbound, Reply, SendError};

const KEY_FILE: &str = "vapid-private.pem";
/// Record size announced in the header; one record carries the whole (small) payload.
const RECORD_SIZE: u32 = 4096;
/// Largest plaintext a push service must accept (4096 bytes of body minus the header, tag and
/// delimiter); payloads are cut to fit.
pub const MAX_PLAINTEXT: usize = 3993;
/// How long a push service keeps a notification for a device that is offline.
const TTL_SECONDS: u32 = 24 * 3600;

/// The server's VAPID key pair.
pub struct VapidKey {
    secret: SecretKey,
    signing: EncodingKey,
    /// The uncompressed public point, base64url: what browsers pass as `applicationServerKey`.
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish()
    }
}

impl VapidKey {
    pub fn generate() -> VapidKey {
        VapidKey::from_secret(SecretKey::random(&mut OsRng))
    }

    fn from_secret(secret: SecretKey) -> VapidKey {
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("a P-256 key encodes as PKCS#8");
        let signing = EncodingKey::from_ec_pem(pem.as_bytes()).expect("a PKCS#8 P-256 key loads");
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        VapidKey {
            secret,
            signing,
            public,
        }
    }

    /// A key from PEM text (PKCS#8 `PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<VapidKey, String> {
        let pem = pem.replace("\\n", "\n");
        SecretKey::from_pkcs8_pem(pem.trim())
            .map(VapidKey::from_secret)
            .map_err(|e| format!("the VAPID private key is not a PKCS#8 P-256 key in PEM: {e}"))
    }

    /// `pem` when given, else the key in `data_dir`, generated when absent (the flag is true
    /// when it was just generated).
    pub fn load(pem: Option<&str>, data_dir: &Path) -> Result<(VapidKey, bool), String> {
        if let Some(pem) = pem {
            return Ok((VapidKey::from_pem(pem)?, false));
        }
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            let pem =
                fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
            return Ok((VapidKey::from_pem(&pem)?, false));
        }
        let key = VapidKey::generate();
        let pem = key
            .secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("encode the VAPID key: {e}"))?;
        fs::create_dir_all(data_dir).map_err(|e| format!("create {}: {e}", data_dir.display()))?;
        // Written aside and linked into place: a process starting at the same moment either
        // finds no file or a whole one, and the first link wins.
        let aside = data_dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&aside)
            .map_err(|e| format!("write {}: {e}", aside.display()))?;
        file.write_all(pem.as_bytes())
            .map_err(|e| format!("write {}: {e}", aside.display()))?;
        let linked = fs::hard_link(&aside, &path);
        let _ = fs::remove_file(&aside);
        match linked {
            Ok(()) => Ok((key, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                VapidKey::load(None, data_dir)
            }
            Err(e) => Err(format!("write {}: {e}", path.display())),
        }
    }

    /// The public key, base64url (uncompressed point).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push service.
    fn authorization(&self, endpoint: &Url, subject: &str) -> Result<String, String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: i64,
            sub: &'a str,
        }
        let claims = Claims {
            aud: endpoint.origin().ascii_serialization(),
            exp: time::OffsetDateTime::now_utc().unix_timestamp() + 12 * 3600,
            sub: subject,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)
            .map_err(|e| format!("cannot sign the VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

/// A browser's push subscription: where to send, and the keys to encrypt for.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub endpoint: Url,
    /// The browser's P-256 public key (uncompressed point).
    pub p256dh: PublicKey,
    /// The 16-byte authentication secret.
    pub auth: [u8; 16],
}

impl Subscription {
    /// Parse the keys of a `PushSubscription.toJSON()` (base64url, padded or not).
    pub fn parse(endpoint: Url, p256dh: &str, auth: &str) -> Result<Subscription, String> {
        let decode = |field: &str, text: &str| {
            URL_SAFE_NO_PAD
                .decode(text.trim().trim_end_matches('='))
                .map_err(|_| format!("keys.{field} is not base64url"))
        };
        let point = decode("p256dh", p256dh)?;
        let p256dh = PublicKey::from_sec1_bytes(&point)
            .map_err(|_| "keys.p256dh is not a P-256 public key".to_owned())?;
        let auth: [u8; 16] = decode("auth", auth)?
            .try_into()
            .map_err(|_| "keys.auth must be 16 bytes".to_owned())?;
        Ok(Subscription {
            endpoint,
            p256dh,
            auth,
        })
    }

    /// The keys as stored (base64url).
    pub fn keys_json(&self) -> serde_json::Value {
        serde_json::json!({
            "p256dh": URL_SAFE_NO_PAD.encode(self.p256dh.to_encoded_point(false).as_bytes()),
            "auth": URL_SAFE_NO_PAD.encode(self.auth),
        })
    }
}

/// `plaintext` encrypted for `subscription` as one `aes128gcm` record (RFC 8291 §3, RFC 8188
/// §2), with the given ephemeral key and salt.
pub fn encrypt(
    subscription: &Subscription,
    plaintext: &[u8],
    ephemeral: &SecretKey,
    salt: [u8; 16],
) -> Vec<u8> {
    let ua_public = subscription.p256dh.to_encoded_point(false);
    let as_public = ephemeral.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(
        ephemeral.to_nonzero_scalar(),
        subscription.p256dh.as_affine(),
    );
    let (cek, nonce) = content_keys(
        &subscription.auth,
        shared.raw_secret_bytes(),
        ua_public.as_bytes(),
        as_public.as_bytes(),
        &salt,
    );
    // The last (only) record ends with the delimiter 0x02 and no padding.
    let mut record = plaintext.to_vec();
    record.push(2);
    let sealed = Aes128Gcm::new_from_slice(&cek)
        .expect("16-byte key")
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .expect("AES-GCM seals any length this small");
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.as_bytes().len() as u8);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    body
}

/// The content encryption key and nonce of a message (RFC 8291 §3.3–3.4, RFC 8188 §2.2–2.3).
fn content_keys(
    auth: &[u8],
    shared: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> ([u8; 16], [u8; 12]) {
    // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32)
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared)
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF length");
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF length");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF length");
    (cek, nonce)
}

/// What a subscriber whose key is `ua_private` (and auth secret `auth`) reads of a push body
/// of one `aes128gcm` record: a browser's side of [`encrypt`], for receivers the benchmarks
/// run.
pub fn decrypt(ua_private: &SecretKey, auth: &[u8], body: &[u8]) -> Result<Vec<u8>, String> {
    let short = || "the body is shorter than its aes128gcm header".to_owned();
    let salt = body.get(..16).ok_or_else(short)?;
    let id_len = usize::from(*body.get(20).ok_or_else(short)?);
    let as_public = body.get(21..21 + id_len).ok_or_else(short)?;
    let sealed = &body[21 + id_len..];
    let sender = PublicKey::from_sec1_bytes(as_public)
        .map_err(|_| "the key id is not a P-256 public key".to_owned())?;
    let shared = p256::ecdh::diffie_hellman(ua_private.to_nonzero_scalar(), sender.as_affine());
    let ua_public = ua_private.public_key().to_encoded_point(false);
    let (cek, nonce) = content_keys(
        auth,
        shared.raw_secret_bytes(),
        ua_public.as_bytes(),
        as_public,
        salt,
    );
    let mut record = Aes128Gcm::new_from_slice(&cek)
        .expect("16-byte key")
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| "the record does not decrypt".to_owned())?;
    // Padding, then the last record's delimiter 0x02.
    while record.last() == Some(&0) {
        record.pop();
    }
    match record.pop() {
        Some(2) => Ok(record),
        _ => Err("the record does not end as a last record".into()),
    }
}

/// Send one notification to a subscription.
pub async fn send(
    outbound: &Outbound,
    vapid: &VapidKey,
    subject: &str,
    subscription: &Subscription,
    payload: &[u8],
) -> Result<Reply, SendError> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    if payload.len() > MAX_PLAINTEXT {
        // Cutting it would send broken JSON: the payload's maker keeps it within the limit.
        return Err(SendError::Failed(format!(
            "a push payload of {} bytes is over the {MAX_PLAINTEXT}-byte record",
            payload.len()
        )));
    }
    let body = encrypt(subscription, payload, &SecretKey::random(&mut OsRng), salt);
    let authorization = vapid
        .authorization(&subscription.endpoint, subject)
        .map_err(SendError::Failed)?;
    let headers = vec![
        (
            header::AUTHORIZATION,
            HeaderValue::try_from(authorization)
                .map_err(|e| SendError::Failed(format!("bad header: {e}")))?,
        ),
        (
            header::CONTENT_ENCODING,
            HeaderValue::from_static("aes128gcm"),
        ),
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (
            HeaderName::from_static("ttl"),
            HeaderValue::from(TTL_SECONDS),
        ),
        (
            HeaderName::from_static("urgency"),
            HeaderValue::from_static("high"),
        ),
    ];
    outbound.post(&subscription.endpoint, headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    /// RFC 8291 Appendix A.
    #[test]
    fn encrypts_the_rfc_example() {
        let ua_private =
            SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
        let subscription = Subscription {
            endpoint: Url::parse("https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV")
                .unwrap(),
            p256dh: ua_private.public_key(),
            auth: b64("BTBZMqHH6r4Tts7J_aSIgg").try_into().unwrap(),
        };
        let ephemeral =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let body = encrypt(
            &subscription,
            b"When I grow up, I want to be a watermelon",
            &ephemeral,
            b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap(),
        );
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYL\
             ocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWL\
             VWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn decrypts_the_rfc_example_and_refuses_a_changed_byte() {
        let ua_private =
            SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let mut body = b64(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYL\
             ocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWL\
             VWGNWQexSgSxsj_Qulcy4a-fN",
        );
        assert_eq!(
            decrypt(&ua_private, &auth, &body).unwrap(),
            b"When I grow up, I want to be a watermelon"
        );
        let last = body.len() - 1;
        body[last] ^= 1;
        assert!(decrypt(&ua_private, &auth, &body).is_err());
        assert!(decrypt(&ua_private, &auth, &body[..30]).is_err());
    }

    #[test]
    fn keys_round_trip_through_pem_and_subscriptions_parse() {
        let key = VapidKey::generate();
        let pem = key.secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(
            VapidKey::from_pem(&pem).unwrap().public_key(),
            key.public_key()
        );
        let endpoint = Url::parse("https://push.example.net/x").unwrap();
        let sub = Subscription::parse(endpoint.clone(), key.public_key(), "BTBZMqHH6r4Tts7J_aSIgg")
            .unwrap();
        assert_eq!(sub.keys_json()["p256dh"], key.public_key());
        assert!(Subscription::parse(endpoint.clone(), "AAAA", "BTBZMqHH6r4Tts7J_aSIgg").is_err());
        assert!(Subscription::parse(endpoint, key.public_key(), "AAAA").is_err());
    }
}
