//! The print queue: one worker task per printer, FIFO, durable (jobs live in SQLite, see
//! `store::print_jobs`). A worker checks the printer is ready, marks the job `printing`,
//! sends it, and marks it `printed` only once the printer confirmed it. A delivery that may
//! have printed partly is reprinted with a `POSSIBLE DUPLICATE` banner; kitchen tickets past
//! their expiry raise an alert instead of printing late. Idle workers poll printer status
//! and broadcast changes; a printer that pushes its status (Automatic Status Back over the
//! connection or serial port its worker holds, see `drivers::network` and `drivers::serial`)
//! is heard at once, and a waiting
//! ticket goes out as soon as it says it is ready again. Shared network printers (no held
//! connection) are polled every [`SHARED_POLL`].
//!
//! Trouble is handled per printer, as a *spell*: every attempt that finds the printer not
//! ready, fails, or cannot be recorded (a full disk) doubles the wait before the next one
//! (`Timeouts::backoff_min` up to `backoff_max`); only a printer that is ready again (or a
//! person's "retry now") resets it. The log gets one line per change of state (not ready,
//! a different fault, still not ready after 1, 2, 4, ... minutes, back), never one per
//! attempt; `/metrics` counts the attempts. A ticket waiting `Timeouts::stall` raises one
//! `printer_stalled` alert per spell; printing again closes it with `printer_recovered`.
//! A printer with a fallback hands its waiting tickets over once stalled that long.
//!
//! Which workers run (and the finished-job broadcast) is the handle in `AppState`
//! (`state::print_queue::PrintQueue`); [`start`], [`wake`] and [`retry_now`] drive it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::drivers::network::{Held, Pushed};
use super::drivers::status::{Asb, Report, Status};
use super::drivers::{Driver, DriverError};
use super::render::{self, Profile, Rendered};
use crate::domain::printer::{Connection, Printer};
use crate::state::AppState;
use crate::state::print_queue::Finished;
use crate::store::print_alerts;
use crate::store::print_jobs::{self, Job};
use crate::store::{StoreError, directory, orders, printers};

/// How often a network printer shared with other senders is asked for its status (SPEC §4:
/// a change reaches `printerStatusUpdate` within 2 s where the printer reports it).
pub const SHARED_POLL: Duration = Duration::from_secs(2);

/// The connection a printer's worker holds open, and what it last heard on it.
struct Hold {
    /// What it was opened for (connection and profile): a change opens a new one.
    key: String,
    held: Arc<Held>,
    pushed: watch::Receiver<Pushed>,
}

/// The key of the connection a printer's worker holds open, if it gets one, and the kind of
/// status it pushes: an unshared network printer whose profile pushes its status (Epson TM,
/// Star) or a serial Epson TM.
fn hold_key(p: &Printer) -> Option<(String, Asb)> {
    let profile = render::profile_for(p.profile.as_deref());
    let asb = match profile {
        Profile::EpsonTm => Asb::EscPos,
        Profile::StarLine => Asb::StarLine,
        Profile::StarRaster => Asb::StarRaster,
        Profile::GenericEscPos => return None,
    };
    match &p.connection {
        Connection::Network { host, port, shared: false } if profile.pushes_status() => {
            Some((format!("{host}:{port} {}", profile.id()), asb))
        }
        Connection::Serial { path, baud_rate } if asb == Asb::EscPos => Some((format!("{path}@{baud_rate}"), asb)),
        _ => None,
    }
}

/// Recovers jobs interrupted by a crash and starts a worker for every printer.
pub async fn start(state: &AppState) -> Result<(), StoreError> {
    let recovered = state.db().write(|tx| print_jobs::recover_interrupted(tx)).await?;
    if recovered > 0 {
        tracing::warn!(jobs = recovered, "print jobs were interrupted mid-print; they will print again with a POSSIBLE DUPLICATE banner");
    }
    let all = state.db().read(|c| printers::list(c, None, 0, 100_000)).await?;
    for p in all.items {
        wake(state, &p.id);
    }
    Ok(())
}

/// Wakes the printer's worker (starting it if needed). A hub drives no printer: the ones
/// it knows are copies of its branches' printers.
pub fn wake(state: &AppState, printer_id: &str) {
    if state.config().role == crate::config::ApplianceRole::Hub {
        return;
    }
    state.print_queue().wake_or_start(printer_id, state.shutdown_token(), |wake, kick, stop| {
        tokio::spawn(run(state.clone(), printer_id.to_string(), wake, kick, stop))
    });
}

/// "Retry now": the printer's next attempt happens at once, whatever its backoff.
pub fn retry_now(state: &AppState, printer_id: &str) {
    state.print_queue().kick(printer_id);
    wake(state, printer_id);
}

/// The wait after `failures` consecutive failed attempts: `min` doubled each time up to
/// `max`, plus up to a quarter of jitter (so printers that failed together do not retry in
/// step).
fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let base = min.saturating_mul(1 << failures.clamp(1, 16).saturating_sub(1)).min(max);
    let jitter = rand::thread_rng().gen_range(0..=base.as_millis() as u64 / 4);
    base + Duration::from_millis(jitter)
}

/// How one attempt went.
enum Outcome {
    /// Printed (and confirmed where the printer can).
    Printed,
    /// Nothing to do for this printer any more (moved, cancelled, expired, a test page done).
    Done,
    /// The printer cannot print now: `status` and why.
    NotReady { status: String, why: String },
    /// The attempt failed (delivery broke, or the queue could not record its work).
    Failed { why: String },
}

/// A printer's current spell of trouble.
struct Spell {
    started: Instant,
    /// The status that describes it (`offline`, `paper_out`, ...; `error` for failures).
    status: String,
    why: String,
    next_reminder: Duration,
    /// The open `printer_stalled` alert's id, once raised (or found open at start).
    alert: Option<String>,
}

/// What a person is told a status means.
pub fn describe(status: &str) -> &'static str {
    match status {
        "offline" => "offline",
        "paper_out" => "out of paper",
        "cover_open" => "cover open",
        "error" => "in error",
        "unknown" => "not answering",
        _ => "not printing",
    }
}

struct Run {
    state: AppState,
    printer_id: String,
    failures: u32,
    hold_until: Option<Instant>,
    spell: Option<Spell>,
}

/// Keeps the held connection while the printer's hold key is the same; a new one (or none)
/// when it changes.
fn refresh_hold(hold: &mut Option<Hold>, printer: &Printer) {
    let key = hold_key(printer);
    if key.as_ref().map(|k| &k.0) != hold.as_ref().map(|h| &h.key) {
        *hold = key.map(|(key, asb)| {
            let held = Held::new(asb);
            Hold { key, pushed: held.subscribe(), held }
        });
    }
}

/// A stall alert left open by an earlier run of the server: the spell it continues.
async fn resumed_spell(state: &AppState, printer_id: &str) -> Option<Spell> {
    let pid = printer_id.to_string();
    let open = state.db().read(move |c| print_alerts::open_stall(c, &pid)).await.ok()??;
    Some(Spell {
        started: Instant::now(),
        status: "unknown".into(),
        why: "stalled before the server restarted".into(),
        next_reminder: Duration::from_secs(60),
        alert: Some(open),
    })
}

async fn run(state: AppState, printer_id: String, wake: Arc<Notify>, kick: Arc<AtomicBool>, stop: CancellationToken) {
    let t = state.print_queue().timeouts;
    let mut poll = t.poll;
    let mut last_poll = Instant::now() - poll;
    let mut hold: Option<Hold> = None;
    let mut r = Run { state: state.clone(), printer_id: printer_id.clone(), failures: 0, hold_until: None, spell: None };
    r.spell = resumed_spell(&state, &printer_id).await;
    loop {
        if stop.is_cancelled() {
            return;
        }
        if kick.swap(false, Ordering::SeqCst) {
            r.hold_until = None;
        }
        let pid = printer_id.clone();
        let printer = match state.db().read(move |c| printers::get(c, &pid)).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                state.print_queue().forget(&printer_id);
                return;
            }
            Err(e) => {
                r.trouble("unknown", &format!("cannot read the printer from the database: {e}"));
                sleep_or_wake(&wake, &stop, r.hold_left().unwrap_or(poll), None).await;
                continue;
            }
        };
        refresh_hold(&mut hold, &printer);
        poll = if matches!(printer.connection, Connection::Network { shared: true, .. }) { SHARED_POLL.min(t.poll) } else { t.poll };
        let driver = Driver::for_printer(
            &printer,
            &state.config().data_dir,
            state.desktops_arc(),
            state.print_queue().timeouts,
            state.config().print_timeout,
            hold.as_ref().map(|h| h.held.clone()),
        );
        let pid = printer_id.clone();
        let next = state.db().read(move |c| print_jobs::next_for_printer(c, &pid)).await.ok().flatten();
        if let Some(h) = &mut hold {
            r.take_pushed(h, &printer, next.is_none(), &mut last_poll, poll).await;
        }
        let pushed = hold.as_ref().map(|h| h.pushed.clone());
        if next.is_some() {
            r.stall_checks(&printer).await;
        }
        let now = print_jobs::now_ms();
        match next {
            Some(job) if job.next_attempt_ms <= now && r.hold_left().is_none() => {
                last_poll = Instant::now();
                r.attempt(&printer, &driver, job).await;
            }
            Some(job) => {
                let due = Duration::from_millis(job.next_attempt_ms.saturating_sub(now).max(0) as u64);
                let mut wait = due.max(r.hold_left().unwrap_or_default()).min(poll);
                if let Some(d) = r.next_deadline(&printer) {
                    wait = wait.min(d);
                }
                sleep_or_wake(&wake, &stop, wait.max(Duration::from_millis(10)), pushed).await;
            }
            None => {
                if last_poll.elapsed() >= poll {
                    last_poll = Instant::now();
                    r.idle_status(&printer, &driver).await;
                }
                sleep_or_wake(&wake, &stop, poll, pushed).await;
            }
        }
    }
}

impl Run {
    /// No ticket waiting: ask the printer's status; a printable answer ends a spell.
    async fn idle_status(&mut self, printer: &Printer, driver: &Driver) {
        if let Some(report) = driver.status().await {
            record_status(&self.state, printer, &report).await;
            if report.printable() && (report.answered || !printer.answers_status) {
                self.back(printer).await;
            }
        }
    }

    /// The ticket `job` is due: print it, and note how it went.
    async fn attempt(&mut self, printer: &Printer, driver: &Driver, job: Job) {
        // The ticket has been waiting since it was queued: a spell it starts counts
        // from then, so the stall alert comes within `stall` of the ticket, not of
        // the attempt.
        let waited = chrono::DateTime::parse_from_rfc3339(&job.created_at)
            .ok()
            .and_then(|c| (chrono::Utc::now() - c.with_timezone(&chrono::Utc)).to_std().ok());
        match work_on(&self.state, printer, driver, job).await {
            Outcome::Printed => self.back(printer).await,
            Outcome::Done => {}
            Outcome::NotReady { status, why } => self.trouble_since(&status, &why, waited),
            Outcome::Failed { why } => {
                let status = if printer.status == "online" { "error".to_string() } else { printer.status.clone() };
                self.trouble_since(&status, &why, waited)
            }
        }
    }

    /// What the printer pushed on its held connection since the last look (`idle`: no
    /// ticket waiting).
    async fn take_pushed(&mut self, h: &mut Hold, printer: &Printer, idle: bool, last_poll: &mut Instant, poll: Duration) {
        if !h.pushed.has_changed().unwrap_or(false) {
            return;
        }
        let pushed = h.pushed.borrow_and_update().clone();
        match pushed {
            Pushed::Status(report) => {
                record_status(&self.state, printer, &report).await;
                if report.printable() {
                    // A ticket waiting on it goes now; an idle printer's spell ends.
                    self.hold_until = None;
                    if idle {
                        self.back(printer).await;
                    }
                }
            }
            // Ask afresh (which opens a new connection), at most once a second.
            Pushed::Closed if last_poll.elapsed() >= Duration::from_secs(1) => *last_poll = Instant::now() - poll,
            Pushed::Closed | Pushed::Nothing => {}
        }
    }

    fn hold_left(&self) -> Option<Duration> {
        self.hold_until.and_then(|h| h.checked_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }

    /// A failed or not-ready attempt: the wait grows, the log hears of it only when the
    /// spell starts or its cause changes.
    fn trouble(&mut self, status: &str, why: &str) {
        self.trouble_since(status, why, None)
    }

    /// `waited`: how long the ticket at hand has already waited (a new spell starts then,
    /// at most `stall` ago).
    fn trouble_since(&mut self, status: &str, why: &str, waited: Option<Duration>) {
        let t = self.state.print_queue().timeouts;
        self.failures = self.failures.saturating_add(1);
        let wait = backoff(self.failures, t.backoff_min, t.backoff_max);
        self.hold_until = Some(Instant::now() + wait);
        self.state.metrics().print_retry();
        match &mut self.spell {
            None => {
                tracing::warn!(
                    printer_id = %self.printer_id, status, reason = why,
                    "printer cannot print: tickets wait and are retried with a growing delay (up to {} ms)",
                    t.backoff_max.as_millis()
                );
                let back = waited.unwrap_or_default().min(t.stall);
                self.spell = Some(Spell {
                    started: Instant::now().checked_sub(back).unwrap_or_else(Instant::now),
                    status: status.to_string(),
                    why: why.to_string(),
                    next_reminder: Duration::from_secs(60),
                    alert: None,
                });
            }
            Some(s) if s.status != status => {
                tracing::warn!(printer_id = %self.printer_id, status, was = %s.status, reason = why, "printer still cannot print, now for another reason");
                s.status = status.to_string();
                s.why = why.to_string();
            }
            Some(s) => {
                s.why = why.to_string();
                tracing::debug!(printer_id = %self.printer_id, status, reason = why, retry_in_ms = wait.as_millis() as u64, "print attempt put off");
            }
        }
    }

    /// The printer printed (or is ready with nothing to print): the spell ends.
    async fn back(&mut self, printer: &Printer) {
        self.failures = 0;
        self.hold_until = None;
        let Some(spell) = self.spell.take() else { return };
        tracing::info!(printer_id = %self.printer_id, after_s = spell.started.elapsed().as_secs(), "printer is back and prints again");
        let p = printer.clone();
        let res = self
            .state
            .db()
            .write(move |tx| {
                let orders = print_jobs::orders_waiting_on(tx, &p.id)?;
                print_jobs::with_order_updates(tx, &orders, |tx| print_alerts::recover(tx, &p.company_id, &p.branch_id, &p.id, &p.name))
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(printer_id = %self.printer_id, error = %e, "cannot record that the printer recovered; will try again");
            // Keep the spell so that recovery is recorded on the next success.
            self.spell = Some(spell);
        }
    }

    /// How long until the next thing a spell must do on time (stall alert, fallback move).
    fn next_deadline(&self, printer: &Printer) -> Option<Duration> {
        let s = self.spell.as_ref()?;
        let t = self.state.print_queue().timeouts;
        let mut at: Vec<Instant> = vec![];
        if s.alert.is_none() {
            at.push(s.started + t.stall);
        }
        if printer.fallback_printer_id.is_some() {
            at.push(s.started + Duration::from_secs(printer.fallback_after_seconds.max(1) as u64));
        }
        at.push(s.started + s.next_reminder);
        at.into_iter().min().map(|i| i.saturating_duration_since(Instant::now()))
    }

    /// With tickets waiting in a spell: the reminder line, the stall alert, the fallback.
    async fn stall_checks(&mut self, printer: &Printer) {
        let t = self.state.print_queue().timeouts;
        let Some(s) = &mut self.spell else { return };
        let age = s.started.elapsed();
        if age >= s.next_reminder {
            tracing::warn!(
                printer_id = %self.printer_id, status = %s.status, reason = %s.why,
                "printer still {} after {} minutes", describe(&s.status), age.as_secs() / 60
            );
            s.next_reminder = s.next_reminder.saturating_mul(2);
        }
        if s.alert.is_none() && age >= t.stall {
            let (p, status, why) = (printer.clone(), s.status.clone(), s.why.clone());
            let res = self
                .state
                .db()
                .write(move |tx| {
                    if let Some(open) = print_alerts::open_stall(tx, &p.id)? {
                        return Ok(open);
                    }
                    let (waiting, oldest) = print_jobs::waiting(tx, &p.id)?;
                    let oldest_s = oldest
                        .and_then(|o| chrono::DateTime::parse_from_rfc3339(&o).ok())
                        .map(|o| (chrono::Utc::now() - o.with_timezone(&chrono::Utc)).num_seconds().max(0))
                        .unwrap_or(0);
                    let message = format!(
                        "printer {} is {}: {waiting} ticket{} waiting",
                        p.name,
                        describe(&status),
                        if waiting == 1 { "" } else { "s" }
                    );
                    let orders = print_jobs::orders_waiting_on(tx, &p.id)?;
                    print_jobs::with_order_updates(tx, &orders, |tx| {
                        let v = print_alerts::raise(
                            tx,
                            print_alerts::NewAlert {
                                company_id: &p.company_id,
                                branch_id: &p.branch_id,
                                kind: "printer_stalled",
                                severity: "critical",
                                printer_id: Some(&p.id),
                                order_id: None,
                                job_id: None,
                                message: &message,
                                extra: json!({
                                    "status": status, "detail": why, "printerName": p.name,
                                    "waitingJobs": waiting, "oldestWaitingSeconds": oldest_s,
                                }),
                                resolved: false,
                            },
                        )?;
                        Ok(v["id"].as_str().unwrap_or_default().to_string())
                    })
                })
                .await;
            match res {
                Ok(id) => {
                    tracing::warn!(printer_id = %self.printer_id, alert_id = %id, "printer_stalled alert raised");
                    self.state.metrics().print_stalled();
                    s.alert = Some(id);
                }
                Err(e) => tracing::debug!(printer_id = %self.printer_id, error = %e, "cannot raise the stall alert yet"),
            }
        }
        self.move_to_fallback(printer, age).await;
    }

    /// After the printer's fallback delay in a spell: its waiting tickets move to the fallback.
    async fn move_to_fallback(&self, printer: &Printer, age: Duration) {
        if let Some(fallback) = printer.fallback_printer_id.clone()
            && age >= Duration::from_secs(printer.fallback_after_seconds.max(1) as u64)
        {
            let from = printer.clone();
            let res = self
                .state
                .db()
                .write(move |tx| {
                    let Some(to) = printers::get(tx, &fallback)? else { return Ok((0, String::new())) };
                    if to.branch_id != from.branch_id || print_alerts::open_stall(tx, &to.id)?.is_some() {
                        return Ok((0, to.name));
                    }
                    Ok::<_, StoreError>((print_jobs::move_jobs(tx, &from, &to)?.len(), to.name))
                })
                .await;
            match res {
                Ok((n, to)) if n > 0 => {
                    tracing::warn!(printer_id = %self.printer_id, moved = n, to = %to, "waiting tickets moved to the fallback printer")
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(printer_id = %self.printer_id, error = %e, "cannot move tickets to the fallback yet"),
            }
        }
    }
}

/// Waits `d`, or until woken (a new job, retry now), stopped, or the printer pushed
/// something (`pushed` is a copy of the worker's receiver: waiting on it leaves the news
/// unread for the worker).
async fn sleep_or_wake(wake: &Notify, stop: &CancellationToken, d: Duration, pushed: Option<watch::Receiver<Pushed>>) {
    let news = async {
        if let Some(mut rx) = pushed
            && rx.changed().await.is_ok()
        {
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
        _ = news => {}
    }
}

async fn record_status(state: &AppState, printer: &Printer, report: &Report) {
    let (p, r) = (printer.clone(), report.clone());
    let res = state.db().write(move |tx| printers::set_status(tx, &p, r.status.as_str(), r.detail.as_deref(), r.answered)).await;
    match res {
        Ok(Some(_)) => {
            tracing::info!(printer_id = %printer.id, status = report.status.as_str(), detail = ?report.detail, "printer status changed")
        }
        Ok(None) => {}
        // The spell (if any) says the store is failing; this is one of its attempts.
        Err(e) => tracing::debug!(printer_id = %printer.id, error = %e, "cannot record printer status"),
    }
}

/// Prints one job, or decides it must wait, expire or fail.
async fn work_on(state: &AppState, printer: &Printer, driver: &Driver, job: Job) -> Outcome {
    if job.kind == "kitchen" && job.reprint_of.is_none() && job.expires_at_ms.is_some_and(|e| e < print_jobs::now_ms()) {
        return match expire(state, &job).await {
            Ok(()) => Outcome::Done,
            Err(why) => Outcome::Failed { why },
        };
    }
    // Never send into a printer that says it cannot print: it could buffer the job and print
    // it much later, after we gave up on it.
    let mut answers_status = true;
    if let Some(report) = driver.status().await {
        record_status(state, printer, &report).await;
        if !report.printable() {
            let why = report.detail.clone().unwrap_or_else(|| report.status.as_str().to_string());
            return retry(state, &job, false, &format!("printer not ready: {why}"), report.status.as_str()).await;
        }
        if !report.answered && printer.answers_status {
            // It answered before: silence now means busy, jammed or hung, not a status-less
            // model. Sending could print the job much later, or never, with nobody told.
            let why = "printer stopped answering status requests (it answered before): check it is on and not jammed; \
                       if it was replaced by a model without status, edit the printer";
            record_status(state, printer, &Report::new(Status::Unknown, why)).await;
            return retry(state, &job, false, why, "unknown").await;
        }
        answers_status = report.answered;
    }
    // Only a printer that speaks ESC/POS status can confirm a job; asking one that cannot
    // would make every ticket look uncertain and print again and again.
    let confirm = answers_status && render::profile_for(printer.profile.as_deref()).speaks_escpos();
    let rendered = match render_job(state, printer, &job).await {
        Ok(r) => r,
        Err(why) => {
            return match finish(state, &job, "failed", &why).await {
                Ok(()) => Outcome::Done,
                Err(why) => Outcome::Failed { why },
            };
        }
    };
    let (id, pid) = (job.id.clone(), printer.id.clone());
    match state.db().write(move |tx| print_jobs::mark_printing(tx, &id, &pid)).await {
        Ok(_) => {}
        // Moved to another printer or cancelled meanwhile: not ours to print any more.
        Err(StoreError::NotFound(_)) => return Outcome::Done,
        Err(e) => return Outcome::Failed { why: format!("cannot record that the job is printing (not sending it): {e}") },
    }
    tracing::debug!(job_id = %job.id, printer_id = %printer.id, kind = %job.kind, attempt = job.attempts + 1, "printing");
    match driver.print(&job.id, &rendered, confirm).await {
        Ok(report) if report.status == Status::PaperOut => {
            record_status(state, printer, &report).await;
            retry(state, &job, true, "paper ran out during the job", "paper_out").await
        }
        Ok(report) => {
            let (id, note) = (job.id.clone(), (!confirm).then_some("sent in full; this printer cannot confirm jobs"));
            let recorded = state.db().write(move |tx| print_jobs::mark_printed(tx, &id, note)).await;
            match &recorded {
                Ok(_) => tracing::info!(job_id = %job.id, printer_id = %printer.id, confirmed = confirm, "printed"),
                Err(e) => tracing::error!(job_id = %job.id, error = %e, "printed, but cannot record it"),
            }
            record_status(state, printer, &report).await;
            state.print_queue().finished(Finished { job_id: job.id.clone(), status: "printed".into(), error: None });
            match recorded {
                Ok(_) => Outcome::Printed,
                // On paper but not in the database: it prints again (marked uncertain by the
                // restart recovery) unless the store comes back; back off meanwhile.
                Err(e) => Outcome::Failed { why: format!("printed, but cannot record it: {e}") },
            }
        }
        Err(DriverError::Unreachable(why)) => {
            record_status(state, printer, &Report::new(Status::Offline, why.clone())).await;
            retry(state, &job, false, &why, "offline").await
        }
        Err(DriverError::Broken(why) | DriverError::Unconfirmed(why)) => retry(state, &job, true, &why, "error").await,
        Err(DriverError::Refused(why)) => retry(state, &job, false, &why, "error").await,
    }
}

/// Puts the job back in the queue; the worker decides when the printer is tried again.
/// `status`: what the printer's trouble is, for the spell.
async fn retry(state: &AppState, job: &Job, uncertain: bool, why: &str, status: &str) -> Outcome {
    // A test print is answered once: no retries, so it never prints long after it was asked for.
    if job.kind == "test" {
        let _ = finish(state, job, "failed", why).await;
        return Outcome::NotReady { status: status.to_string(), why: why.to_string() };
    }
    let (id, why_s) = (job.id.clone(), why.to_string());
    // Due at once as far as the row is concerned: the worker's own backoff spaces attempts.
    if let Err(e) = state.db().write(move |tx| print_jobs::mark_retry(tx, &id, uncertain, &why_s, 0)).await {
        return Outcome::Failed { why: format!("{why}; and cannot record the retry: {e}") };
    }
    Outcome::NotReady { status: status.to_string(), why: why.to_string() }
}

async fn finish(state: &AppState, job: &Job, status: &'static str, why: &str) -> Result<(), String> {
    let (id, why_s) = (job.id.clone(), why.to_string());
    let res = state.db().write(move |tx| print_jobs::mark_final(tx, &id, status, &why_s)).await;
    state.print_queue().finished(Finished { job_id: job.id.clone(), status: status.into(), error: Some(why.into()) });
    res.map(|_| ()).map_err(|e| format!("cannot record the job as {status}: {e}"))
}

async fn expire(state: &AppState, job: &Job) -> Result<(), String> {
    let j = job.clone();
    state
        .db()
        .write(move |tx| {
            print_jobs::mark_final(tx, &j.id, "expired", "kitchen ticket expired before it could print")?;
            let msg = "a kitchen ticket could not be printed in time; reprint it when the printer is back";
            let extra = json!({"jobId": j.id, "printerId": j.printer_id, "orderId": j.order_id, "station": j.station});
            print_jobs::alert(tx, &j.company_id, &j.branch_id, "job_expired", msg, extra)
        })
        .await
        .map_err(|e| format!("cannot expire the job: {e}"))?;
    tracing::warn!(job_id = %job.id, "kitchen ticket expired; alert raised");
    Ok(())
}

/// The line(s) a copy carries above the ticket: `REPRINT` / `POSSIBLE DUPLICATE`, and
/// `MOVED FROM <printer>` for a ticket moved off another printer.
fn banner(job: &Job) -> Option<String> {
    let copy = if job.reprint_of.is_some() {
        Some("REPRINT")
    } else if job.uncertain {
        Some("POSSIBLE DUPLICATE")
    } else {
        None
    };
    let moved = job.moved_from.as_ref().map(|p| format!("MOVED FROM {p}"));
    match (copy, moved) {
        (Some(c), Some(m)) => Some(format!("{c} - {m}")),
        (Some(c), None) => Some(c.to_string()),
        (None, m) => m,
    }
}

async fn render_job(state: &AppState, printer: &Printer, job: &Job) -> Result<Rendered, String> {
    let profile = render::profile_for(printer.profile.as_deref());
    let now = state.config().local_time(chrono::Utc::now());
    match job.kind.as_str() {
        "raw" => {
            Ok(render::raw_with_banner(job.data.as_deref().unwrap_or_default(), banner(job).as_deref(), printer.paper_width, &profile))
        }
        "test" => Ok(render::test_page(&printer.name, printer.paper_width, &profile, &job.id, &now)),
        kind => {
            let (oid, bid) = (job.order_id.clone().ok_or_else(|| "the job names no order".to_string())?, job.branch_id.clone());
            let (order, names, branch) = state
                .db()
                .read(move |c| Ok::<_, StoreError>((orders::get(c, &oid)?, directory::names(c, &bid)?, directory::branch(c, &bid)?)))
                .await
                .map_err(|e| e.to_string())?;
            let order = order.ok_or_else(|| "its order no longer exists".to_string())?;
            // Tickets show when the order was taken (a late or repeated copy must not look new).
            let when = chrono::DateTime::parse_from_rfc3339(&order.created_at)
                .map(|t| state.config().local_time(t.with_timezone(&chrono::Utc)))
                .unwrap_or(now);
            if kind == "receipt" {
                let (company, branch_name) = names.unwrap_or_else(|| (order.company_id.clone(), order.branch_id.clone()));
                // Amounts with the branch's currency digits (JPY 1500 → "1500", KWD → "1.500").
                let digits = branch.map_or(2, |b| b.currency_digits);
                let shop = render::Shop { company: &company, branch: &branch_name, digits };
                return Ok(render::receipt(&order, &shop, printer.paper_width, &profile, banner(job).as_deref(), &when));
            }
            // A station ticket has that station's items; a catch-all ticket has them all.
            let items: Vec<_> = order.items.iter().filter(|i| job.station.is_none() || i.station == job.station).cloned().collect();
            Ok(render::kitchen_ticket(&order, job.station.as_deref(), &items, printer.paper_width, &profile, banner(job).as_deref(), &when))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_first_to_the_longest_and_stays_there() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let waits: Vec<Duration> = (1..=8).map(|n| backoff(n, min, max)).collect();
        for (n, (w, base)) in waits.iter().zip([1u64, 2, 4, 8, 16, 30, 30, 30]).enumerate() {
            let base = Duration::from_secs(base);
            assert!(*w >= base && *w <= base + base / 4, "attempt {}: {w:?} (base {base:?})", n + 1);
        }
        assert!(backoff(u32::MAX, min, max) <= max + max / 4, "no overflow after very many failures");
    }
}
