//! A fault-injecting HTTP proxy for sync tests: between a branch and its hub it can drop a
//! request, lose the response after the hub committed, duplicate a request, replay an old
//! request later (reordering), delay, or refuse connections entirely (uplink down).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Pass,
    Drop,
    LoseResponse,
    Duplicate,
    ReplayLater,
    Delay(u64),
}

#[derive(Default)]
struct Inner {
    /// Fates in this order, then `chaos` (if set), then `Pass`.
    script: VecDeque<Fate>,
    chaos: Option<(u64, Vec<(u32, Fate)>)>,
    stash: Vec<Vec<u8>>,
    counts: std::collections::HashMap<String, u64>,
    down: bool,
    /// After the first push, every request is dropped (the hub committed; the branch is cut off).
    isolate_after_push: bool,
    pushed: bool,
    /// Like a reverse proxy's body limit in front of HQ: larger requests get 413.
    max_body: Option<usize>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = Arc::new(Proxy { addr: listener.local_addr().unwrap(), upstream, inner: Arc::default() });
        let me = p.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if me.inner.lock().unwrap().down {
                    drop(client); // refuse: closed at once
                    continue;
                }
                let me = me.clone();
                tokio::spawn(async move { me.serve(client).await });
            }
        });
        p
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Chaos: each request draws a fate by weight from a seeded generator.
    pub fn chaos(&self, seed: u64, weights: Vec<(u32, Fate)>) {
        self.inner.lock().unwrap().chaos = Some((seed, weights));
    }
    pub fn calm(&self) {
        let mut i = self.inner.lock().unwrap();
        i.chaos = None;
        i.script.clear();
        i.isolate_after_push = false;
    }
    /// Answers 413 to any request whose body is larger than `bytes` (None: no limit).
    pub fn limit_body(&self, bytes: Option<usize>) {
        self.inner.lock().unwrap().max_body = bytes;
    }
    pub fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }
    /// The next push reaches the hub but its answer is lost, and nothing gets through after it.
    pub fn lose_ack_then_isolate(&self) {
        let mut i = self.inner.lock().unwrap();
        i.isolate_after_push = true;
        i.pushed = false;
        i.script.push_back(Fate::LoseResponse);
    }
    pub fn count(&self, what: &str) -> u64 {
        self.inner.lock().unwrap().counts.get(what).copied().unwrap_or(0)
    }

    fn next_fate(&self, is_push: bool) -> Fate {
        let mut i = self.inner.lock().unwrap();
        if i.isolate_after_push && i.pushed {
            return Fate::Drop;
        }
        if is_push {
            i.pushed = true;
        }
        if !is_push {
            return if i.down { Fate::Drop } else { Fate::Pass };
        }
        if let Some(f) = i.script.pop_front() {
            return f;
        }
        if let Some((seed, weights)) = i.chaos.as_mut() {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            let total: u32 = weights.iter().map(|w| w.0).sum();
            let mut pick = (*seed % total as u64) as u32;
            for (w, f) in weights.iter() {
                if pick < *w {
                    return *f;
                }
                pick -= w;
            }
        }
        Fate::Pass
    }

    async fn serve(self: Arc<Self>, mut client: TcpStream) {
        loop {
            let Some(request) = read_request(&mut client).await else { return };
            let limit = self.inner.lock().unwrap().max_body;
            let body_len = find(&request, b"\r\n\r\n").map(|end| request.len() - end - 4).unwrap_or(0);
            if limit.is_some_and(|max| body_len > max) {
                *self.inner.lock().unwrap().counts.entry("TooLarge".into()).or_default() += 1;
                let body = r#"{"error":{"code":"PAYLOAD_TOO_LARGE","message":"request body too large for the proxy"}}"#;
                let head =
                    format!("HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
                if client.write_all(head.as_bytes()).await.is_err() || client.write_all(body.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            let is_push = request.starts_with(b"POST /sync/v1/events");
            let fate = self.next_fate(is_push);
            *self.inner.lock().unwrap().counts.entry(format!("{fate:?}")).or_default() += 1;
            let response = match fate {
                Fate::Drop => return,
                Fate::Delay(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    forward(self.upstream, &request).await
                }
                Fate::Pass => forward(self.upstream, &request).await,
                Fate::LoseResponse => {
                    let _ = forward(self.upstream, &request).await;
                    return; // the hub committed; the branch never hears
                }
                Fate::Duplicate => {
                    let _ = forward(self.upstream, &request).await;
                    forward(self.upstream, &request).await
                }
                Fate::ReplayLater => {
                    let old = {
                        let mut i = self.inner.lock().unwrap();
                        i.stash.push(request.clone());
                        (i.stash.len() > 2).then(|| i.stash.remove(0))
                    };
                    let r = forward(self.upstream, &request).await;
                    if let Some(old) = old {
                        let _ = forward(self.upstream, &old).await; // an old batch arrives late
                    }
                    r
                }
            };
            let Some(response) = response else { return };
            if client.write_all(&response).await.is_err() {
                return;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> usize {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

async fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let need = end + 4 + content_length(&buf[..end]);
            while buf.len() < need {
                let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends one request on a fresh connection and returns the whole response.
async fn forward(upstream: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).await.ok()?;
    s.write_all(request).await.ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let need = end + 4 + content_length(&buf[..end]);
            if buf.len() >= need {
                buf.truncate(need);
                return Some(buf);
            }
        }
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}
