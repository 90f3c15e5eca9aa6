//! Login throttling: repeated wrong passwords for one email are slowed down (429 with a
//! wait), and password hashing, which is deliberately slow, runs at most a few at a time so
//! that a flood of logins cannot take a Raspberry Pi's CPU from the kitchen. Pure logic plus
//! a mutex; the clock is passed in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`] before an email is locked out.
pub const FREE_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(600);
/// The first lockout; it doubles with each further failure, up to [`MAX_LOCK`].
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
pub const MAX_LOCK: Duration = Duration::from_secs(900);
/// Emails tracked at most (oldest entries are dropped first).
const MAX_TRACKED: usize = 10_000;

struct Entry {
    failures: u32,
    first_at: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

impl LoginThrottle {
    /// `Err(wait)` when `email` is locked out at `now`.
    pub fn check(&self, email: &str, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&key(email)).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a wrong password; returns the lockout it started, if any.
    pub fn failed(&self, email: &str, now: Instant) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_TRACKED {
            entries.retain(|_, e| now.duration_since(e.first_at) < WINDOW || e.locked_until.is_some_and(|u| u > now));
            if entries.len() >= MAX_TRACKED {
                entries.clear();
            }
        }
        let e = entries.entry(key(email)).or_insert(Entry { failures: 0, first_at: now, locked_until: None });
        if now.duration_since(e.first_at) >= WINDOW && e.locked_until.is_none_or(|u| u <= now) {
            *e = Entry { failures: 0, first_at: now, locked_until: None };
        }
        e.failures += 1;
        if e.failures <= FREE_FAILURES {
            return None;
        }
        let doublings = (e.failures - FREE_FAILURES - 1).min(10);
        let lock = FIRST_LOCK.saturating_mul(1 << doublings).min(MAX_LOCK);
        e.locked_until = Some(now + lock);
        Some(lock)
    }

    /// A successful login clears the email's record.
    pub fn succeeded(&self, email: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&key(email));
    }
}

fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_free_failures_then_growing_lockouts_and_success_clears() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.failed("Cook@Example.com", now), None);
            assert!(t.check("cook@example.com", now).is_ok());
        }
        assert_eq!(t.failed("cook@example.com", now), Some(FIRST_LOCK));
        assert_eq!(t.check(" COOK@example.com ", now + Duration::from_secs(10)), Err(FIRST_LOCK - Duration::from_secs(10)));
        assert!(t.check("other@example.com", now).is_ok(), "other users are not affected");
        let later = now + FIRST_LOCK;
        assert!(t.check("cook@example.com", later).is_ok(), "the lockout ends");
        assert_eq!(t.failed("cook@example.com", later), Some(FIRST_LOCK * 2), "and the next one is longer");
        t.succeeded("cook@example.com");
        assert!(t.check("cook@example.com", later).is_ok());
        assert_eq!(t.failed("cook@example.com", later), None, "a success starts afresh");
    }

    #[test]
    fn failures_spread_over_more_than_the_window_never_lock() {
        let t = LoginThrottle::default();
        let mut now = Instant::now();
        for _ in 0..20 {
            assert_eq!(t.failed("slow@example.com", now), None);
            now += WINDOW / 4;
        }
    }
}
