//! `branchd release keygen|sign|public-key`: the publisher's side of updates. `sign` makes a
//! directory a hub can serve as is (`DATA_DIR/updates/`): `manifest.json` plus one
//! `branchd-VERSION-TARGET` file per build, with relative URLs.

use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::SigningKey;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::OpsError;
use super::update::{Artifact, Manifest, sign_artifact, sign_manifest};

#[derive(Debug, clap::Subcommand)]
pub enum ReleaseCmd {
    /// Make a new release signing key (private key to FILE, mode 0600; public key printed)
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key of a signing key (for update_public_key or BRANCHD_RELEASE_PUBLIC_KEY)
    PublicKey {
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Sign a release: copies the builds into DIR and writes DIR/manifest.json
    Sign {
        /// Private key made by `branchd release keygen`
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Version of the builds (semver, newer than what the branches run)
        #[arg(long)]
        version: String,
        /// A build: TARGET=FILE, e.g. aarch64-unknown-linux-gnu=target/aarch64-unknown-linux-gnu/release/branchd
        #[arg(long = "artifact", value_name = "TARGET=FILE", required = true)]
        artifacts: Vec<String>,
        /// Output directory (e.g. a hub's /var/lib/branchd/updates)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Release notes shown by `branchd update --check`
        #[arg(long)]
        notes: Option<String>,
    },
}

fn read_key(path: &Path) -> Result<SigningKey, OpsError> {
    let text = std::fs::read_to_string(path).map_err(|e| OpsError::Usage(format!("cannot read key {}: {e}", path.display())))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| OpsError::Usage(format!("{} is not a key made by `branchd release keygen`", path.display())))?;
    let seed: [u8; 32] =
        bytes.try_into().map_err(|_| OpsError::Usage(format!("{} is not a key made by `branchd release keygen`", path.display())))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn public(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes())
}

pub fn run(cmd: ReleaseCmd) -> Result<(), OpsError> {
    match cmd {
        ReleaseCmd::Keygen { out } => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let key = SigningKey::from_bytes(&seed);
            let text = base64::engine::general_purpose::STANDARD.encode(seed);
            crate::secrets::write_private(&out, &format!("{text}\n"))
                .map_err(|e| OpsError::Usage(format!("cannot write {} ({e}); it must not exist yet", out.display())))?;
            println!("private key written to {} (keep it offline); public key:", out.display());
            println!("{}", public(&key));
        }
        ReleaseCmd::PublicKey { key } => println!("{}", public(&read_key(&key)?)),
        ReleaseCmd::Sign { key, version, artifacts, out, notes } => {
            let key = read_key(&key)?;
            semver::Version::parse(&version).map_err(|e| OpsError::Usage(format!("--version {version}: {e}")))?;
            std::fs::create_dir_all(&out)?;
            let mut m =
                Manifest { version: version.clone(), released_at: Some(crate::store::now_rfc3339()), notes, artifacts: Default::default() };
            for spec in artifacts {
                let Some((target, file)) = spec.split_once('=') else {
                    return Err(OpsError::Usage(format!("--artifact {spec} is not TARGET=FILE")));
                };
                let data = std::fs::read(file).map_err(|e| OpsError::Usage(format!("cannot read build {file}: {e}")))?;
                let sha = hex::encode(Sha256::digest(&data));
                let name = format!("branchd-{version}-{target}");
                crate::fsutil::write_atomic(&out.join(&name), &data)?;
                let signature = sign_artifact(&version, target, &sha, &key);
                println!("{target}: {name} ({} bytes, sha256 {sha})", data.len());
                m.artifacts.insert(target.to_string(), Artifact { url: name, sha256: sha, size: data.len() as u64, signature });
            }
            crate::fsutil::write_atomic(&out.join("manifest.json"), sign_manifest(&m, &key).as_bytes())?;
            println!("signed manifest for {version} written to {}", out.join("manifest.json").display());
            println!("public key: {}", public(&key));
        }
    }
    Ok(())
}
