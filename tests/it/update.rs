//! `branchd update` end to end with real processes and files: a hub (in-process, serving
//! `DATA_DIR/updates/` at `/updates/`) stages releases signed by `branchd release sign`; an
//! "installed" branchd (a copy of the binary in a temp dir, started and restarted by a small
//! supervisor script standing in for systemd) is updated. Tampered, unsigned, wrongly signed
//! and older releases are refused without changing anything; a good one is installed and
//! confirmed healthy; one that fails its health check is rolled back.
//!
//! The "new builds" are shell scripts: they answer `version --json` as the new version and
//! otherwise run the real binary (or, for the broken build, exit 1).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_branchd");
const SECRET: &str = "update-test-secret-0123456789";

struct Env {
    root: tempfile::TempDir,
    hub: common::TestServer,
    public_key: String,
}

impl Env {
    fn p(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    fn installed(&self) -> PathBuf {
        self.p("bin/branchd")
    }
    fn manifest_url(&self) -> String {
        format!("{}/updates/manifest.json", self.hub.base)
    }

    /// Runs the real binary with the branch's data dir and the test key.
    fn branchd(&self, args: &[&str], key: &str) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(self.p("data"))
            .env("JWT_SECRET", SECRET)
            .env("PORT", "0")
            .env("BRANCHD_UPDATE_PUBLIC_KEY", key)
            .env_remove("BRANCHD_UPDATE_URL")
            .env("BRANCHD_CONFIG", "")
            .output()
            .expect("binary runs")
    }

    fn update(&self, extra: &[&str]) -> Output {
        let url = self.manifest_url();
        let restart = self.p("restart.sh");
        let installed = self.installed();
        let mut args =
            vec!["update", "--url", &url, "--binary", installed.to_str().unwrap(), "--restart-command", restart.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.branchd(&args, &self.public_key)
    }

    /// Signs a release of `build` as `version` into the hub's updates directory.
    fn stage(&self, version: &str, build: &Path) {
        let target = format!("{}={}", target(), build.display());
        let out = Command::new(BIN)
            .args(["release", "sign", "--key"])
            .arg(self.p("release.key"))
            .args(["--version", version, "--artifact", &target, "--out"])
            .arg(self.hub.dir.path().join("updates"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Restarts the installed server through the supervisor script and waits until
    /// `branchd healthcheck` says so.
    fn restart_and_wait(&self) {
        assert!(Command::new("sh").arg(self.p("restart.sh")).status().unwrap().success());
        self.wait_healthy();
    }

    fn wait_healthy(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.branchd(&["healthcheck"], &self.public_key);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).to_string();
            }
            assert!(Instant::now() < deadline, "server never became healthy: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn server_pid(&self) -> Option<String> {
        std::fs::read_to_string(self.p("data/server.pid")).ok().map(|s| s.trim().to_string())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(pid) = self.server_pid() {
            let _ = Command::new("kill").arg(&pid).status();
        }
    }
}

fn target() -> String {
    let out = Command::new(BIN).args(["version", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["target"].as_str().unwrap().to_string()
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure containing {needle:?}; stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

fn succeeds(out: &Output) -> String {
    assert!(out.status.success(), "failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

async fn setup() -> Env {
    let hub = common::TestServer::start_with(|c| c.role = branchd::config::ApplianceRole::Hub).await;
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::fs::create_dir_all(r.join("data")).unwrap();
    std::fs::copy(BIN, r.join("bin/branchd")).unwrap();
    let out = Command::new(BIN).args(["release", "keygen", "--out"]).arg(r.join("release.key")).output().unwrap();
    let public_key = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap().to_string();
    // The supervisor: stop the server of the data dir, start the installed binary again.
    let data = r.join("data");
    write_exec(
        &r.join("restart.sh"),
        &format!(
            r#"#!/bin/sh
D='{data}'
if [ -f "$D/server.pid" ]; then
  pid=$(cat "$D/server.pid")
  kill "$pid" 2>/dev/null
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done
fi
JWT_SECRET='{SECRET}' BRANCHD_CONFIG= nohup '{bin}' serve --no-demo --port 0 --bind 127.0.0.1 --mdns off --data-dir "$D" >>"$D/server.log" 2>&1 &
echo $! > "$D/server.pid"
"#,
            data = data.display(),
            bin = r.join("bin/branchd").display()
        ),
    );
    Env { root, hub, public_key }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_update_is_applied_tampered_refused_unhealthy_rolled_back() {
    let env = setup().await;
    let original = std::fs::read(env.installed()).unwrap();
    env.restart_and_wait();
    let tgt = target();

    // The "new" builds.
    write_exec(
        &env.p("good.sh"),
        &format!(
            "#!/bin/sh\nif [ \"$1\" = version ]; then echo '{{\"version\":\"9.9.9\",\"target\":\"{tgt}\"}}'; exit 0; fi\nexec '{BIN}' \"$@\"\n"
        ),
    );
    write_exec(
        &env.p("broken.sh"),
        "#!/bin/sh\nif [ \"$1\" = version ]; then echo '{\"version\":\"9.9.10\"}'; exit 0; fi\necho 'this build cannot serve' >&2\nexit 1\n",
    );
    let good = std::fs::read(env.p("good.sh")).unwrap();
    let unchanged = |why: &str| {
        assert_eq!(std::fs::read(env.installed()).unwrap(), original, "{why}: the installed binary must not change");
        assert!(!env.p("bin/branchd.previous").exists(), "{why}: nothing installed, nothing kept");
        let leftovers: Vec<_> = std::fs::read_dir(env.p("bin")).unwrap().flatten().filter(|e| e.file_name() != "branchd").collect();
        assert!(leftovers.is_empty(), "{why}: leftovers {leftovers:?}");
    };

    // Check: the hub serves the staged manifest; the dashboard's status file records it.
    env.stage("9.9.9", &env.p("good.sh"));
    let out = succeeds(&env.update(&["--check"]));
    assert!(out.contains("update available: branchd 9.9.9"), "{out}");
    let status: Value = serde_json::from_str(&std::fs::read_to_string(env.p("data/update-status.json")).unwrap()).unwrap();
    assert_eq!(status["available"], "9.9.9");
    assert_eq!(status["newer"], true);

    // Tampered build (same size, one byte changed): refused, nothing changed.
    let art = env.hub.dir.path().join(format!("updates/branchd-9.9.9-{tgt}"));
    let mut bytes = std::fs::read(&art).unwrap();
    let i = bytes.len() - 2;
    bytes[i] ^= 0x20;
    std::fs::write(&art, &bytes).unwrap();
    fails_with(&env.update(&["--apply"]), "sha256");
    unchanged("tampered build");

    // Manifest signed by another key: refused.
    env.stage("9.9.9", &env.p("good.sh"));
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["release", "keygen", "--out"]).arg(other.path().join("k")).output().unwrap();
    let other_key = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap().to_string();
    let url = env.manifest_url();
    let installed = env.installed();
    let wrong = env.branchd(&["update", "--apply", "--url", &url, "--binary", installed.to_str().unwrap()], &other_key);
    fails_with(&wrong, "signature does not match");
    unchanged("wrongly signed manifest");

    // Manifest with its contents altered after signing: refused.
    let manifest_path = env.hub.dir.path().join("updates/manifest.json");
    let signed = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(&manifest_path, signed.replacen("9.9.9", "9.9.8", 1)).unwrap();
    fails_with(&env.update(&["--apply"]), "signature does not match");
    unchanged("altered manifest");

    // Unsigned manifest: refused.
    let m: Value = serde_json::from_str(&signed).unwrap();
    std::fs::write(&manifest_path, serde_json::json!({"signed": m["signed"]}).to_string()).unwrap();
    fails_with(&env.update(&["--apply"]), "not signed");
    unchanged("unsigned manifest");

    // An older version, properly signed: refused.
    env.stage("0.0.1", &env.p("good.sh"));
    fails_with(&env.update(&["--apply"]), "older");
    unchanged("older release");

    // The good release: installed atomically, restarted, confirmed healthy.
    env.stage("9.9.9", &env.p("good.sh"));
    let pid_before = env.server_pid();
    let out = succeeds(&env.update(&["--apply", "--health-timeout", "30"]));
    assert!(out.contains("installed branchd 9.9.9"), "{out}");
    assert!(out.contains("healthy"), "{out}");
    assert_eq!(std::fs::read(env.installed()).unwrap(), good, "the new build is installed");
    assert_eq!(std::fs::read(env.p("bin/branchd.previous")).unwrap(), original, "the old one is kept");
    assert_ne!(env.server_pid(), pid_before, "the server was restarted");
    env.wait_healthy();
    assert!(!env.p("data/update-pending.json").exists());

    // Manual rollback puts the previous binary back and restarts.
    let out = succeeds(&env.update(&["--rollback", "--health-timeout", "30"]));
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(std::fs::read(env.installed()).unwrap(), original);
    env.wait_healthy();

    // A release that does not come up healthy: rolled back by itself, old version serving.
    env.stage("9.9.10", &env.p("broken.sh"));
    let out = env.update(&["--apply", "--health-timeout", "8"]);
    fails_with(&out, "rolled back");
    assert!(String::from_utf8_lossy(&out.stderr).contains("running and healthy again"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(env.installed()).unwrap(), original, "the previous binary is back");
    let health = env.wait_healthy();
    assert!(health.contains("healthy"), "{health}");
    let log = std::fs::read_to_string(env.p("data/server.log")).unwrap_or_default();
    assert!(log.contains("this build cannot serve"), "the broken build did run: {log}");
}
