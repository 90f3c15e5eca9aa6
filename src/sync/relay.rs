//! The branch's side of sync: one task that pushes the outbox to the hub in stream order and
//! pulls the hub's feed. It advances its cursor only from the hub's answer (given after the
//! hub's commit), retries with exponential backoff and jitter, is woken early by new events,
//! notices when the hub lost events it had acknowledged (a restored backup) and sends them
//! again, and stops loudly — never loops — on a credential or protocol refusal. Its status
//! and wake-up live in `AppState` (`state::relay::Relay`).

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{BATCH_MAX_BYTES, BATCH_MAX_EVENTS, FEED_MAX, FeedResponse, Hello, PROTOCOL, PushResponse, WireEvent, apply};
use crate::state::AppState;
use crate::store::sync as store;
use crate::store::{StoreError, events::Origin};

/// Idle time between feed polls when nothing wakes the relay.
const IDLE: Duration = Duration::from_secs(5);
/// The hub's code for an event whose number it already holds for another event.
const SEQ_CONFLICT: &str = "SEQ_CONFLICT";
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PERSIST_SUCCESS_EVERY: Duration = Duration::from_secs(60);

enum Fail {
    /// Try again later (network, 5xx, timeouts).
    Retry(String),
    /// The hub refused the batch as too large (413): send fewer events.
    TooLarge(String),
    /// The hub refused us for good (credential, protocol): stop and say so.
    Fatal(String),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Retry(format!("local database: {e}"))
    }
}

impl From<reqwest::Error> for Fail {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's message leaves out the cause ("error sending request"); the innermost
        // one says what went wrong (refused, timed out, an untrusted certificate).
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let why = cause.to_string();
        Fail::Retry(if why == e.to_string() { format!("uplink: {e}") } else { format!("uplink: {e}: {why}") })
    }
}

struct Uplink {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Uplink {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Fail> {
        let res = req.bearer_auth(&self.token).send().await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or_default().to_string();
        let msg = body["error"]["message"].as_str().unwrap_or_default().to_string();
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(Fail::Fatal(format!("the hub refused the uplink credential ({code}: {msg}); check BRANCHD_UPSTREAM_TOKEN")))
            }
            StatusCode::BAD_REQUEST if code == "PROTOCOL_UNSUPPORTED" => Err(Fail::Fatal(format!("protocol mismatch: {msg}"))),
            StatusCode::NOT_FOUND => Err(Fail::Fatal(format!("{} does not serve sync (is it a hub?)", self.base))),
            StatusCode::PAYLOAD_TOO_LARGE => Err(Fail::TooLarge(format!("the hub refused a batch as too large ({code}: {msg})"))),
            s => Err(Fail::Retry(format!("hub answered {s}: {code} {msg}"))),
        }
    }
}

/// The HTTP client for the hub: HQ's certificate is verified against the system's roots
/// (and the bundled Mozilla roots), plus the CA certificates in `upstream_ca`
/// (`BRANCHD_UPSTREAM_CA`, PEM) for an HQ with a private CA.
pub fn uplink_client(upstream_ca: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(20));
    if let Some(path) = upstream_ca {
        let pem = std::fs::read(path).map_err(|e| format!("BRANCHD_UPSTREAM_CA: cannot read {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("BRANCHD_UPSTREAM_CA: {} is not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("BRANCHD_UPSTREAM_CA: no certificate in {}", path.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| format!("cannot make the uplink's HTTP client: {e}"))
}

pub async fn run(state: AppState) {
    let config = state.config();
    let (Some(base), Some(token)) = (config.upstream_url.clone(), config.upstream_token.as_ref().map(|t| t.expose().to_string())) else {
        if config.upstream_url.is_some() {
            tracing::error!("BRANCHD_UPSTREAM_URL is set but BRANCHD_UPSTREAM_TOKEN is not: sync is off");
            state.sync().update(|s| s.stopped = Some("BRANCHD_UPSTREAM_TOKEN is not set".into()));
        }
        return;
    };
    run_uplink(state, base, token).await
}

/// The relay for one uplink: from the configuration at start ([`run`]), or the one first-run
/// setup joined while serving (it also starts it; later starts find it in the configuration).
pub async fn run_uplink(state: AppState, base: String, token: String) {
    let config = state.config();
    state.sync().update(|s| {
        s.enabled = true;
        s.stopped = None;
    });
    let client = match uplink_client(config.upstream_ca.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the uplink: sync is off");
            state.sync().update(|s| s.stopped = Some(e));
            return;
        }
    };
    let up = Uplink { client, base, token };
    let stop = state.shutdown_token().clone();
    let mut failures: u32 = 0;
    // The time of the last success is kept on disk at most once a minute: an idle uplink
    // exchanges every 5 s, and an SD card should not take a write for each.
    let mut persisted: Option<tokio::time::Instant> = None;
    loop {
        let wait = match cycle(&state, &up).await {
            Ok(more) => {
                failures = 0;
                let now = crate::store::now_rfc3339();
                state.sync().update(|s| {
                    s.online = true;
                    s.last_error = None;
                    s.last_success_at = Some(now.clone());
                });
                if persisted.is_none_or(|at| at.elapsed() >= PERSIST_SUCCESS_EVERY) {
                    persisted = Some(tokio::time::Instant::now());
                    let _ = state.db().write(move |tx| store::state_set(tx, "last_success", &now)).await;
                }
                if more { Duration::ZERO } else { IDLE }
            }
            Err(Fail::Retry(why) | Fail::TooLarge(why)) => {
                failures += 1;
                let base = Duration::from_millis(250u64.saturating_mul(1 << failures.min(8))).min(MAX_BACKOFF);
                let jitter = rand::thread_rng().gen_range(0..=base.as_millis() as u64 / 2);
                tracing::warn!(reason = %why, retry_in_ms = base.as_millis() as u64 + jitter, "sync: uplink attempt failed");
                state.sync().update(|s| {
                    s.online = false;
                    s.last_error = Some(why);
                });
                base + Duration::from_millis(jitter)
            }
            Err(Fail::Fatal(why)) => {
                tracing::error!(reason = %why, "sync stopped; fix the configuration and restart");
                state.sync().update(|s| {
                    s.online = false;
                    s.stopped = Some(why.clone());
                    s.last_error = Some(why);
                });
                return;
            }
        };
        refresh_backlog(&state).await;
        let offline = failures > 0;
        tokio::select! {
            _ = state.sync().notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = uplink_back(&up), if offline => tracing::info!("sync: the hub is reachable again"),
            _ = stop.cancelled() => return,
        }
    }
}

/// Why asking a hub's hello failed (first-run setup's join check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloError {
    /// Nothing answered, or not as a hub does (network, TLS, timeouts, 5xx, not JSON).
    Unreachable(String),
    /// The hub refused the uplink credential.
    Refused(String),
    /// The address answers but serves no sync (not a hub), or speaks another protocol.
    NotHub(String),
}

/// Asks a hub's hello once with an uplink credential: which branch and company it is for,
/// and (hubs of this version) their names and currency. Nothing is stored.
pub async fn ask_hello(base: &str, token: &str, upstream_ca: Option<&std::path::Path>) -> Result<Hello, HelloError> {
    let client = uplink_client(upstream_ca).map_err(HelloError::Unreachable)?;
    let base = base.trim_end_matches('/');
    let res = client.get(format!("{base}/sync/v1/hello")).bearer_auth(token).send().await.map_err(|e| match Fail::from(e) {
        Fail::Retry(why) | Fail::TooLarge(why) | Fail::Fatal(why) => HelloError::Unreachable(why),
    })?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let (code, msg) = (body["error"]["code"].as_str().unwrap_or_default(), body["error"]["message"].as_str().unwrap_or_default());
    match status {
        s if s.is_success() => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(HelloError::Refused(format!("the hub at {base} refused the uplink credential ({code}: {msg})")));
        }
        StatusCode::NOT_FOUND => return Err(HelloError::NotHub(format!("{base} does not serve sync (is it the HQ hub?)"))),
        s => return Err(HelloError::Unreachable(format!("{base} answered {s} {code} {msg}"))),
    }
    let hello: Hello = serde_json::from_value(body).map_err(|e| HelloError::NotHub(format!("{base} did not answer as a hub: {e}")))?;
    if !hello.supported.contains(&PROTOCOL) {
        return Err(HelloError::NotHub(format!("the hub speaks sync protocols {:?}, this appliance speaks {PROTOCOL}", hello.supported)));
    }
    Ok(hello)
}

/// Resolves once the hub answers its hello again (asked every 2 s), so a backoff does not
/// delay catching up after an outage. A port that accepts connections is not enough: a
/// reverse proxy in front of a stopped hub accepts them and answers 502.
async fn uplink_back(up: &Uplink) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let hello = up.client.get(format!("{}/sync/v1/hello", up.base)).bearer_auth(&up.token).timeout(Duration::from_secs(2));
        if hello.send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
    }
}

/// The branch this appliance syncs for: as the hub said (remembered across restarts), or,
/// before the hub was ever reached, the appliance's only branch.
async fn uplink_branch(state: &AppState) -> Option<String> {
    if let Some(b) = state.sync().status().branch_id {
        return Some(b);
    }
    let found = state
        .db()
        .read(|c| {
            if let Some(b) = store::state_get(c, "uplink:branch")? {
                return Ok(Some(b));
            }
            let all = crate::store::directory::branches(c, None)?;
            Ok(if all.len() == 1 { all.into_iter().next().map(|b| b.id) } else { None })
        })
        .await
        .ok()
        .flatten();
    if let Some(b) = &found {
        state.sync().update(|s| s.branch_id = Some(b.clone()));
    }
    found
}

async fn refresh_backlog(state: &AppState) {
    let Some(branch) = uplink_branch(state).await else { return };
    let b = branch.clone();
    if let Ok((pending, oldest, parked, acked)) = state
        .db()
        .read(move |c| {
            let (n, oldest) = store::pending(c, &b)?;
            Ok((n, oldest, store::parked_count(c)?, store::acked(c, &b)?))
        })
        .await
    {
        let age = oldest.map(|ms| (chrono::Utc::now().timestamp_millis() - ms).max(0) / 1000);
        state.sync().update(|s| {
            s.pending = pending;
            s.oldest_pending_age_seconds = age;
            s.parked = parked;
            s.acked = acked;
        });
    }
}

/// One exchange: hello (divergence check), one push batch, one feed page. `Ok(true)` when
/// more work is waiting.
async fn cycle(state: &AppState, up: &Uplink) -> Result<bool, Fail> {
    let hello: Hello = serde_json::from_value(up.send(up.client.get(format!("{}/sync/v1/hello", up.base))).await?)
        .map_err(|e| Fail::Retry(format!("bad hello: {e}")))?;
    if !hello.supported.contains(&PROTOCOL) {
        return Err(Fail::Fatal(format!("the hub speaks sync protocols {:?}, this branch speaks {PROTOCOL}", hello.supported)));
    }
    let branch = hello.branch_id.clone();
    let b = branch.clone();
    let known = state.db().read(move |c| Ok::<_, StoreError>(crate::store::directory::branch(c, &b)?.is_some())).await?;
    let warning = (!known).then(|| {
        format!(
            "the uplink credential is for branch {branch}, which this appliance does not have: orders of its own branches are not sent; \
             add it (branchd branch add {branch} …) or create the credential for this appliance's branch"
        )
    });
    if let Some(w) = &warning
        && state.sync().status().warning.as_deref() != Some(w)
    {
        tracing::warn!("sync: {w}");
    }
    state.sync().update(|s| {
        s.branch_id = Some(branch.clone());
        s.hub_high_water = hello.high_water;
        s.warning = warning;
    });
    let (b, hw) = (branch.clone(), hello.high_water);
    // Read first: an idle exchange (the usual case) changes nothing and writes nothing.
    let (known_branch, acked, last) = state
        .db()
        .read(move |c| Ok::<_, StoreError>((store::state_get(c, "uplink:branch")?, store::acked(c, &b)?, store::stream_last(c, &b)?)))
        .await?;
    let needs_write = known_branch.as_deref() != Some(branch.as_str()) || plan(acked, last, hw) != Step::Push;
    let b = branch.clone();
    let (acked, skipped) = if !needs_write {
        (acked, false)
    } else {
        state
            .db()
            .write(move |tx| {
                store::state_set(tx, "uplink:branch", &b)?;
                let acked = store::acked(tx, &b)?;
                let step = plan(acked, store::stream_last(tx, &b)?, hw);
                match step {
                    Step::Push => {}
                    Step::Resend => store::set_acked(tx, &b, hw)?,
                    Step::SkipTo => store::skip_to(tx, &b, hw)?,
                }
                Ok::<_, StoreError>((acked, step == Step::SkipTo))
            })
            .await?
    };
    if hello.high_water < acked {
        diverged(state, &branch, acked, hello.high_water);
    }
    if skipped {
        tracing::warn!(
            branch_id = %branch,
            acknowledged = acked,
            hub_has = hw,
            "sync: the hub has events this appliance never wrote (replaced, or restored from an older backup?); numbering continues after them"
        );
    }
    let pushed_more = push(state, up, &branch, hw).await?;
    let feed_more = pull(state, up, &hello.company_id, &branch, hello.feed_head).await?;
    Ok(pushed_more || feed_more)
}

/// What the relay does about the hub's mark (from hello) before it pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Push from the acknowledged mark. (With events waiting and the hub ahead, `push` first
    /// checks them against the hub.)
    Push,
    /// The hub lost events it had acknowledged: move the mark back to the hub's and send them
    /// again from there.
    Resend,
    /// Nothing waiting here, yet the hub has more: numbers this appliance never wrote;
    /// numbering continues after the hub's mark.
    SkipTo,
}

/// Decides the [`Step`] from this appliance's acknowledged mark, the last number it wrote and
/// the hub's mark. Pure.
fn plan(acked: i64, last: i64, hub_high_water: i64) -> Step {
    if hub_high_water < acked {
        Step::Resend
    } else if hub_high_water > acked && last <= acked {
        Step::SkipTo
    } else {
        Step::Push
    }
}

fn diverged(state: &AppState, branch: &str, believed: i64, hub: i64) {
    tracing::warn!(
        branch_id = branch,
        acknowledged = believed,
        hub_has = hub,
        "sync: the hub lost events it had acknowledged (restored from a backup?); sending them again"
    );
    state.sync().update(|s| s.divergences += 1);
}

/// Sends one batch from the acknowledged mark. `hub_high_water` (from hello) above that mark
/// means the hub has events this appliance has not seen acknowledged: either our own (an
/// answer was lost) or others under the same numbers (this appliance was restored or
/// replaced). The batch then stops at the hub's mark, so nothing new is applied before the
/// numbers are checked; numbers the hub holds for other events are moved past its mark
/// together with everything after them, keeping their order.
async fn push(state: &AppState, up: &Uplink, branch: &str, hub_high_water: i64) -> Result<bool, Fail> {
    let (mut batch, checking) = next_batch(state, branch, hub_high_water).await?;
    if batch.is_empty() {
        return Ok(false);
    }
    let answer = send(up, branch, &mut batch).await?;
    let res: PushResponse = serde_json::from_value(answer).map_err(|e| Fail::Retry(format!("bad push answer: {e}")))?;
    let (first, last, n) = (batch[0].seq, batch[batch.len() - 1].seq, batch.len());
    let conflict = res.parked.iter().filter(|p| p.code == SEQ_CONFLICT).map(|p| p.seq).min();
    let (b, parked, hw) = (branch.to_string(), res.parked.clone(), res.high_water);
    let (before, rebased) = state
        .db()
        .write(move |tx| {
            let before = store::acked(tx, &b)?;
            for p in parked.iter().filter(|p| p.code != SEQ_CONFLICT && conflict.is_none_or(|c| p.seq < c)) {
                store::park(tx, &b, p.seq, &p.code, &p.message)?;
            }
            if let Some(c) = conflict {
                return Ok::<_, StoreError>((before, Some(store::rebase(tx, &b, c, hw)?)));
            }
            // While checking, the hub's mark may lie beyond this batch: acknowledge only what
            // was checked.
            store::set_acked(tx, &b, if checking { hw.min(last) } else { hw })?;
            Ok((before, None))
        })
        .await?;
    if let (Some(c), Some((moved, first_new))) = (conflict, rebased) {
        tracing::warn!(
            branch_id = branch,
            from = c,
            moved,
            first_new,
            hub_high_water = hw,
            "sync: the hub holds other events under this appliance's numbers (restored or replaced appliance?); renumbered ours to follow them"
        );
        state.sync().update(|s| s.divergences += 1);
        return Ok(true);
    }
    if hw < before {
        diverged(state, branch, before, hw);
    }
    for p in &res.parked {
        tracing::error!(branch_id = branch, seq = p.seq, code = %p.code, reason = %p.message, "sync: the hub parked an event as invalid");
    }
    tracing::info!(
        branch_id = branch,
        first,
        last,
        events = n,
        hub_high_water = hw,
        duplicates = res.duplicates,
        "sync: batch acknowledged"
    );
    let acked = if checking { hw.min(last) } else { hw };
    state.sync().update(|s| {
        s.pushed += (acked - before).max(0) as u64;
        s.duplicates += res.duplicates as u64;
        s.acked = acked;
    });
    // Taken up to its end: whatever was written meanwhile, or cut off by the batch limits,
    // goes at once rather than at the next wake.
    let b = branch.to_string();
    let waiting = state.db().read(move |c| Ok::<_, StoreError>(store::stream_last(c, &b)? > acked)).await?;
    Ok(acked >= last && waiting)
}

/// The next batch from the acknowledged mark, and whether it is being checked against the
/// hub's mark (see [`push`]).
async fn next_batch(state: &AppState, branch: &str, hub_high_water: i64) -> Result<(Vec<WireEvent>, bool), Fail> {
    let b = branch.to_string();
    let (mut batch, mut checking) = state
        .db()
        .read(move |c| {
            let acked = store::acked(c, &b)?;
            let mut batch = store::outbox(c, &b, acked, BATCH_MAX_EVENTS, BATCH_MAX_BYTES)?;
            let checking = hub_high_water > acked;
            if checking {
                batch.retain(|e| e.seq <= hub_high_water);
            }
            Ok::<_, StoreError>((batch, checking))
        })
        .await?;
    if checking && batch.is_empty() {
        // None of ours lies at or below the hub's mark (they were renumbered past it): the
        // numbers up to it are the hub's alone.
        let b = branch.to_string();
        batch = state
            .db()
            .write(move |tx| {
                store::set_acked(tx, &b, hub_high_water)?;
                store::outbox(tx, &b, hub_high_water, BATCH_MAX_EVENTS, BATCH_MAX_BYTES)
            })
            .await?;
        checking = false;
    }
    Ok((batch, checking))
}

/// Posts the batch, halving it while the hub finds it too large and sending an event that
/// alone is too large as a stub; `batch` is left as what was sent.
async fn send(up: &Uplink, branch: &str, batch: &mut Vec<WireEvent>) -> Result<Value, Fail> {
    loop {
        let body = json!({"protocol": PROTOCOL, "branchId": branch, "events": batch});
        match up.send(up.client.post(format!("{}/sync/v1/events", up.base)).json(&body)).await {
            // A hub with a smaller body limit: fewer events at a time...
            Err(Fail::TooLarge(why)) if batch.len() > 1 => {
                tracing::warn!(branch_id = branch, events = batch.len(), reason = %why, "sync: batch too large for the hub; halving it");
                batch.truncate(batch.len() / 2);
            }
            // ...and an event that alone is too large goes as a stub the hub parks, so the
            // stream stays gap-free and the events behind it are not held up.
            Err(Fail::TooLarge(why)) if batch[0].data.get("omitted").is_none() => {
                let size = batch[0].data.to_string().len();
                tracing::error!(branch_id = branch, seq = batch[0].seq, bytes = size, reason = %why, "sync: event too large for the hub; sending it as a stub to be parked");
                batch[0].data = json!({"omitted": format!("{size} bytes: larger than the hub accepts")});
            }
            other => return other,
        }
    }
}

async fn pull(state: &AppState, up: &Uplink, company: &str, branch: &str, feed_head: Option<i64>) -> Result<bool, Fail> {
    let mut cursor: i64 = state.db().read(|c| Ok(store::state_get(c, "feed:cursor")?.and_then(|v| v.parse().ok()).unwrap_or(0))).await?;
    if let Some(head) = feed_head
        && cursor > head
    {
        tracing::warn!(
            cursor,
            hub_feed_head = head,
            "sync: the hub's feed went back (restored from an older backup?); reading it again from the start"
        );
        state.sync().update(|s| s.divergences += 1);
        cursor = 0;
        state.db().write(|tx| store::state_set(tx, "feed:cursor", "0")).await?;
    }
    let url = format!("{}/sync/v1/feed?after={cursor}&limit={FEED_MAX}", up.base);
    let page: FeedResponse =
        serde_json::from_value(up.send(up.client.get(url)).await?).map_err(|e| Fail::Retry(format!("bad feed page: {e}")))?;
    if page.events.is_empty() {
        return Ok(false);
    }
    let (c, b, day) = (company.to_string(), branch.to_string(), state.config().business_day(chrono::Utc::now()));
    let events = page.events.clone();
    let next = page.next_cursor;
    let applied = state
        .db()
        .write(move |tx| {
            let mut applied = 0u64;
            for e in &events {
                let out = apply::isolated(tx, |tx| apply::from_hub(tx, &c, &b, &day, &e.name, &e.data));
                tx.origin = Origin::Local;
                match out {
                    Ok(()) => applied += 1,
                    // Kept and counted with the parked events (as `feed:{branch}`), not lost
                    // in a log line: the feed moves on, and staff see something needs a look.
                    Err(r) => {
                        tracing::warn!(cursor = e.cursor, event = %e.name, code = r.code, reason = %r.message, "sync: feed event parked");
                        store::park(tx, &format!("feed:{b}"), e.cursor, r.code, &format!("{}: {}", e.name, r.message))?;
                    }
                }
            }
            store::state_set(tx, "feed:cursor", &next.to_string())?;
            Ok::<_, StoreError>(applied)
        })
        .await?;
    tracing::info!(events = page.events.len(), applied, cursor = next, "sync: feed applied");
    state.sync().update(|s| s.feed_applied += applied);
    Ok(page.more)
}

#[cfg(test)]
mod tests {
    use super::{Step, plan};

    #[test]
    fn marks_that_agree_push() {
        assert_eq!(plan(5, 5, 5), Step::Push);
        // Events waiting here: push sends (or, with the hub ahead, first checks) them.
        assert_eq!(plan(5, 9, 5), Step::Push);
        assert_eq!(plan(5, 9, 7), Step::Push);
        assert_eq!(plan(0, 0, 0), Step::Push);
    }

    #[test]
    fn a_hub_behind_the_mark_gets_the_events_again() {
        assert_eq!(plan(5, 5, 3), Step::Resend);
        assert_eq!(plan(5, 9, 0), Step::Resend);
    }

    #[test]
    fn a_hub_ahead_with_nothing_waiting_skips_its_numbers() {
        assert_eq!(plan(5, 5, 8), Step::SkipTo);
        assert_eq!(plan(0, 0, 1), Step::SkipTo);
    }
}
