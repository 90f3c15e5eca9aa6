//! Installing a release: the artefact is checked against the signed manifest before and
//! after the download, tried (`version --json`), and renamed over the running binary, the
//! old one kept as `branchd.previous`; then the restart and the health gate.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::fetch::{Source, fetch};
use super::health::{gate_or_rollback, restart, restart_command};

use super::manifest::{Artifact, Manifest, public_key, verify_artifact};
use super::{PENDING_FILE, Pending, TARGET, UpdateArgs, UpdateError};
use crate::config::Config;

const MAX_ARTIFACT: u64 = 512 << 20;

pub(super) fn binary_paths(args: &UpdateArgs) -> Result<(PathBuf, PathBuf), UpdateError> {
    let bin = args.binary.clone().map_or_else(std::env::current_exe, Ok).and_then(|p| p.canonicalize()).map_err(UpdateError::NoBinary)?;
    let name = bin.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "branchd".into());
    let previous = bin.with_file_name(format!("{name}.previous"));
    Ok((bin, previous))
}

/// `--apply`: download and check the artefact, install it, restart, and hold the new
/// version to the health gate.
pub(super) async fn apply(config: &Config, args: &UpdateArgs, src: &Source, m: &Manifest) -> Result<(), UpdateError> {
    let key = public_key(config)?;
    let a = vouched_artifact(m, &key)?;
    let (bin, previous) = binary_paths(args)?;
    let dir = bin.parent().unwrap_or(Path::new("/")).to_path_buf();
    let download = dir.join(format!(".branchd.update-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o755);
    }
    let file = opts.open(&download).map_err(|source| UpdateError::NotWritable { binary: bin.clone(), source })?;
    let cleanup = |e: UpdateError| {
        let _ = std::fs::remove_file(&download);
        e
    };
    download_checked(src, m, a, &key, file).await.map_err(cleanup)?;
    trial_run(&download, &m.version).await.map_err(cleanup)?;
    let pending = install(config, m, &download, &bin, &previous).map_err(cleanup)?;
    println!("installed branchd {} at {} (the previous version is kept as {})", m.version, bin.display(), previous.display());
    tracing::info!(from = crate::VERSION, to = %m.version, binary = %bin.display(), "update installed");

    let Some(cmd) = restart_command(args) else {
        println!(
            "branchd does not run under systemd here: restart it yourself, then run `branchd update --confirm` \
             (it rolls back unless the new version reports healthy within {} s)",
            args.health_timeout
        );
        return Ok(());
    };
    restart(&cmd).await?;
    gate_or_rollback(config, args, &pending, Some(&cmd)).await
}

/// This target's artefact in `m`, once the release key vouches for its declared digest
/// (before anything is downloaded).
fn vouched_artifact<'m>(m: &'m Manifest, key: &VerifyingKey) -> Result<&'m Artifact, UpdateError> {
    let Some(a) = m.artifacts.get(TARGET) else {
        let have: Vec<&str> = m.artifacts.keys().map(String::as_str).collect();
        return Err(UpdateError::NoBuild { version: m.version.clone(), target: TARGET.into(), have: have.join(", ") });
    };
    if a.size > MAX_ARTIFACT {
        return Err(UpdateError::ArtifactTooLarge { target: TARGET.into(), size: a.size });
    }
    verify_artifact(a, &m.version, TARGET, &a.sha256, key).map_err(UpdateError::BadSignature)?;
    Ok(a)
}

/// Downloads `a` into `file` (new, executable, next to the binary; flushed) and checks its
/// size, sha256 and signature. The caller removes the file when this fails.
async fn download_checked(
    src: &Source,
    m: &Manifest,
    a: &Artifact,
    key: &VerifyingKey,
    mut file: std::fs::File,
) -> Result<(), UpdateError> {
    let asrc = src.join(&a.url)?;
    eprintln!("downloading branchd {} for {TARGET} from {}", m.version, asrc.show());
    let mut hasher = HashingWriter { inner: &mut file, hash: Sha256::new() };
    let label = format!("branchd {}", m.version);
    let got = fetch(&asrc, a.size, Some(&label), &mut hasher).await?;
    let digest = hex::encode(hasher.hash.finalize());
    file.sync_all().map_err(UpdateError::WriteDownload)?;
    drop(file);
    if got != a.size {
        return Err(UpdateError::SizeMismatch { got, want: a.size });
    }
    if !digest.eq_ignore_ascii_case(&a.sha256) {
        return Err(UpdateError::DigestMismatch { got: digest, want: a.sha256.clone() });
    }
    verify_artifact(a, &m.version, TARGET, &digest, key).map_err(UpdateError::BadSignature)?;
    eprintln!("verified: sha256 {digest}, ed25519 signature ok");
    Ok(())
}

/// Keeps the current binary as `previous`, records the pending update, and renames the
/// download over `bin`.
fn install(config: &Config, m: &Manifest, download: &Path, bin: &Path, previous: &Path) -> Result<Pending, UpdateError> {
    let dir = bin.parent().unwrap_or(Path::new("/"));
    let prev_tmp = dir.join(format!(".branchd.previous-{}", std::process::id()));
    let keep = std::fs::copy(bin, &prev_tmp)
        .and_then(|_| std::fs::File::open(&prev_tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&prev_tmp, previous));
    if let Err(e) = keep {
        let _ = std::fs::remove_file(&prev_tmp);
        return Err(UpdateError::KeepPrevious { previous: previous.to_path_buf(), source: e });
    }
    let pending = Pending {
        from: crate::VERSION.into(),
        to: m.version.clone(),
        binary: bin.to_path_buf(),
        previous: previous.to_path_buf(),
        installed_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    let _ = std::fs::create_dir_all(&config.data_dir);
    let _ =
        crate::fsutil::write_atomic(&config.data_dir.join(PENDING_FILE), serde_json::to_string(&pending).unwrap_or_default().as_bytes());
    std::fs::rename(download, bin).map_err(|source| UpdateError::Replace { binary: bin.to_path_buf(), source })?;
    crate::fsutil::sync_dir(dir);
    Ok(pending)
}

struct HashingWriter<'a> {
    inner: &'a mut std::fs::File,
    hash: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Runs the downloaded binary's `version --json`: it must start on this machine and be the
/// version the manifest promised.
async fn trial_run(bin: &Path, version: &str) -> Result<(), UpdateError> {
    let run = tokio::process::Command::new(bin)
        .args(["version", "--json"])
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(UpdateError::TrialDoesNotStart(e)),
        Err(_) => return Err(UpdateError::TrialTimedOut),
    };
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if !out.status.success() || v["version"].as_str() != Some(version) {
        return Err(UpdateError::TrialWrongVersion {
            said: v["version"].as_str().unwrap_or("unknown").into(),
            exit: out.status.to_string(),
            want: version.into(),
        });
    }
    Ok(())
}
