//! Login throttling: repeated wrong passwords for one email, and from one source address,
//! are slowed down (429 with a wait). A source address that keeps failing is refused before
//! any password check (cheap), so a flood from one guest phone costs the appliance almost
//! nothing while staff on other devices log in. The tables are bounded, and bounding them
//! never forgets a lockout: when an email table is full of lockouts, emails it does not
//! know are refused until some expire. The rules are pure logic (the clock is passed in),
//! kept in a mutex'd table.
//! On a hub cluster the email counts live in the shared database (`*_email` methods, the
//! same rules), so every process counts every failure; the per-source counts stay per
//! process (the balancer sends one address to one process).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::store::{StoreError, directory};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`] before an email is locked out.
pub const FREE_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(600);
/// The first lockout; it doubles with each further failure, up to [`MAX_LOCK`].
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
pub const MAX_LOCK: Duration = Duration::from_secs(900);
/// Emails tracked at most: entries past their window go first, then the oldest unlocked;
/// lockouts are never dropped.
const MAX_TRACKED: usize = 10_000;

struct Entry {
    failures: u32,
    first_at: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
    /// A hub cluster: the counts live in the shared database instead (every process sees
    /// every failure), with the same rules.
    shared: Option<crate::store::Db>,
}

impl LoginThrottle {
    /// The throttle of a hub cluster's process: counts kept in `db` (PostgreSQL).
    pub fn shared(db: crate::store::Db) -> Self {
        LoginThrottle { entries: Mutex::default(), shared: Some(db) }
    }

    /// [`LoginThrottle::check`], where the counts are kept (this process, or the cluster's
    /// database).
    pub async fn check_email(&self, email: &str, now: Instant) -> Result<Result<(), Duration>, StoreError> {
        let Some(db) = &self.shared else { return Ok(self.check(email, now)) };
        let k = key(email);
        let record = db.read(move |r| directory::login_failures(r, &k)).await?;
        let now_ms = unix_ms();
        Ok(match record.and_then(|f| f.locked_until_ms) {
            Some(until) if until > now_ms => Err(Duration::from_millis((until - now_ms) as u64)),
            _ => Ok(()),
        })
    }

    /// [`LoginThrottle::failed`], where the counts are kept.
    pub async fn failed_email(&self, email: &str, now: Instant) -> Result<Option<Duration>, StoreError> {
        let Some(db) = &self.shared else { return Ok(self.failed(email, now)) };
        let k = key(email);
        db.write(move |tx| {
            let now_ms = unix_ms();
            let window = WINDOW.as_millis() as i64;
            let before = directory::login_failures(tx, &k)?;
            let fresh = before.as_ref().is_none_or(|f| now_ms - f.first_at_ms >= window && f.locked_until_ms.is_none_or(|u| u <= now_ms));
            let (count, first_at_ms) = match (&before, fresh) {
                (Some(f), false) => (u32::try_from(f.failures).unwrap_or(u32::MAX), f.first_at_ms),
                _ => (0, now_ms),
            };
            let (failures, lock) = next_failure(count, FREE_FAILURES);
            let locked_until_ms = match lock {
                Some(l) => Some(now_ms + l.as_millis() as i64),
                None => before.filter(|_| !fresh).and_then(|f| f.locked_until_ms),
            };
            let record = directory::LoginFailures { failures: i64::from(failures), first_at_ms, locked_until_ms };
            directory::set_login_failures(tx, &k, &record, now_ms - window, now_ms)?;
            Ok(lock)
        })
        .await
    }

    /// [`LoginThrottle::succeeded`], where the counts are kept.
    pub async fn succeeded_email(&self, email: &str) -> Result<(), StoreError> {
        let Some(db) = &self.shared else {
            self.succeeded(email);
            return Ok(());
        };
        let k = key(email);
        // Most logins have nothing to clear: a read, not a write, for them.
        let probe = k.clone();
        if db.read(move |r| directory::login_failures(r, &probe)).await?.is_some() {
            db.write(move |tx| directory::clear_login_failures(tx, &k)).await?;
        }
        Ok(())
    }

    /// `Err(wait)` when `email` is locked out at `now`, or when the table is full of
    /// lockouts and does not know `email` (it could not keep count of its failures).
    pub fn check(&self, email: &str, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        check_in(&entries, &key(email), now, MAX_TRACKED)
    }

    /// Records a wrong password; returns the lockout it started, if any.
    pub fn failed(&self, email: &str, now: Instant) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        fail_in(&mut entries, key(email), now, MAX_TRACKED, FREE_FAILURES)
    }

    /// A successful login clears the email's record.
    pub fn succeeded(&self, email: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&key(email));
    }
}

fn check_in<K: std::hash::Hash + Eq>(entries: &HashMap<K, Entry>, key: &K, now: Instant, max: usize) -> Result<(), Duration> {
    match entries.get(key) {
        Some(Entry { locked_until: Some(until), .. }) if *until > now => Err(*until - now),
        Some(_) => Ok(()),
        None if entries.len() >= max && entries.values().all(|e| e.locked_until.is_some_and(|u| u > now)) => {
            let soonest = entries.values().filter_map(|e| e.locked_until).min().unwrap_or(now + FIRST_LOCK);
            Err(soonest.saturating_duration_since(now).max(Duration::from_secs(1)))
        }
        None => Ok(()),
    }
}

/// Makes room for one more entry without forgetting a lockout: `false` when every entry
/// is a lockout still running.
fn make_room<K: Clone + std::hash::Hash + Eq>(entries: &mut HashMap<K, Entry>, now: Instant, max: usize) -> bool {
    if entries.len() < max {
        return true;
    }
    let locked = |e: &Entry| e.locked_until.is_some_and(|u| u > now);
    entries.retain(|_, e| now.duration_since(e.first_at) < WINDOW || locked(e));
    if entries.len() < max {
        return true;
    }
    let oldest_unlocked = entries.iter().filter(|(_, e)| !locked(e)).min_by_key(|(_, e)| e.first_at).map(|(k, _)| k.clone());
    match oldest_unlocked {
        Some(k) => {
            entries.remove(&k);
            true
        }
        None => false,
    }
}

fn fail_in<K: Clone + std::hash::Hash + Eq>(
    entries: &mut HashMap<K, Entry>,
    key: K,
    now: Instant,
    max: usize,
    free: u32,
) -> Option<Duration> {
    if !entries.contains_key(&key) && !make_room(entries, now, max) {
        return None; // `check_in` refuses such keys while the table is full of lockouts.
    }
    let e = entries.entry(key).or_insert(Entry { failures: 0, first_at: now, locked_until: None });
    let fresh = now.duration_since(e.first_at) >= WINDOW && e.locked_until.is_none_or(|u| u <= now);
    if fresh {
        *e = Entry { failures: 0, first_at: now, locked_until: None };
    }
    let (failures, lock) = next_failure(e.failures, free);
    e.failures = failures;
    if let Some(lock) = lock {
        e.locked_until = Some(now + lock);
    }
    lock
}

/// One more failure after `failures`: the new count and the lockout it starts, if any (it
/// doubles with each failure past `free`, up to [`MAX_LOCK`]).
fn next_failure(failures: u32, free: u32) -> (u32, Option<Duration>) {
    let failures = failures.saturating_add(1);
    if failures <= free {
        return (failures, None);
    }
    let doublings = (failures - free - 1).min(10);
    (failures, Some(FIRST_LOCK.saturating_mul(1 << doublings).min(MAX_LOCK)))
}

fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Wrong passwords allowed from one source address within [`WINDOW`]: enough for a shift's
/// worth of staff typos on a shared tablet, far too few to guess a password.
pub const SOURCE_FREE_FAILURES: u32 = 20;
/// Password checks one source address may have running or queued at once.
pub const SOURCE_CONCURRENT: u32 = 4;
const MAX_SOURCES: usize = 65_536;

/// The source of a login: an IPv4 address, or an IPv6 /64 (one device can pick any
/// address in its /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(u128);

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(u32::from(v4) as u128),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(u32::from(v4) as u128),
                None => Source((u128::from(v6) & !((1u128 << 64) - 1)) | (1 << 32)),
            },
        }
    }
}

#[derive(Default)]
struct Sources {
    entries: HashMap<Source, Entry>,
    busy: HashMap<Source, u32>,
}

/// Per-source-address login throttle (see the module docs).
#[derive(Default)]
pub struct SourceThrottle {
    inner: Mutex<Sources>,
}

/// A login in progress from one source; dropping it frees the slot.
pub struct SourceSlot<'a> {
    throttle: &'a SourceThrottle,
    source: Source,
}

impl Drop for SourceSlot<'_> {
    fn drop(&mut self) {
        let mut s = self.throttle.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = s.busy.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                s.busy.remove(&self.source);
            }
        }
    }
}

/// Why a source may not log in now.
#[derive(Debug, PartialEq, Eq)]
pub enum SourceRefusal {
    Locked(Duration),
    Busy,
}

impl SourceThrottle {
    /// A slot for one login from `source`, or why not.
    pub fn enter(&self, source: Source, now: Instant) -> Result<SourceSlot<'_>, SourceRefusal> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        check_in(&s.entries, &source, now, MAX_SOURCES).map_err(SourceRefusal::Locked)?;
        let n = s.busy.entry(source).or_insert(0);
        if *n >= SOURCE_CONCURRENT {
            return Err(SourceRefusal::Busy);
        }
        *n += 1;
        Ok(SourceSlot { throttle: self, source })
    }

    /// Records a wrong password from `source`; returns the lockout it started, if any.
    pub fn failed(&self, source: Source, now: Instant) -> Option<Duration> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        fail_in(&mut s.entries, source, now, MAX_SOURCES, SOURCE_FREE_FAILURES)
    }
}

/// A token bucket per source address: `burst` at once, then `per_second`. Bounded: when the
/// table is full, buckets that are full again (idle sources) are dropped first.
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<Source, (f64, Instant)>>,
}

const MAX_BUCKETS: usize = 65_536;

impl RateLimiter {
    pub fn new(burst: u32, per_second: u32) -> RateLimiter {
        RateLimiter { burst: burst as f64, per_second: per_second as f64, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `source`; `false` when it has none left.
    pub fn allow(&self, source: Source, now: Instant) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= MAX_BUCKETS && !b.contains_key(&source) {
            let (burst, rate) = (self.burst, self.per_second);
            b.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
            if b.len() >= MAX_BUCKETS {
                return false;
            }
        }
        let (tokens, at) = b.entry(source).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
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
    fn a_flood_of_other_emails_never_wipes_a_lockout() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..=FREE_FAILURES {
            t.failed("owner@example.com", now);
        }
        assert!(t.check("owner@example.com", now).is_err());
        for i in 0..(MAX_TRACKED * 2) {
            t.failed(&format!("x{i}@example.com"), now);
        }
        assert!(t.check("owner@example.com", now + Duration::from_secs(1)).is_err(), "still locked");
        // A table full of lockouts refuses emails it cannot count.
        let t = LoginThrottle::default();
        for i in 0..MAX_TRACKED {
            for _ in 0..=FREE_FAILURES {
                t.failed(&format!("l{i}@example.com"), now);
            }
        }
        assert!(t.check("new@example.com", now).is_err());
        assert!(t.check("new@example.com", now + MAX_LOCK).is_ok(), "until the lockouts end");
    }

    #[test]
    fn a_source_is_locked_after_its_free_failures_and_limited_in_concurrency() {
        let t = SourceThrottle::default();
        let now = Instant::now();
        let a = Source::from("192.0.2.7".parse::<IpAddr>().unwrap());
        let b = Source::from("192.0.2.8".parse::<IpAddr>().unwrap());
        for _ in 0..SOURCE_FREE_FAILURES {
            assert_eq!(t.failed(a, now), None);
        }
        assert_eq!(t.failed(a, now), Some(FIRST_LOCK));
        assert!(matches!(t.enter(a, now), Err(SourceRefusal::Locked(_))));
        let slots: Vec<_> = (0..SOURCE_CONCURRENT).map(|_| t.enter(b, now).unwrap()).collect();
        assert_eq!(t.enter(b, now).err(), Some(SourceRefusal::Busy));
        drop(slots);
        assert!(t.enter(b, now).is_ok());
        // Every address of an IPv6 /64 is one source.
        let v6a = Source::from("2001:db8::1".parse::<IpAddr>().unwrap());
        let v6b = Source::from("2001:db8::ffff:1234".parse::<IpAddr>().unwrap());
        assert_eq!(v6a, v6b);
        assert_eq!(Source::from("::ffff:192.0.2.7".parse::<IpAddr>().unwrap()), a);
    }

    #[test]
    fn the_rate_limiter_allows_a_burst_then_the_rate() {
        let r = RateLimiter::new(5, 2);
        let a = Source::from("192.0.2.9".parse::<IpAddr>().unwrap());
        let now = Instant::now();
        assert_eq!((0..10).filter(|_| r.allow(a, now)).count(), 5);
        assert!(r.allow(a, now + Duration::from_millis(500)), "one more after half a second at 2/s");
        assert!(!r.allow(a, now + Duration::from_millis(500)));
        assert!(r.allow(Source::from("192.0.2.10".parse::<IpAddr>().unwrap()), now), "others unaffected");
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
