//! `UpdateError`: what went wrong checking for, installing or rolling back an update, one
//! variant per case, so that callers (and tests) can tell them apart.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    // Usage and configuration (exit code 2).
    #[error("no update source: set update_url (BRANCHD_UPDATE_URL) or upstream_url, or pass --url")]
    NoSource,
    #[error("update URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("artefact URL {url}: {reason}")]
    BadArtifactUrl { url: String, reason: String },
    #[error("update_public_key: {0}")]
    BadPublicKey(String),

    // Fetching.
    #[error("cannot make an HTTP client: {0}")]
    Client(String),
    #[error("cannot reach {url}: {reason} (check the network and update_url)")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered {status}: nothing published there yet?")]
    NotPublished { url: String, status: reqwest::StatusCode },
    #[error("download from {url} broke: {reason}")]
    DownloadBroke { url: String, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the download: {0}")]
    WriteDownload(std::io::Error),
    #[error("{what} is larger than expected ({cap} bytes): refusing it")]
    TooLarge { what: String, cap: u64 },

    // The signed manifest and the artefact.
    #[error("{source_name}: {reason}")]
    BadManifest { source_name: String, reason: String },
    #[error("manifest version: {0}")]
    BadVersion(String),
    #[error("own version: {0}")]
    OwnVersion(String),
    #[error(
        "refusing: the manifest offers {offered} which is older than the running {running} (downgrades are not installed; use --rollback)"
    )]
    Downgrade { offered: String, running: String },
    #[error("release {version} has no build for {target} (it has: {have})")]
    NoBuild { version: String, target: String, have: String },
    #[error("the {target} build claims {size} bytes: refusing it")]
    ArtifactTooLarge { target: String, size: u64 },
    #[error("{0}")]
    BadSignature(String),
    #[error("downloaded {got} bytes, the manifest says {want}: refusing it")]
    SizeMismatch { got: u64, want: u64 },
    #[error("sha256 of the download is {got}, the signed manifest says {want}: refusing it (altered or damaged)")]
    DigestMismatch { got: String, want: String },

    // Installing.
    #[error("cannot find this program's file: {0}")]
    NoBinary(std::io::Error),
    #[error("cannot write next to {} ({source}): run it as root: sudo branchd update --apply", binary.display())]
    NotWritable { binary: PathBuf, source: std::io::Error },
    #[error("the new binary does not start here ({0}): wrong architecture? nothing was installed")]
    TrialDoesNotStart(std::io::Error),
    #[error("the new binary did not answer `version --json` within 20 s: nothing was installed")]
    TrialTimedOut,
    #[error("the new binary says it is {said} (exit {exit}), not {want}: nothing was installed")]
    TrialWrongVersion { said: String, exit: String, want: String },
    #[error("cannot keep the current binary as {}: {source}", previous.display())]
    KeepPrevious { previous: PathBuf, source: std::io::Error },
    #[error("cannot replace {}: {source}", binary.display())]
    Replace { binary: PathBuf, source: std::io::Error },

    // Restart, health gate, rollback.
    #[error("cannot run `{command}`: {source}")]
    Restart { command: String, source: std::io::Error },
    #[error("`{0}` did not finish within 120 s")]
    RestartTimedOut(String),
    #[error("{} is missing: cannot roll back; reinstall the package", previous.display())]
    NoPrevious { previous: PathBuf },
    #[error("cannot put {} back as {}: {source}", previous.display(), binary.display())]
    PutBack { previous: PathBuf, binary: PathBuf, source: std::io::Error },
    /// The new version failed the health gate and the previous one is back, but nothing
    /// restarts it here.
    #[error("rolled back to {0}: restart branchd now (sudo systemctl restart branchd)")]
    RolledBackRestartNeeded(String),
    /// The new version failed the health gate; the previous one was put back and restarted
    /// (`after` says whether it is healthy).
    #[error("update to {to} failed its health check and was rolled back; {after}")]
    RolledBack { to: String, after: String },
    #[error("rolled back, but it does not report healthy: {0}")]
    UnhealthyAfterRollback(String),
}

impl UpdateError {
    /// The process exit code: 2 for usage and configuration (SPEC §1), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            UpdateError::NoSource | UpdateError::BadUrl { .. } | UpdateError::BadArtifactUrl { .. } | UpdateError::BadPublicKey(_) => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UpdateError;

    #[test]
    fn usage_is_told_from_failure() {
        assert_eq!(UpdateError::NoSource.exit_code(), 2);
        assert_eq!(UpdateError::BadPublicKey("not base64".into()).exit_code(), 2);
        assert_eq!(UpdateError::SizeMismatch { got: 1, want: 2 }.exit_code(), 1);
        let e = UpdateError::Downgrade { offered: "0.1.0".into(), running: "0.2.0".into() };
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("older than the running 0.2.0"), "{e}");
    }
}
