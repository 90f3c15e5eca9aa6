//! mDNS (SPEC §5) checked by an independent implementation, python-zeroconf, across a veth
//! link into a network namespace this test creates (so no packet leaves the machine): the
//! advertisement resolves with its TXT keys, and it is withdrawn on shutdown.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestServer, python};
use serde_json::Value;

struct Netns {
    name: String,
}

impl Netns {
    fn ip(args: &[&str]) -> bool {
        Command::new("ip").args(args).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    /// A namespace joined to the host by a veth pair; `None` where that is not possible.
    fn create(tag: u32) -> Option<(Netns, String)> {
        let (ns, host, peer) = (format!("bdmdns{tag}"), format!("bdh{tag}"), format!("bdn{tag}"));
        let net = format!("10.231.{}", tag % 250);
        let _ = Self::ip(&["netns", "del", &ns]);
        let ok = Self::ip(&["netns", "add", &ns])
            && Self::ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])
            && Self::ip(&["link", "set", &peer, "netns", &ns])
            && Self::ip(&["addr", "add", &format!("{net}.1/24"), "dev", &host])
            && Self::ip(&["link", "set", &host, "up"])
            && Self::ip(&["netns", "exec", &ns, "ip", "addr", "add", &format!("{net}.2/24"), "dev", &peer])
            && Self::ip(&["netns", "exec", &ns, "ip", "link", "set", &peer, "up"])
            && Self::ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        let guard = Netns { name: ns };
        ok.then_some((guard, host))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Self::ip(&["netns", "del", &self.name]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertisement_resolves_in_zeroconf_and_is_withdrawn_on_shutdown() {
    let Some((ns, host_if)) = Netns::create(std::process::id() % 10_000) else {
        eprintln!("SKIPPED: cannot create a network namespace here (needs root and iproute2)");
        return;
    };
    let py = python();
    let s = TestServer::start_with(|c| {
        c.mdns = true;
        c.mdns_interfaces = vec![host_if.clone()];
    })
    .await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/mdns_check.py");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(&py)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs in the namespace");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line from zeroconf").unwrap();
    let found: Value = serde_json::from_str(first.strip_prefix("FOUND ").unwrap_or_else(|| panic!("zeroconf said: {first}"))).unwrap();
    let txt = &found["txt"];
    assert_eq!(txt["txtvers"], "1");
    assert_eq!(txt["role"], "branch");
    assert_eq!(txt["path"], "/socket.io/");
    assert_eq!(txt["version"], branchd::VERSION);
    assert!(txt["id"].as_str().is_some_and(|id| id.len() >= 32), "a stable appliance id: {txt}");
    assert!(txt.get("companyId").is_some() && txt.get("branchId").is_some(), "{txt}");
    // HTTPS on (the default): the hint that TLS is there and which CA to expect.
    assert_eq!(txt["tls"], "1", "{txt}");
    assert_eq!(txt["tlsfp"].as_str(), s.state.tls().ca_fingerprint(), "{txt}");
    assert_eq!(found["port"], s.addr.port());
    assert!(found["addresses"].as_array().unwrap().iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("10.231."))), "{found}");
    assert!(found["http"].as_str().is_some_and(|n| n.ends_with("._http._tcp.local.")), "dashboard advertised: {found}");

    // A stable id: the same on the next start.
    let id = txt["id"].as_str().unwrap().to_string();
    assert_eq!(branchd::store::meta::appliance_id(s.state.db()).await.unwrap(), id);

    s.stop().await;
    child.stdin.as_mut().unwrap().write_all(b"stopped\n").unwrap();
    let verdict = lines.next().expect("a verdict").unwrap();
    assert_eq!(verdict, "REMOVED", "the advertisement is withdrawn on shutdown");
    let _ = child.wait_timeout_or_kill(Duration::from_secs(5));
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for std::process::Child {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + d;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(st)) = self.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.kill();
        self.wait().ok()
    }
}
