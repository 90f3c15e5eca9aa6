//! The user gate (SPEC §2): a valid token of a locally known user is still refused when that
//! user is disabled or the token's `iat` is before the user's last password change. Tokens
//! whose `sub` is not a local user (HQ's) pass. It runs on every REST call and handshake, so
//! the answer per user is cached for [`TTL`]; changes made through this server invalidate
//! their user at once and wake the loop that closes such users' sockets. Changes made by
//! another process (the CLI, the hub's feed) take effect within the TTL.
//!
//! Owns the cache; must not know HTTP or Socket.IO (the callers map its refusals).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{AuthError, Principal};
use crate::store::{Db, StoreError, directory};

/// How long a user's state is trusted without reading it again.
pub const TTL: Duration = Duration::from_secs(2);
/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// What refusing a token depends on: (disabled, password changed at, Unix milliseconds).
pub type UserState = (bool, Option<i64>);

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Refused(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Default)]
pub struct UserGate {
    cache: Mutex<HashMap<String, (Instant, Option<UserState>)>>,
    changed: tokio::sync::Notify,
}

/// The verdict for one token (`iat` in Unix milliseconds) of a user in `state` (`None`: not
/// a local user).
pub fn verdict(state: Option<UserState>, iat: Option<i64>) -> Result<(), AuthError> {
    let Some((disabled, changed_at)) = state else { return Ok(()) };
    if disabled {
        return Err(AuthError::Invalid("the user is disabled".into()));
    }
    if let Some(changed) = changed_at
        && iat.is_none_or(|iat| iat < changed)
    {
        return Err(AuthError::Invalid("the token was issued before the user's password was changed; log in again".into()));
    }
    Ok(())
}

impl UserGate {
    /// Refuses the token of a disabled user or one older than its password. Desktop apps
    /// (license keys) are not users and pass.
    pub async fn check(&self, db: &Db, p: &Principal, iat: Option<i64>) -> Result<(), GateError> {
        if p.is_desktop() {
            return Ok(());
        }
        let now = Instant::now();
        let cached = self.cache.lock().ok().and_then(|m| m.get(&p.sub).filter(|(at, _)| now.duration_since(*at) < TTL).map(|(_, s)| *s));
        let state = match cached {
            Some(s) => s,
            None => {
                let sub = p.sub.clone();
                let s = db.read(move |c| directory::user_gate_state(c, &sub)).await?;
                if let Ok(mut m) = self.cache.lock() {
                    if m.len() >= SWEEP_AT {
                        m.retain(|_, (at, _)| now.duration_since(*at) < TTL);
                    }
                    m.insert(p.sub.clone(), (now, s));
                }
                s
            }
        };
        Ok(verdict(state, iat)?)
    }

    /// A user was disabled, enabled, removed or got a new password here: forget it and wake
    /// the socket sweep.
    pub fn invalidate(&self, user_id: &str) {
        if let Ok(mut m) = self.cache.lock() {
            m.remove(user_id);
        }
        self.changed.notify_one();
    }

    /// Resolves when [`UserGate::invalidate`] was called (once per call batch).
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_disabled_users_and_tokens_older_than_the_password() {
        assert!(verdict(None, None).is_ok(), "not a local user (an HQ token)");
        assert!(verdict(Some((false, None)), None).is_ok());
        assert!(verdict(Some((true, None)), Some(100)).is_err());
        assert!(verdict(Some((false, Some(100))), Some(99)).is_err());
        assert!(verdict(Some((false, Some(100))), Some(100)).is_ok());
        assert!(verdict(Some((false, Some(100))), None).is_err(), "a token without iat predates any change");
    }
}
