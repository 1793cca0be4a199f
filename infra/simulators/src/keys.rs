//! Signing keys of the simulated issuer: generated once, kept as PKCS#8 files in a state folder
//! so the simulator, `scripts/dev-token` and the tests all sign with the same keys.

use std::{fs, io, path::Path};

use aws_lc_rs::{
    digest,
    signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

/// One signing key: its id, algorithm, private key for jsonwebtoken and public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// Raw public key bytes (the uncompressed point for P-256), e.g. for key-confusion tests.
    pub public_key: Vec<u8>,
}

impl SigningKey {
    /// A fresh P-256 key that lives only in memory (for "unknown key" cases).
    pub fn generate_es256() -> io::Result<Self> {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(io::Error::other)?;
        let der = pair.to_pkcs8v1().map_err(io::Error::other)?;
        Self::es256_from_pkcs8(der.as_ref())
    }

    fn es256_from_pkcs8(der: &[u8]) -> io::Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(io::Error::other)?;
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = point[1..].split_at(32);
        let kid = key_id(&point);
        Ok(Self {
            jwk: json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
            kid,
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(der),
            public_key: point,
        })
    }

    fn ed25519_from_pkcs8(der: &[u8]) -> io::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(io::Error::other)?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = key_id(&public);
        Ok(Self {
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                        "x": URL_SAFE_NO_PAD.encode(&public)}),
            kid,
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(der),
            public_key: public,
        })
    }
}

fn key_id(public: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, public);
    hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The issuer's key ring: an ES256 key (what Stack Auth signs with) and an EdDSA key.
#[derive(Clone)]
pub struct KeyRing {
    pub es256: SigningKey,
    pub ed25519: SigningKey,
}

impl KeyRing {
    /// Loads the keys from `dir`, generating and saving any that are missing.
    pub fn load_or_create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let es256 = load_or_generate(&dir.join("stack-auth-es256.pk8"), || {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(io::Error::other)?;
            Ok(pair
                .to_pkcs8v1()
                .map_err(io::Error::other)?
                .as_ref()
                .to_vec())
        })?;
        let ed = load_or_generate(&dir.join("stack-auth-ed25519.pk8"), || {
            let pair = Ed25519KeyPair::generate().map_err(io::Error::other)?;
            Ok(pair.to_pkcs8().map_err(io::Error::other)?.as_ref().to_vec())
        })?;
        Ok(Self {
            es256: SigningKey::es256_from_pkcs8(&es256)?,
            ed25519: SigningKey::ed25519_from_pkcs8(&ed)?,
        })
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.es256.jwk, self.ed25519.jwk] })
    }

    pub fn by_algorithm(&self, algorithm: Algorithm) -> Option<&SigningKey> {
        [&self.es256, &self.ed25519]
            .into_iter()
            .find(|k| k.algorithm == algorithm)
    }
}

fn load_or_generate(
    path: &Path,
    generate: impl FnOnce() -> io::Result<Vec<u8>>,
) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let bytes = generate()?;
            // Write then rename, so a concurrent reader never sees half a key.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            fs::write(&tmp, &bytes)?;
            fs::rename(&tmp, path)?;
            fs::read(path)
        }
        Err(err) => Err(err),
    }
}
