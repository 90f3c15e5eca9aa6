//! Password hashing for local users (argon2id, PHC strings), and the login path's checker:
//! a fixed number of dedicated threads with a bounded queue, so that a flood of logins
//! neither takes every core from the kitchen nor grows memory (each check needs argon2's
//! 19 MiB of blocks; a thread keeps its blocks only while it has work, then frees them).

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
}

pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Hashes above this much memory are refused rather than computed (a hash that arrived by
/// sync with absurd parameters must not exhaust a Pi): 64 MiB.
const MAX_BLOCKS: usize = 64 * 1024;

/// Verifies `password` against `phc` using `blocks` as argon2's working memory.
fn verify_with(password: &str, phc: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Ok(params), Ok(alg)) = (Params::try_from(&hash), Algorithm::try_from(hash.algorithm)) else { return false };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let needed = params.block_count();
    if needed > MAX_BLOCKS {
        return false;
    }
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(alg, version, params);
    if argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..needed]).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

/// A hash of a password nobody has, so that unknown emails cost as much as known ones.
fn dummy_hash() -> &'static str {
    use std::sync::OnceLock;
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("branchd-dummy-password"))
}

struct Check {
    password: String,
    /// `None`: an unknown email (checked against a dummy hash, answered `false`).
    phc: Option<String>,
    reply: oneshot::Sender<bool>,
}

/// The queue of password checks was full: refuse the login now (429), cheaply.
#[derive(Debug)]
pub struct Busy;

/// The login path's password checker (see the module docs).
pub struct Checker {
    queue: SyncSender<Check>,
}

impl Checker {
    /// `threads` checks run at once; up to `queue` more wait their turn.
    pub fn start(threads: usize, queue: usize) -> Checker {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Check>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("branchd-pwcheck-{i}")).spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-check thread");
            }
        }
        Checker { queue: tx }
    }

    /// Queues a check; `Err(Busy)` when the queue is full.
    pub fn verify(&self, password: String, phc: Option<String>) -> Result<oneshot::Receiver<bool>, Busy> {
        let (reply, rx) = oneshot::channel();
        match self.queue.try_send(Check { password, phc, reply }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

fn worker(rx: &Mutex<Receiver<Check>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let next = {
            let Ok(rx) = rx.lock() else { return };
            // Holding a buffer while idle would keep 19 MiB per thread: free it first.
            match rx.try_recv() {
                Ok(c) => Ok(c),
                Err(_) => {
                    blocks = Vec::new();
                    rx.recv()
                }
            }
        };
        let Ok(check) = next else { return };
        let ok = match &check.phc {
            Some(phc) => verify_with(&check.password, phc, &mut blocks),
            None => {
                verify_with(&check.password, dummy_hash(), &mut blocks);
                false
            }
        };
        let _ = check.reply.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_agrees_with_the_library() {
        let phc = hash("right horse battery");
        let mut blocks = Vec::new();
        assert!(verify_with("right horse battery", &phc, &mut blocks));
        assert!(!verify_with("wrong", &phc, &mut blocks));
        assert!(verify("right horse battery", &phc));
        assert!(!verify_with("x", "not a phc string", &mut blocks));
        // Absurd parameters are refused, not computed.
        assert!(!verify_with("x", "$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", &mut blocks));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let c = Checker::start(1, 1);
        let phc = hash("pw");
        let mut waiting = Vec::new();
        let mut busy = 0;
        for _ in 0..10 {
            match c.verify("pw".into(), Some(phc.clone())) {
                Ok(rx) => waiting.push(rx),
                Err(Busy) => busy += 1,
            }
        }
        assert!(busy >= 7, "one running, one queued, the rest refused: {busy}");
        for rx in waiting {
            assert!(rx.await.unwrap());
        }
        assert!(!c.verify("nope".into(), None).unwrap().await.unwrap(), "unknown emails never pass");
    }
}
