//! The Debian package and the operator commands of the real binary:
//! - `print-default-config` / `check-config` / `healthcheck` / `doctor`, and `sd_notify`;
//! - the systemd unit passes `systemd-analyze verify` and its security exposure stays low
//!   (skipped, with a note, where `systemd-analyze` is missing);
//! - the .deb builds for amd64 with cargo-deb and holds what an installer needs (skipped,
//!   with a note, where `cargo deb` is not installed: `cargo install cargo-deb --locked`);
//! - a cross-built arm64 binary answers `version` under qemu-user (when one was built by
//!   `packaging/build-deb.sh arm64` and `qemu-aarch64` is installed).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_branchd");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn root(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

fn branchd(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args).env("BRANCHD_CONFIG", "").env_remove("PORT").env("JWT_SECRET", "packaging-test-secret-0123");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("binary runs")
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn text(out: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn packaged_config_file_is_the_generated_one() {
    let out = branchd(&["print-default-config", "--packaged"], &[]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(root("packaging/debian/config.toml")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        committed,
        "packaging/debian/config.toml is stale: branchd print-default-config --packaged > packaging/debian/config.toml"
    );
    // The file works as a config file as it is.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, committed.replace("/var/lib/branchd", dir.path().join("data").to_str().unwrap())).unwrap();
    let out = branchd(&["check-config", "--config", file.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("configuration ok"), "{stdout}");
}

#[test]
fn check_config_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    for (args, envs, setting) in [
        (vec!["check-config", "--data-dir", not_a_dir.to_str().unwrap()], vec![], "BRANCHD_DATA_DIR"),
        (vec!["check-config"], vec![("BRANCHD_BACKUP_KEEP", "0")], "BRANCHD_BACKUP_KEEP"),
        (vec!["check-config"], vec![("BRANCHD_BACKUP_INTERVAL_HOURS", "daily")], "BRANCHD_BACKUP_INTERVAL_HOURS"),
        (vec!["check-config"], vec![("BRANCHD_UPDATE_PUBLIC_KEY", "bm90IGEga2V5")], "BRANCHD_UPDATE_PUBLIC_KEY"),
        (vec!["check-config"], vec![("BRANCHD_UPDATE_URL", "ftp://x")], "BRANCHD_UPDATE_URL"),
        (
            vec!["check-config", "--data-dir", dir.path().join("d").to_str().unwrap()],
            vec![("BRANCHD_BACKUP_DIR", not_a_dir.to_str().unwrap())],
            "BRANCHD_BACKUP_DIR",
        ),
    ] {
        let mut envs = envs;
        let data = dir.path().join("ok-data");
        envs.push(("BRANCHD_DATA_DIR", data.to_str().unwrap()));
        let out = branchd(&args, &envs);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{setting}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(setting), "{setting}: {err}");
    }
}

/// A server process on port 0 with `NOTIFY_SOCKET` pointing at our datagram socket.
#[test]
fn serve_notifies_systemd_and_healthcheck_and_doctor_see_it() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    // Nothing runs yet: healthcheck says so with exit 1.
    let out = branchd(&["healthcheck", "--data-dir", data.to_str().unwrap()], &[("PORT", "0")]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));

    let mut child = Command::new(BIN)
        .args(["serve", "--no-demo", "--port", "0", "--bind", "127.0.0.1", "--mdns", "off", "--data-dir"])
        .arg(&data)
        .env("JWT_SECRET", "packaging-test-secret-0123")
        .env("BRANCHD_CONFIG", "")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _ = lines.by_ref().find(|l| l.as_ref().is_ok_and(|l| l.starts_with("branchd listening on ")));
    std::thread::spawn(move || for _ in lines {});
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 30 s");
    assert_eq!(&buf[..n], b"READY=1");
    let n = sock.recv(&mut buf).expect("a watchdog ping");
    assert_eq!(&buf[..n], b"WATCHDOG=1");

    // The CLI finds the server through its lock file, though it listens on a random port.
    let out = branchd(&["healthcheck", "--data-dir", data.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("healthy"), "{stdout}");

    let out = branchd(&["doctor", "--data-dir", data.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    for line in ["✔ server", "✔ database", "✔ desktop", "✔ uplink", "✔ mdns", "✔ clock", "✔ disk", "✔ backup", "✔ update"]
    {
        assert!(stdout.contains(line), "missing {line:?}:\n{stdout}{stderr}");
    }
    // No printer is configured: a ✘ with what to do, and exit 1.
    assert!(stdout.contains("✘ printers") && stdout.contains("branchd printer discover"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));

    // SIGTERM: STOPPING=1, exit 0.
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stopping = false;
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) if &buf[..n] == b"STOPPING=1" => {
                stopping = true;
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert!(stopping, "STOPPING=1 on shutdown");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// The unit file with its binary path pointed at the test build.
fn unit_for_test(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(root("packaging/debian/branchd.service")).unwrap();
    let path = dir.join("branchd.service");
    std::fs::write(&path, unit.replace("/usr/bin/branchd", BIN)).unwrap();
    path
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    if !have("systemd-analyze", "--version") {
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let unit = std::fs::read_to_string(root("packaging/debian/branchd.service")).unwrap();
    for line in [
        "User=branchd",
        "StateDirectory=branchd",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "PrivateDevices=no",
        "DeviceAllow=char-usb_device rw",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyS rw",
        "DeviceAllow=char-ttyACM rw",
        "SupplementaryGroups=lp dialout",
        "AmbientCapabilities=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "Restart=on-failure",
        "ExecStartPre=/usr/bin/branchd check-config",
        "Type=notify",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(line), "unit lacks {line:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = unit_for_test(dir.path());
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "systemd-analyze verify: {stdout}{stderr}");
    assert!(!stderr.contains("branchd.service:"), "warnings: {stderr}");
    let out = Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&path).output().unwrap();
    let (stdout, stderr) = text(&out);
    let score: f64 = stdout
        .lines()
        .find_map(|l| l.split("Overall exposure level for branchd.service: ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in: {stdout}{stderr}"));
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.0, "exposure {score} (was 1.5 when recorded)");
}

#[test]
fn deb_for_amd64_has_what_an_installer_needs() {
    if !have("cargo-deb", "--version") || !have("dpkg-deb", "--version") {
        eprintln!("SKIPPED: cargo-deb is not installed (cargo install cargo-deb --version 3.8.0 --locked)");
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    // Packages the binary this test run built (the dev profile: fast; the release package
    // is made the same way by packaging/build-deb.sh).
    let out = Command::new("cargo")
        // A revision of its own: cargo-deb deletes target/debian/ files of the same name,
        // and the release packages there must survive the test.
        .args(["deb", "--no-build", "--profile", "dev", "--fast", "-q", "--deb-revision", "0test", "-o"])
        .arg(out_dir.path())
        .current_dir(ROOT)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "cargo deb: {stdout}{stderr}");
    let deb = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb");
    assert!(deb.file_name().unwrap().to_string_lossy().ends_with("_amd64.deb"), "{}", deb.display());

    let contents = text(&Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap()).0;
    for (path, mode) in [
        ("./usr/bin/branchd", "-rwxr-xr-x"),
        ("./usr/lib/systemd/system/branchd.service", "-rw-r--r--"),
        ("./etc/branchd/config.toml", "-rw-r-----"),
        ("./etc/default/branchd", "-rw-r-----"),
        ("./lib/udev/rules.d/60-branchd-printers.rules", "-rw-r--r--"),
    ] {
        let line = contents.lines().find(|l| l.ends_with(path)).unwrap_or_else(|| panic!("{path} missing from:\n{contents}"));
        assert!(line.starts_with(mode), "{line}");
    }
    let info = text(&Command::new("dpkg-deb").arg("-I").arg(&deb).output().unwrap()).0;
    for needle in ["Package: branchd", "Architecture: amd64", "adduser", "libc6 (>= 2."] {
        assert!(info.contains(needle), "{needle} missing from:\n{info}");
    }
    let ctrl = out_dir.path().join("control");
    assert!(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctrl).status().unwrap().success());
    let conffiles = std::fs::read_to_string(ctrl.join("conffiles")).unwrap();
    assert!(conffiles.contains("/etc/branchd/config.toml") && conffiles.contains("/etc/default/branchd"), "{conffiles}");
    let postinst = std::fs::read_to_string(ctrl.join("postinst")).unwrap();
    for needle in [
        "adduser --system",
        "chown branchd:branchd /var/lib/branchd",
        "udevadm control --reload-rules && udevadm trigger",
        "deb-systemd-helper enable branchd.service",
        "deb-systemd-invoke $_dh_action branchd.service",
    ] {
        assert!(postinst.contains(needle), "postinst lacks {needle:?}");
    }
    assert!(!postinst.contains("#DEBHELPER#"), "the debhelper token was replaced");
    let postrm = std::fs::read_to_string(ctrl.join("postrm")).unwrap();
    let purge = postrm.split("purge)").nth(1).expect("a purge branch");
    assert!(purge.contains("rm -rf /var/lib/branchd"), "data goes on purge");
    let remove = postrm.split("remove)").nth(1).unwrap().split(";;").next().unwrap();
    assert!(!remove.contains("/var/lib/branchd"), "data stays on remove");
    for script in ["postinst", "prerm", "postrm"] {
        let st = Command::new("sh").arg("-n").arg(ctrl.join(script)).status().unwrap();
        assert!(st.success(), "{script} is not valid sh");
    }

    // The packaged files are the ones in the repository, and the binary runs.
    let x = out_dir.path().join("root");
    assert!(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x).status().unwrap().success());
    let out = Command::new(x.join("usr/bin/branchd")).args(["version", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        std::fs::read(x.join("usr/lib/systemd/system/branchd.service")).unwrap(),
        std::fs::read(root("packaging/debian/branchd.service")).unwrap()
    );
}

/// postinst, run with every outside command replaced by a stub that only logs its call
/// (nothing on this machine changes) and the conffiles under `$DPKG_ROOT`: on the first
/// install and on every upgrade the conffiles end up root:branchd 0640 (an upgrade that
/// replaces an unedited conffile installs it root:root), unless the admin registered a
/// dpkg-statoverride for the file.
#[test]
fn postinst_gives_the_service_its_conffiles_on_every_configure() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("bin");
    std::fs::create_dir(&stubs).unwrap();
    let log_call = "#!/bin/sh\necho \"${0##*/} $*\" >>\"$CALLS\"\n";
    for cmd in ["getent", "addgroup", "adduser", "install", "chown", "chmod", "udevadm", "dpkg-statoverride"] {
        // dpkg-statoverride --list FILE: exit 0 when an override is registered for FILE.
        let body = if cmd == "dpkg-statoverride" { format!("{log_call}[ \"$2\" = \"$OVERRIDDEN\" ]\n") } else { log_call.to_string() };
        let path = stubs.join(cmd);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sysroot = dir.path().join("root");
    let conffiles = ["/etc/branchd/config.toml", "/etc/default/branchd"];
    for f in conffiles {
        let path = sysroot.join(&f[1..]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "# packaged\n").unwrap();
    }
    let calls = dir.path().join("calls.log");
    for (previous_version, overridden) in [("", ""), ("0.1.0-1", ""), ("0.1.0-1", "/etc/default/branchd")] {
        let _ = std::fs::remove_file(&calls);
        let out = Command::new("/bin/sh")
            .arg(root("packaging/debian/postinst"))
            .args(["configure", previous_version])
            .env_clear()
            .env("PATH", &stubs)
            .env("DPKG_ROOT", &sysroot)
            .env("CALLS", &calls)
            .env("OVERRIDDEN", overridden)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "postinst configure {previous_version:?}: {stdout}{stderr}");
        let log = std::fs::read_to_string(&calls).unwrap_or_default();
        for f in conffiles {
            let path = format!("{}{f}", sysroot.display());
            let fixed = f != overridden;
            let what = format!("configure {previous_version:?}, statoverride on {overridden:?}: {f}");
            assert_eq!(log.contains(&format!("chown root:branchd {path}\n")), fixed, "{what}\n{log}");
            assert_eq!(log.contains(&format!("chmod 0640 {path}\n")), fixed, "{what}\n{log}");
        }
    }
}

#[test]
fn arm64_binary_answers_version_under_qemu() {
    let bin = root("target/aarch64-unknown-linux-gnu/release/branchd");
    if !bin.exists() || !have("qemu-aarch64", "--version") {
        eprintln!("SKIPPED: no cross-built arm64 binary or no qemu-aarch64 (packaging/build-deb.sh arm64; apt-get install qemu-user)");
        return;
    }
    let out = Command::new("qemu-aarch64").args(["-L", "/usr/aarch64-linux-gnu"]).arg(&bin).args(["version", "--json"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["target"], "aarch64-unknown-linux-gnu");
}
