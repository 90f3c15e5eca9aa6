//! `branchd update --check|--apply|--confirm|--rollback` (SPEC §7): signed releases,
//! atomic install, restart through systemd, and rollback when the new version does not
//! report healthy in time.
//!
//! A release manifest is JSON:
//! ```json
//! {"signed": {"version": "0.2.0", "releasedAt": "…", "notes": "…",
//!             "artifacts": {"aarch64-unknown-linux-gnu": {"url": "branchd-0.2.0-aarch64-unknown-linux-gnu",
//!                                                         "sha256": "…", "size": 123, "signature": "…"}}},
//!  "signature": "base64 ed25519 over b\"branchd-manifest-v1\\n\" + the exact bytes of `signed`"}
//! ```
//! Each artefact's `signature` is ed25519 over `branchd-artifact-v1\n{version}\n{target}\n{sha256}\n`,
//! so a binary is accepted only if the release key vouched for exactly those bytes, for this
//! target, in this version. `url` may be relative to the manifest's URL (a hub serves
//! `DATA_DIR/updates/` at `/updates/`), absolute, or a local path (a USB stick).
//!
//! Nothing is replaced before the manifest signature, the version (strictly newer, semver),
//! the artefact's size, sha256 and signature, and a trial run of the new binary
//! (`version --json` must name the manifest's version) all pass. The install renames the new
//! binary over the old one (same directory, flushed) and keeps the old one as
//! `branchd.previous`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::fail;
use crate::commands::CommandError;
use crate::config::Config;
use crate::state::AppState;

/// The release public key built into this binary (base64 of 32 bytes). Release builds set
/// their own with `BRANCHD_RELEASE_PUBLIC_KEY=… cargo build --release`; `update_public_key`
/// overrides it at run time.
pub const BUILTIN_PUBLIC_KEY: &str = match option_env!("BRANCHD_RELEASE_PUBLIC_KEY") {
    Some(k) => k,
    None => "I+2b7g3rKzbk/UQlGUspt+GCcDAI0927VyMJvRM04xA=",
};

/// The target triple this binary was built for: the artefact it asks for.
pub const TARGET: &str = env!("BRANCHD_TARGET");

const MANIFEST_DOMAIN: &[u8] = b"branchd-manifest-v1\n";
const MAX_MANIFEST: u64 = 1 << 20;
const MAX_ARTIFACT: u64 = 512 << 20;
const STATUS_FILE: &str = "update-status.json";
const PENDING_FILE: &str = "update-pending.json";
const UNIT: &str = "branchd";

#[derive(Debug, Default, clap::Args)]
pub struct UpdateArgs {
    /// Report whether a newer signed release is available (the default)
    #[arg(long, conflicts_with_all = ["apply", "confirm", "rollback"])]
    pub check: bool,
    /// Download, verify and install the newer release, restart, and roll back unless it reports healthy
    #[arg(long, conflicts_with_all = ["confirm", "rollback"])]
    pub apply: bool,
    /// Wait for the running (new) version to report healthy; roll back if it does not
    #[arg(long, conflicts_with = "rollback")]
    pub confirm: bool,
    /// Put branchd.previous back and restart
    #[arg(long)]
    pub rollback: bool,
    /// Manifest URL or file (default: update_url, else {upstream_url}/updates/manifest.json)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Seconds the new version has to report healthy
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub health_timeout: u64,
    /// Command that restarts the server (default under systemd: systemctl restart branchd)
    #[arg(long, value_name = "CMD")]
    pub restart_command: Option<String>,
    /// The installed binary to replace (default: this program)
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
}

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

/// Parses a base64 ed25519 public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| "not 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&arr).map_err(|e| format!("not an ed25519 public key: {e}"))
}

fn parse_signature(text: &str) -> Result<Signature, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| "signature is not base64".to_string())?;
    Signature::from_slice(&bytes).map_err(|_| "signature is not 64 bytes".to_string())
}

/// The key manifests must be signed with: `update_public_key`, else the built-in one.
pub fn public_key(config: &Config) -> Result<VerifyingKey, CommandError> {
    let text = config.update_public_key.as_deref().unwrap_or(BUILTIN_PUBLIC_KEY);
    parse_public_key(text).map_err(|e| CommandError::Usage(format!("update_public_key: {e}")))
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

/// A manifest or artefact location: a URL, or a path on this machine.
#[derive(Debug, Clone)]
enum Source {
    Http(reqwest::Url),
    File(PathBuf),
}

impl Source {
    fn parse(s: &str) -> Result<Source, CommandError> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return reqwest::Url::parse(s).map(Source::Http).map_err(|e| CommandError::Usage(format!("update URL {s}: {e}")));
        }
        Ok(Source::File(PathBuf::from(s.strip_prefix("file://").unwrap_or(s))))
    }

    /// `rel` relative to this source (an artefact's `url` relative to its manifest).
    fn join(&self, rel: &str) -> Result<Source, CommandError> {
        if rel.starts_with("http://") || rel.starts_with("https://") || rel.starts_with("file://") {
            return Source::parse(rel);
        }
        match self {
            Source::Http(u) => u.join(rel).map(Source::Http).map_err(|e| CommandError::Usage(format!("artefact URL {rel}: {e}"))),
            Source::File(p) => Ok(Source::File(p.parent().unwrap_or(Path::new("/")).join(rel))),
        }
    }

    fn show(&self) -> String {
        match self {
            Source::Http(u) => u.to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

fn client() -> Result<reqwest::Client, CommandError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(format!("branchd/{} ({TARGET})", crate::VERSION))
        .build()
        .map_err(|e| CommandError::Server(format!("cannot make an HTTP client: {e}")))
}

/// Reads `src` into `sink` (at most `cap` bytes), reporting progress when `label` is set.
async fn fetch(src: &Source, cap: u64, label: Option<&str>, sink: &mut (dyn Write + Send)) -> Result<u64, CommandError> {
    let too_big = || CommandError::Server(format!("{} is larger than expected ({cap} bytes): refusing it", src.show()));
    let io = |e: std::io::Error| CommandError::Server(format!("cannot write the download: {e}"));
    let mut progress = Progress::new(label, cap);
    match src {
        Source::File(p) => {
            let mut f = std::fs::File::open(p).map_err(|e| CommandError::Server(format!("cannot read {}: {e}", p.display())))?;
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n =
                    std::io::Read::read(&mut f, &mut buf).map_err(|e| CommandError::Server(format!("cannot read {}: {e}", p.display())))?;
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
                .map_err(|e| CommandError::Server(format!("cannot reach {url}: {e} (check the network and update_url)")))?;
            if !res.status().is_success() {
                return fail(format!("{url} answered {}: nothing published there yet?", res.status()));
            }
            if res.content_length().is_some_and(|n| n > cap) {
                return Err(too_big());
            }
            let mut total = 0u64;
            while let Some(chunk) = res.chunk().await.map_err(|e| CommandError::Server(format!("download from {url} broke: {e}")))? {
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
async fn fetch_manifest(config: &Config, flag: Option<&str>) -> Result<(Source, Manifest), CommandError> {
    let Some(url) = manifest_url(config, flag) else {
        return Err(CommandError::Usage("no update source: set update_url (BRANCHD_UPDATE_URL) or upstream_url, or pass --url".into()));
    };
    let key = public_key(config)?;
    let src = Source::parse(&url)?;
    let mut bytes = Vec::new();
    fetch(&src, MAX_MANIFEST, None, &mut bytes).await?;
    let m = verify_manifest(&bytes, &key).map_err(|e| CommandError::Server(format!("{}: {e}", src.show())))?;
    Ok((src, m))
}

fn newer(m: &Manifest) -> Result<std::cmp::Ordering, CommandError> {
    let offered = semver::Version::parse(&m.version).map_err(|e| CommandError::Server(format!("manifest version: {e}")))?;
    let current = semver::Version::parse(crate::VERSION).map_err(|e| CommandError::Server(format!("own version: {e}")))?;
    Ok(offered.cmp(&current))
}

/// What the last check found, kept in `DATA_DIR/update-status.json` for the dashboard:
/// `{checkedAt, current, available, newer, source, error}`.
pub fn last_check(data_dir: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?).ok()
}

fn record_check(config: &Config, source: Option<&str>, result: &Result<Manifest, String>) {
    let (available, is_newer, error) = match result {
        Ok(m) => (Some(m.version.clone()), newer(m).map(|o| o.is_gt()).unwrap_or(false), None),
        Err(e) => (None, false, Some(e.clone())),
    };
    let v = json!({"checkedAt": crate::store::now_rfc3339(), "current": crate::VERSION, "available": available,
                   "newer": is_newer, "source": source, "error": error});
    let _ = super::write_atomic(&config.data_dir.join(STATUS_FILE), v.to_string().as_bytes());
}

/// Inside `serve`: checks for a newer release a minute after start and every six hours,
/// when an update source is configured, and records the result for the dashboard.
pub async fn periodic_check(state: AppState) {
    let config = state.config().clone();
    let Some(url) = manifest_url(&config, None) else { return };
    tokio::time::sleep(Duration::from_secs(60)).await;
    loop {
        let result = fetch_manifest(&config, None).await.map(|(_, m)| m).map_err(|e| e.to_string());
        match &result {
            Ok(m) if newer(m).is_ok_and(|o| o.is_gt()) => {
                tracing::info!(available = %m.version, current = crate::VERSION, "a newer branchd is available: sudo branchd update --apply")
            }
            Ok(_) => tracing::debug!("branchd is up to date"),
            Err(e) => tracing::debug!(error = %e, url = %url, "update check failed"),
        }
        record_check(&config, Some(&url), &result);
        tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
    }
}

/// The pending update (written before the restart, removed once it is confirmed).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pending {
    from: String,
    to: String,
    binary: PathBuf,
    previous: PathBuf,
    installed_at_ms: i64,
}

pub async fn run(config: &Config, args: UpdateArgs) -> Result<(), CommandError> {
    if args.rollback {
        return rollback_cmd(config, &args).await;
    }
    if args.confirm {
        return confirm_cmd(config, &args).await;
    }
    if !args.apply && manifest_url(config, args.url.as_deref()).is_none() {
        // Checking is the default: with nowhere to check, that is an answer, not a failure.
        println!(
            "updates: not configured (set update_url / BRANCHD_UPDATE_URL, or upstream_url, or pass --url); running {}",
            crate::VERSION
        );
        return Ok(());
    }
    let (src, m) = match fetch_manifest(config, args.url.as_deref()).await {
        Ok(x) => x,
        Err(e) => {
            record_check(config, manifest_url(config, args.url.as_deref()).as_deref(), &Err(e.to_string()));
            return Err(e);
        }
    };
    record_check(config, Some(&src.show()), &Ok(m.clone()));
    let order = newer(&m)?;
    if !args.apply {
        match order {
            std::cmp::Ordering::Greater => {
                println!(
                    "update available: branchd {} (running {}); install it with: sudo branchd update --apply",
                    m.version,
                    crate::VERSION
                )
            }
            _ => println!("up to date: running {}, the newest signed release is {}", crate::VERSION, m.version),
        }
        if let Some(notes) = &m.notes {
            println!("release notes: {notes}");
        }
        return Ok(());
    }
    match order {
        std::cmp::Ordering::Equal => {
            println!("already up to date (branchd {}); nothing installed", crate::VERSION);
            return Ok(());
        }
        std::cmp::Ordering::Less => {
            return fail(format!(
                "refusing: the manifest offers {} which is older than the running {} (downgrades are not installed; use --rollback)",
                m.version,
                crate::VERSION
            ));
        }
        std::cmp::Ordering::Greater => {}
    }
    apply(config, &args, &src, &m).await
}

fn binary_paths(args: &UpdateArgs) -> Result<(PathBuf, PathBuf), CommandError> {
    let bin = args
        .binary
        .clone()
        .map_or_else(std::env::current_exe, Ok)
        .and_then(|p| p.canonicalize())
        .map_err(|e| CommandError::Server(format!("cannot find this program's file: {e}")))?;
    let name = bin.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "branchd".into());
    let previous = bin.with_file_name(format!("{name}.previous"));
    Ok((bin, previous))
}

async fn apply(config: &Config, args: &UpdateArgs, src: &Source, m: &Manifest) -> Result<(), CommandError> {
    let key = public_key(config)?;
    let Some(a) = m.artifacts.get(TARGET) else {
        let have: Vec<&str> = m.artifacts.keys().map(String::as_str).collect();
        return fail(format!("release {} has no build for {TARGET} (it has: {})", m.version, have.join(", ")));
    };
    if a.size > MAX_ARTIFACT {
        return fail(format!("the {TARGET} build claims {} bytes: refusing it", a.size));
    }
    // The release key must vouch for the declared digest before anything is downloaded.
    verify_artifact(a, &m.version, TARGET, &a.sha256, &key).map_err(CommandError::Server)?;
    let (bin, previous) = binary_paths(args)?;
    let dir = bin.parent().unwrap_or(Path::new("/")).to_path_buf();
    let download = dir.join(format!(".branchd.update-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o755);
    }
    let mut file = opts.open(&download).map_err(|e| {
        CommandError::Server(format!("cannot write next to {} ({e}): run it as root: sudo branchd update --apply", bin.display()))
    })?;
    let cleanup = |e: CommandError| {
        let _ = std::fs::remove_file(&download);
        e
    };
    let asrc = src.join(&a.url)?;
    eprintln!("downloading branchd {} for {TARGET} from {}", m.version, asrc.show());
    let mut hasher = HashingWriter { inner: &mut file, hash: Sha256::new() };
    let label = format!("branchd {}", m.version);
    let got = fetch(&asrc, a.size, Some(&label), &mut hasher).await.map_err(cleanup)?;
    let digest = hex::encode(hasher.hash.finalize());
    file.sync_all().map_err(|e| cleanup(e.into()))?;
    drop(file);
    if got != a.size {
        return Err(cleanup(CommandError::Server(format!("downloaded {got} bytes, the manifest says {}: refusing it", a.size))));
    }
    if !digest.eq_ignore_ascii_case(&a.sha256) {
        return Err(cleanup(CommandError::Server(format!(
            "sha256 of the download is {digest}, the signed manifest says {}: refusing it (altered or damaged)",
            a.sha256
        ))));
    }
    verify_artifact(a, &m.version, TARGET, &digest, &key).map_err(|e| cleanup(CommandError::Server(e)))?;
    eprintln!("verified: sha256 {digest}, ed25519 signature ok");
    trial_run(&download, &m.version).await.map_err(cleanup)?;

    // Install: keep the current binary as .previous, then rename the new one over it.
    let prev_tmp = dir.join(format!(".branchd.previous-{}", std::process::id()));
    let keep = std::fs::copy(&bin, &prev_tmp)
        .and_then(|_| std::fs::File::open(&prev_tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&prev_tmp, &previous));
    if let Err(e) = keep {
        let _ = std::fs::remove_file(&prev_tmp);
        return Err(cleanup(CommandError::Server(format!("cannot keep the current binary as {}: {e}", previous.display()))));
    }
    let pending = Pending {
        from: crate::VERSION.into(),
        to: m.version.clone(),
        binary: bin.clone(),
        previous: previous.clone(),
        installed_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    let _ = std::fs::create_dir_all(&config.data_dir);
    let _ = super::write_atomic(&config.data_dir.join(PENDING_FILE), serde_json::to_string(&pending).unwrap_or_default().as_bytes());
    std::fs::rename(&download, &bin).map_err(|e| cleanup(CommandError::Server(format!("cannot replace {}: {e}", bin.display()))))?;
    super::sync_dir(&dir);
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
async fn trial_run(bin: &Path, version: &str) -> Result<(), CommandError> {
    let run = tokio::process::Command::new(bin)
        .args(["version", "--json"])
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return fail(format!("the new binary does not start here ({e}): wrong architecture? nothing was installed")),
        Err(_) => return fail("the new binary did not answer `version --json` within 20 s: nothing was installed"),
    };
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if !out.status.success() || v["version"].as_str() != Some(version) {
        return fail(format!(
            "the new binary says it is {} (exit {}), not {version}: nothing was installed",
            v["version"].as_str().unwrap_or("unknown"),
            out.status
        ));
    }
    Ok(())
}

fn restart_command(args: &UpdateArgs) -> Option<String> {
    args.restart_command.clone().or_else(|| super::systemd::unit_active(UNIT).then(|| format!("systemctl restart {UNIT}")))
}

async fn restart(cmd: &str) -> Result<(), CommandError> {
    eprintln!("restarting: {cmd}");
    let run = tokio::process::Command::new("sh").args(["-c", cmd]).stdin(std::process::Stdio::null()).kill_on_drop(true).status();
    match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => {
            eprintln!("`{cmd}` exited with {s}; waiting for the health check anyway");
            Ok(())
        }
        Ok(Err(e)) => fail(format!("cannot run `{cmd}`: {e}")),
        Err(_) => fail(format!("`{cmd}` did not finish within 120 s")),
    }
}

/// Waits until a server started after `since_ms` answers `/health` with `status: ok`.
async fn healthy_since(config: &Config, since_ms: i64, timeout: Duration) -> Result<Value, String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last = "no answer".to_string();
    while Instant::now() < deadline {
        let base = super::local_base(config);
        match client.get(format!("{base}/health")).send().await {
            Ok(res) => {
                let status = res.status();
                let body: Value = res.json().await.unwrap_or_default();
                let age_ms = chrono::Utc::now().timestamp_millis() - since_ms;
                let fresh = body["uptimeSeconds"].as_i64().is_some_and(|up| up * 1000 <= age_ms + 1000);
                if super::doctor::is_up(status, &body) && fresh {
                    return Ok(body);
                }
                last = if fresh {
                    format!("{base}/health answered {status} {}", body["status"])
                } else {
                    "the old process still answers".into()
                };
            }
            Err(e) => last = format!("{base}/health: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

async fn gate_or_rollback(config: &Config, args: &UpdateArgs, p: &Pending, cmd: Option<&str>) -> Result<(), CommandError> {
    let timeout = Duration::from_secs(args.health_timeout);
    eprintln!("waiting up to {} s for branchd {} to report healthy…", args.health_timeout, p.to);
    match healthy_since(config, p.installed_at_ms, timeout).await {
        Ok(h) => {
            let _ = std::fs::remove_file(config.data_dir.join(PENDING_FILE));
            println!("branchd {} is running and healthy (reports version {}); update done", p.to, h["version"].as_str().unwrap_or("?"));
            tracing::info!(version = %p.to, "update confirmed healthy");
            Ok(())
        }
        Err(why) => {
            eprintln!("branchd {} did not report healthy within {} s ({why}): rolling back to {}", p.to, args.health_timeout, p.from);
            tracing::error!(version = %p.to, reason = %why, "update failed its health check; rolling back");
            put_back(p)?;
            let _ = std::fs::remove_file(config.data_dir.join(PENDING_FILE));
            let Some(cmd) = cmd else {
                return fail(format!("rolled back to {}: restart branchd now (sudo systemctl restart branchd)", p.from));
            };
            let since = chrono::Utc::now().timestamp_millis();
            restart(cmd).await?;
            let after = match healthy_since(config, since, timeout).await {
                Ok(_) => format!("branchd {} is running and healthy again", p.from),
                Err(e) => format!("branchd {} does not report healthy either ({e}): see journalctl -u branchd -n 100", p.from),
            };
            fail(format!("update to {} failed its health check and was rolled back; {after}", p.to))
        }
    }
}

fn put_back(p: &Pending) -> Result<(), CommandError> {
    if !p.previous.is_file() {
        return fail(format!("{} is missing: cannot roll back; reinstall the package", p.previous.display()));
    }
    std::fs::rename(&p.previous, &p.binary)
        .map_err(|e| CommandError::Server(format!("cannot put {} back as {}: {e}", p.previous.display(), p.binary.display())))?;
    if let Some(dir) = p.binary.parent() {
        super::sync_dir(dir);
    }
    println!("put {} back as {}", p.previous.display(), p.binary.display());
    Ok(())
}

fn read_pending(config: &Config) -> Option<Pending> {
    serde_json::from_str(&std::fs::read_to_string(config.data_dir.join(PENDING_FILE)).ok()?).ok()
}

async fn confirm_cmd(config: &Config, args: &UpdateArgs) -> Result<(), CommandError> {
    let Some(p) = read_pending(config) else {
        println!("no update is waiting for confirmation");
        return Ok(());
    };
    let cmd = restart_command(args);
    gate_or_rollback(config, args, &p, cmd.as_deref()).await
}

async fn rollback_cmd(config: &Config, args: &UpdateArgs) -> Result<(), CommandError> {
    let (bin, previous) = binary_paths(args)?;
    let p = read_pending(config).unwrap_or(Pending {
        from: "the previous version".into(),
        to: crate::VERSION.into(),
        binary: bin,
        previous,
        installed_at_ms: 0,
    });
    put_back(&p)?;
    let _ = std::fs::remove_file(config.data_dir.join(PENDING_FILE));
    match restart_command(args) {
        Some(cmd) => {
            let since = chrono::Utc::now().timestamp_millis();
            restart(&cmd).await?;
            healthy_since(config, since, Duration::from_secs(args.health_timeout))
                .await
                .map_err(|e| CommandError::Server(format!("rolled back, but it does not report healthy: {e}")))?;
            println!("rolled back; branchd is running and healthy");
        }
        None => println!("rolled back; restart branchd to run it"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
