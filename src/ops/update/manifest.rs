//! The release manifest and its signatures: what a signed manifest and an artefact's
//! signature cover, checking them, and making them (`branchd release sign`).

use std::collections::BTreeMap;

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{BUILTIN_PUBLIC_KEY, UpdateError};
use crate::config::Config;
pub use crate::config::parse_public_key;

const MANIFEST_DOMAIN: &[u8] = b"branchd-manifest-v1\n";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub artifacts: BTreeMap<String, Artifact>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    pub url: String,
    pub sha256: String,
    pub size: u64,
    pub signature: String,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: Option<&'a serde_json::value::RawValue>,
    signature: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn parse_signature(text: &str) -> Result<Signature, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| "signature is not base64".to_string())?;
    Signature::from_slice(&bytes).map_err(|_| "signature is not 64 bytes".to_string())
}

/// The key manifests must be signed with: `update_public_key`, else the built-in one.
pub fn public_key(config: &Config) -> Result<VerifyingKey, UpdateError> {
    let text = config.update_public_key.as_deref().unwrap_or(BUILTIN_PUBLIC_KEY);
    parse_public_key(text).map_err(UpdateError::BadPublicKey)
}

/// Where the manifest comes from: the flag, `update_url`, else the hub's `/updates/`.
pub fn manifest_url(config: &Config, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| config.update_url.clone())
        .or_else(|| config.upstream_url.as_ref().map(|u| format!("{}/updates/manifest.json", u.trim_end_matches('/'))))
}

/// What the artefact signature covers.
pub fn artifact_message(version: &str, target: &str, sha256_hex: &str) -> String {
    format!("branchd-artifact-v1\n{version}\n{target}\n{}\n", sha256_hex.to_ascii_lowercase())
}

/// Checks the envelope's signature and returns the manifest it vouches for.
pub fn verify_manifest(bytes: &[u8], key: &VerifyingKey) -> Result<Manifest, String> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| format!("manifest is not JSON of the expected shape: {e}"))?;
    let signed = env.signed.ok_or("manifest has no `signed` part")?;
    let sig = env.signature.filter(|s| !s.is_empty()).ok_or("manifest is not signed: refusing it")?;
    let sig = parse_signature(&sig).map_err(|e| format!("manifest {e}"))?;
    let mut msg = MANIFEST_DOMAIN.to_vec();
    msg.extend_from_slice(signed.get().as_bytes());
    key.verify_strict(&msg, &sig)
        .map_err(|_| "manifest signature does not match the release key: refusing it (wrong key or altered manifest)".to_string())?;
    let m: Manifest = serde_json::from_str(signed.get()).map_err(|e| format!("signed manifest has a bad shape: {e}"))?;
    semver::Version::parse(&m.version).map_err(|e| format!("manifest version {} is not semver: {e}", m.version))?;
    Ok(m)
}

/// Checks that the release key signed `sha256_hex` as `target`'s build of `version`.
pub fn verify_artifact(a: &Artifact, version: &str, target: &str, sha256_hex: &str, key: &VerifyingKey) -> Result<(), String> {
    let sig = parse_signature(&a.signature).map_err(|e| format!("artefact {e}"))?;
    key.verify_strict(artifact_message(version, target, sha256_hex).as_bytes(), &sig)
        .map_err(|_| format!("the signature of the {target} build does not match its contents: refusing it"))
}

/// Signs a manifest (for `branchd release sign` and tests): returns the envelope's JSON.
pub fn sign_manifest(m: &Manifest, key: &SigningKey) -> String {
    let signed = serde_json::to_string_pretty(m).unwrap_or_default();
    let mut msg = MANIFEST_DOMAIN.to_vec();
    msg.extend_from_slice(signed.as_bytes());
    let sig = key.sign(&msg);
    format!("{{\n\"signed\": {signed},\n\"signature\": \"{}\"\n}}\n", b64(&sig.to_bytes()))
}

/// Signs one artefact's contents.
pub fn sign_artifact(version: &str, target: &str, sha256_hex: &str, key: &SigningKey) -> String {
    b64(&key.sign(artifact_message(version, target, sha256_hex).as_bytes()).to_bytes())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::ops::update::TARGET;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn manifest(version: &str, data: &[u8], k: &SigningKey) -> Manifest {
        let sha = hex::encode(Sha256::digest(data));
        let a =
            Artifact { url: "b".into(), sha256: sha.clone(), size: data.len() as u64, signature: sign_artifact(version, TARGET, &sha, k) };
        Manifest { version: version.into(), released_at: None, notes: None, artifacts: BTreeMap::from([(TARGET.to_string(), a)]) }
    }

    #[test]
    fn signed_manifest_round_trips_and_tampering_is_refused() {
        let k = key();
        let m = manifest("9.0.0", b"binary", &k);
        let text = sign_manifest(&m, &k);
        let got = verify_manifest(text.as_bytes(), &k.verifying_key()).unwrap();
        assert_eq!(got.version, "9.0.0");
        let a = &got.artifacts[TARGET];
        verify_artifact(a, "9.0.0", TARGET, &a.sha256, &k.verifying_key()).unwrap();
        // Another target or version under the same signature: refused.
        assert!(verify_artifact(a, "9.0.1", TARGET, &a.sha256, &k.verifying_key()).is_err());
        assert!(verify_artifact(a, "9.0.0", "other-target", &a.sha256, &k.verifying_key()).is_err());
        // Altered manifest, other key, no signature.
        let altered = text.replace("9.0.0", "9.0.1");
        assert!(verify_manifest(altered.as_bytes(), &k.verifying_key()).is_err());
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(verify_manifest(text.as_bytes(), &other.verifying_key()).is_err());
        let unsigned = format!("{{\"signed\": {}}}", serde_json::to_string(&m).unwrap());
        assert!(verify_manifest(unsigned.as_bytes(), &k.verifying_key()).unwrap_err().contains("not signed"));
    }

    #[test]
    fn builtin_key_parses() {
        parse_public_key(BUILTIN_PUBLIC_KEY).unwrap();
    }
}
