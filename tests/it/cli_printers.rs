//! `branchd printer list|add|test|remove` against a running server (found through its lock
//! file): typed connection flags, a table with headers or `--json`, a readable test result,
//! one-line errors, and help on every command.

use crate::common;

use common::process::{BIN, ServerProcess, cli, run};
use serde_json::Value;

fn said(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr).lines().filter(|l| !l.contains(" INFO ") && !l.contains(" WARN ")).map(str::to_string).collect()
}

#[test]
fn printer_commands_through_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["company", "add", "co-5", "--name", "Five"]);
    cli(d, &["branch", "add", "br-5", "--company", "co-5", "--name", "Five Main"]);
    let _server = ServerProcess::start(d, &[]);

    assert!(cli(d, &["printer", "list"]).contains("no printers yet"));
    let out = cli(
        d,
        &[
            "printer",
            "add",
            "--branch",
            "br-5",
            "--name",
            "Bar",
            "--host",
            "127.0.0.1",
            "--port",
            "9",
            "--role",
            "kitchen",
            "--stations",
            "bar",
        ],
    );
    assert!(out.starts_with("printer Bar added: "), "{out}");
    let out = cli(d, &["printer", "add", "--branch", "br-5", "--name", "Screen", "--virtual"]);
    let virtual_id = out.rsplit(' ').next().unwrap().to_string();
    cli(d, &["printer", "add", "--branch", "br-5", "--name", "Label", "--role", "label", "--usb", "04b8:0202"]);

    let table = cli(d, &["printer", "list"]);
    let header = table.lines().next().unwrap();
    for h in ["ID", "NAME", "BRANCH", "ROLE", "CONNECTION", "STATUS"] {
        assert!(header.contains(h), "{table}");
    }
    assert!(table.lines().any(|l| l.contains("Bar") && l.contains("br-5") && l.contains("network 127.0.0.1:9")), "{table}");
    assert!(table.lines().any(|l| l.contains("Label") && l.contains("usb 04b8:0202")), "{table}");
    let listed: Value = serde_json::from_str(&cli(d, &["printer", "list", "--json", "--branch", "br-5"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");

    // A test print says how it went in words, not raw JSON.
    let out = cli(d, &["printer", "test", &virtual_id]);
    assert!(out.starts_with(&format!("test page printed on {virtual_id}")), "{out}");

    // Refusals: one line each.
    for (args, word) in [
        (vec!["printer", "add", "--branch", "br-5", "--name", "X"], "say how to reach the printer"),
        (vec!["printer", "add", "--branch", "br-5", "--name", "X", "--usb", "04b8"], "VID:PID"),
        (vec!["printer", "add", "--branch", "nowhere", "--name", "X", "--virtual"], "nowhere"),
        (vec!["printer", "remove", "no-such-printer"], "not found"),
    ] {
        let out = run(d, &args);
        let lines = said(&out);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(lines[0].contains(word), "{args:?}: {lines:?}");
    }
    let out = run(d, &["printer", "add", "--branch", "br-5", "--name", "X", "--host", "h", "--usb", "1:2"]);
    assert_eq!(out.status.code(), Some(2), "one connection at a time");

    cli(d, &["printer", "remove", &virtual_id]);
    assert!(!cli(d, &["printer", "list"]).contains("Screen"));
}

/// Every command and subcommand has a help line.
#[test]
fn every_command_has_help() {
    let help = |args: &[&str]| -> String {
        let out = std::process::Command::new(BIN).args(args).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let commands = |text: &str| -> Vec<(String, String)> {
        text.split("Commands:")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .skip(1)
                    .take_while(|l| l.starts_with("  "))
                    .filter_map(|l| {
                        let mut parts = l.trim().splitn(2, ' ');
                        Some((parts.next()?.to_string(), parts.next().unwrap_or("").trim().to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    for (cmd, about) in commands(&help(&[])) {
        assert!(!about.is_empty(), "`branchd {cmd}` has no help line");
        for (sub, about) in commands(&help(&[&cmd])) {
            assert!(!about.is_empty(), "`branchd {cmd} {sub}` has no help line");
        }
    }
    assert!(help(&["token", "issue"]).contains("[possible values: super_admin, company_owner"));
}

#[test]
fn update_check_without_a_source_and_serve_on_a_taken_port() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Nowhere to check is an answer, not an error.
    let out = run(d, &["update", "--check"]);
    assert!(out.status.success(), "{:?}", said(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not configured"), "{}", String::from_utf8_lossy(&out.stdout));

    // A taken port fails the start before any demo data is made.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--port", &port, "--bind", "127.0.0.1", "--mdns", "off", "--data-dir"])
        .arg(d)
        .env("JWT_SECRET", common::SECRET)
        .env("BRANCHD_CONFIG", "")
        .env("BRANCHD_BACKUP_INTERVAL_HOURS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = said(&out).join("\n");
    assert!(err.contains(&port), "names the port: {err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("demo"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!d.join("demo-credentials.txt").exists(), "no demo data on a failed start");
    assert!(cli(d, &["user", "list"]).contains("no users yet"));
}
