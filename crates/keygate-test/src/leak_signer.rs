//! A stand-in for GitHub secret scanning: signs leak reports as it does.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

/// The DER of a P-256 SubjectPublicKeyInfo before its 65-byte point (RFC 5480).
const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A fresh ECDSA P-256 key that signs leak reports the way GitHub signs them
/// (SHA-256, ASN.1 DER, base64), and writes its entry of GitHub's key file.
pub struct LeakSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for LeakSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakSigner").finish_non_exhaustive()
    }
}

impl Default for LeakSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl LeakSigner {
    /// A new random key.
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("the key reads back");
        Self { key, rng }
    }

    /// The public key as PEM `PUBLIC KEY` (SPKI), 64 characters a line.
    pub fn pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.key.public_key().as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// GitHub's key file listing this key as `key_identifier` (current).
    pub fn key_file(&self, key_identifier: &str) -> serde_json::Value {
        serde_json::json!({"public_keys": [
            {"key_identifier": key_identifier, "key": self.pem(), "is_current": true},
        ]})
    }

    /// The `Github-Public-Key-Signature` of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let sig = self.key.sign(&self.rng, body).expect("a signature");
        base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
    }
}
