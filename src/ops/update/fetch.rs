//! Reading a manifest or an artefact from a URL or a local file (a USB stick), with a
//! size cap and progress on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::manifest::{Manifest, manifest_url, public_key, verify_manifest};
use super::{TARGET, UpdateError};
use crate::config::Config;

const MAX_MANIFEST: u64 = 1 << 20;

/// A manifest or artefact location: a URL, or a path on this machine.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Http(reqwest::Url),
    File(PathBuf),
}

impl Source {
    fn parse(s: &str) -> Result<Source, UpdateError> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return reqwest::Url::parse(s).map(Source::Http).map_err(|e| UpdateError::BadUrl { url: s.into(), reason: e.to_string() });
        }
        Ok(Source::File(PathBuf::from(s.strip_prefix("file://").unwrap_or(s))))
    }

    /// `rel` relative to this source (an artefact's `url` relative to its manifest).
    pub(super) fn join(&self, rel: &str) -> Result<Source, UpdateError> {
        if rel.starts_with("http://") || rel.starts_with("https://") || rel.starts_with("file://") {
            return Source::parse(rel);
        }
        match self {
            Source::Http(u) => {
                u.join(rel).map(Source::Http).map_err(|e| UpdateError::BadArtifactUrl { url: rel.into(), reason: e.to_string() })
            }
            Source::File(p) => Ok(Source::File(p.parent().unwrap_or(Path::new("/")).join(rel))),
        }
    }

    pub(super) fn show(&self) -> String {
        match self {
            Source::Http(u) => u.to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

pub(super) fn client() -> Result<reqwest::Client, UpdateError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(format!("branchd/{} ({TARGET})", crate::VERSION))
        .build()
        .map_err(|e| UpdateError::Client(e.to_string()))
}

/// Reads `src` into `sink` (at most `cap` bytes), reporting progress when `label` is set.
pub(super) async fn fetch(src: &Source, cap: u64, label: Option<&str>, sink: &mut (dyn Write + Send)) -> Result<u64, UpdateError> {
    let too_big = || UpdateError::TooLarge { what: src.show(), cap };
    let io = UpdateError::WriteDownload;
    let mut progress = Progress::new(label, cap);
    match src {
        Source::File(p) => {
            let read = |e| UpdateError::Read { path: p.clone(), source: e };
            let mut f = std::fs::File::open(p).map_err(read)?;
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf).map_err(read)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                if total > cap {
                    return Err(too_big());
                }
                sink.write_all(&buf[..n]).map_err(io)?;
                progress.at(total);
            }
            progress.done(total);
            Ok(total)
        }
        Source::Http(url) => {
            let mut res = client()?
                .get(url.clone())
                .send()
                .await
                .map_err(|e| UpdateError::Unreachable { url: url.to_string(), reason: e.to_string() })?;
            if !res.status().is_success() {
                return Err(UpdateError::NotPublished { url: url.to_string(), status: res.status() });
            }
            if res.content_length().is_some_and(|n| n > cap) {
                return Err(too_big());
            }
            let mut total = 0u64;
            while let Some(chunk) =
                res.chunk().await.map_err(|e| UpdateError::DownloadBroke { url: url.to_string(), reason: e.to_string() })?
            {
                total += chunk.len() as u64;
                if total > cap {
                    return Err(too_big());
                }
                sink.write_all(&chunk).map_err(io)?;
                progress.at(total);
            }
            progress.done(total);
            Ok(total)
        }
    }
}

/// Download progress on stderr: a line every 10 %.
struct Progress<'a> {
    label: Option<&'a str>,
    total: u64,
    next: u64,
}

impl<'a> Progress<'a> {
    fn new(label: Option<&'a str>, total: u64) -> Self {
        Progress { label, total: total.max(1), next: 10 }
    }
    fn at(&mut self, n: u64) {
        let Some(label) = self.label else { return };
        let pct = n * 100 / self.total;
        if pct >= self.next && pct < 100 {
            eprintln!("{label}: {pct}% ({:.1} of {:.1} MB)", n as f64 / 1e6, self.total as f64 / 1e6);
            self.next = pct / 10 * 10 + 10;
        }
    }
    fn done(&self, n: u64) {
        if let Some(label) = self.label {
            eprintln!("{label}: 100% ({:.1} MB)", n as f64 / 1e6);
        }
    }
}

/// Fetches and verifies the manifest.
pub(super) async fn fetch_manifest(config: &Config, flag: Option<&str>) -> Result<(Source, Manifest), UpdateError> {
    let Some(url) = manifest_url(config, flag) else {
        return Err(UpdateError::NoSource);
    };
    let key = public_key(config)?;
    let src = Source::parse(&url)?;
    let mut bytes = Vec::new();
    fetch(&src, MAX_MANIFEST, None, &mut bytes).await?;
    let m = verify_manifest(&bytes, &key).map_err(|reason| UpdateError::BadManifest { source_name: src.show(), reason })?;
    Ok((src, m))
}
