//! The key pair that signs and verifies tokens, and the one algorithm it implies.
//!
//! The algorithm comes from the configured key, never from a token's header: an Ed25519 key
//! means EdDSA, an RSA key (at least 2048 bits) means RS256. Keys come from `JWT_PUBLIC_KEY`
//! / `JWT_PRIVATE_KEY` (PEM text) or, when those are unset, from the data directory, where an
//! Ed25519 pair is generated on first use.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Smallest RSA modulus accepted for RS256.
const MIN_RSA_BITS: usize = 2048;
const PRIVATE_FILE: &str = "jwt-ed25519-private.pem";
const PUBLIC_FILE: &str = "jwt-ed25519-public.pem";

#[derive(Debug)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

fn key_error(what: impl std::fmt::Display) -> impl FnOnce(jsonwebtoken::errors::Error) -> KeyError {
    let what = what.to_string();
    move |e| KeyError(format!("{what}: {e}"))
}

pub struct SigningKeys {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    /// Where the keys came from, for the startup log.
    pub source: String,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.encoding.is_some())
            .field("source", &self.source)
            .finish()
    }
}

impl SigningKeys {
    /// Keys from PEM text. Without a private key the server verifies but cannot mint.
    pub fn from_pem(
        public: &str,
        private: Option<&str>,
        source: String,
    ) -> Result<SigningKeys, KeyError> {
        let public = unescape_newlines(public);
        let private = private.map(unescape_newlines);
        let (algorithm, decoding) = if ed25519_dalek::VerifyingKey::from_public_key_pem(&public)
            .is_ok()
        {
            let key =
                DecodingKey::from_ed_pem(public.as_bytes()).map_err(key_error("JWT_PUBLIC_KEY"))?;
            (Algorithm::EdDSA, key)
        } else {
            let rsa = rsa::RsaPublicKey::from_public_key_pem(&public)
                .or_else(|_| rsa::pkcs1::DecodeRsaPublicKey::from_pkcs1_pem(&public))
                .map_err(|_| {
                    KeyError(
                        "JWT_PUBLIC_KEY is neither an Ed25519 nor an RSA public key in PEM form"
                            .into(),
                    )
                })?;
            let bits = rsa.n().bits();
            if bits < MIN_RSA_BITS {
                return Err(KeyError(format!(
                    "JWT_PUBLIC_KEY is a {bits}-bit RSA key; RS256 needs at least {MIN_RSA_BITS} bits"
                )));
            }
            let key = DecodingKey::from_rsa_pem(public.as_bytes())
                .map_err(key_error("JWT_PUBLIC_KEY"))?;
            (Algorithm::RS256, key)
        };
        let encoding = match (&private, algorithm) {
            (None, _) => None,
            (Some(pem), Algorithm::EdDSA) => Some(
                EncodingKey::from_ed_pem(pem.as_bytes()).map_err(key_error("JWT_PRIVATE_KEY"))?,
            ),
            (Some(pem), _) => Some(
                EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(key_error("JWT_PRIVATE_KEY"))?,
            ),
        };
        let keys = SigningKeys {
            algorithm,
            decoding,
            encoding,
            source,
        };
        keys.check_pair()?;
        Ok(keys)
    }

    /// `JWT_PUBLIC_KEY`/`JWT_PRIVATE_KEY` when set, else the pair in `data_dir` (generated
    /// when absent). The flag is true when a pair was just generated.
    pub fn load(
        public: Option<&str>,
        private: Option<&str>,
        data_dir: &Path,
    ) -> Result<(SigningKeys, bool), KeyError> {
        if let Some(public) = public {
            return Ok((
                SigningKeys::from_pem(public, private, "JWT_PUBLIC_KEY".into())?,
                false,
            ));
        }
        if private.is_some() {
            return Err(KeyError(
                "JWT_PRIVATE_KEY is set without JWT_PUBLIC_KEY".into(),
            ));
        }
        let private_path = data_dir.join(PRIVATE_FILE);
        let public_path = data_dir.join(PUBLIC_FILE);
        let generated = !private_path.exists();
        if generated {
            generate_ed25519(data_dir, &private_path, &public_path)?;
        }
        let read = |p: &PathBuf| {
            fs::read_to_string(p).map_err(|e| KeyError(format!("read {}: {e}", p.display())))
        };
        let keys = SigningKeys::from_pem(
            &read(&public_path)?,
            Some(&read(&private_path)?),
            data_dir.display().to_string(),
        )?;
        Ok((keys, generated))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    pub fn sign(&self, claims: &impl Serialize) -> Result<String, KeyError> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            KeyError(
                "no private key is configured (JWT_PRIVATE_KEY), so tokens cannot be signed here"
                    .into(),
            )
        })?;
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, key)
            .map_err(key_error("sign token"))
    }

    /// Verify signature and time claims under the pinned algorithm.
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<C, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(self.algorithm);
        // `exp` is required unless the token names a key (`jti`); the caller checks that.
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 30;
        jsonwebtoken::decode::<C>(token, &self.decoding, &validation).map(|data| data.claims)
    }

    /// A private key that does not belong to the public key would mint tokens nobody accepts.
    fn check_pair(&self) -> Result<(), KeyError> {
        if self.encoding.is_none() {
            return Ok(());
        }
        let probe = self.sign(&serde_json::json!({ "sub": "probe" }))?;
        self.verify::<serde_json::Value>(&probe)
            .map(drop)
            .map_err(|_| KeyError("JWT_PRIVATE_KEY does not belong to JWT_PUBLIC_KEY".into()))
    }
}

/// PEM in an environment variable is often written with literal `\n`.
fn unescape_newlines(pem: &str) -> String {
    pem.replace("\\n", "\n").trim().to_owned() + "\n"
}

fn generate_ed25519(
    data_dir: &Path,
    private_path: &Path,
    public_path: &Path,
) -> Result<(), KeyError> {
    let io = |what: &str, e: std::io::Error| KeyError(format!("{what}: {e}"));
    fs::create_dir_all(data_dir).map_err(|e| io("create data directory", e))?;
    let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    // PKCS#8 v1 (no embedded public key): readable by OpenSSL as well as by jsonwebtoken.
    let private = KeypairBytes {
        secret_key: signing.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| KeyError(format!("encode private key: {e}")))?;
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError(format!("encode public key: {e}")))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(private_path)
        .map_err(|e| io("write private key", e))?;
    file.write_all(private.as_bytes())
        .map_err(|e| io("write private key", e))?;
    fs::write(public_path, public).map_err(|e| io("write public key", e))?;
    Ok(())
}
