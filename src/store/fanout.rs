//! Broadcasts across the processes of a hub cluster (PostgreSQL only).
//!
//! Every committed event is a row of `events`, and event ids are handed out in commit order
//! (an event is appended under a transaction-level advisory lock, see `events::append`). So
//! each process can broadcast what *any* process committed by reading the event log forward
//! from the last id it delivered: in id order, each event once, nothing skipped. A commit
//! that stored events sends `NOTIFY branchd_events`; each process LISTENs for it on its own
//! connection and also rereads every second, and the committing process reads at once after
//! its own COMMIT, so its clients hear its changes without a round trip through NOTIFY.
//! Nothing here knows Socket.IO: events go to the same sink the SQLite writer feeds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::db::EventSink;
use super::sql::{Backend, Conn, PgConn, params};
use super::{Event, StoreError};

/// The LISTEN/NOTIFY channel (also named in [`announcement`]).
const CHANNEL: &str = "branchd_events";
/// Events read per query when catching up.
const BATCH: i64 = 2000;
/// How often the log is reread when no notification came (a lost NOTIFY costs at most this).
const REREAD: Duration = Duration::from_millis(1000);

/// The statement that tells the other processes this transaction stored events, to send in
/// the batch that commits it ("" on SQLite). PostgreSQL delivers the notification at
/// COMMIT, and not at all on ROLLBACK.
pub(in crate::store) fn announcement(conn: Conn<'_>) -> &'static str {
    match conn.backend() {
        Backend::Postgres => "NOTIFY branchd_events; ",
        Backend::Sqlite => "",
    }
}

/// One process's reader of the cluster's event log.
pub struct Fanout {
    url: String,
    /// The last event id given to the sink; the lock also keeps deliveries in order.
    last: Mutex<i64>,
    sink: EventSink,
    stopped: AtomicBool,
}

impl Fanout {
    /// Starts delivering events committed from now on (by any process).
    pub(in crate::store) fn start(url: &str, sink: EventSink) -> Result<Arc<Fanout>, StoreError> {
        let listener = listen(url)?;
        let last = Conn::Postgres(&listener)
            .query_row("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events", params![], |r| r.get::<i64>(0))?;
        let fanout = Arc::new(Fanout { url: url.to_string(), last: Mutex::new(last), sink, stopped: AtomicBool::new(false) });
        let me = fanout.clone();
        std::thread::Builder::new()
            .name("branchd-fanout".into())
            .spawn(move || me.run(listener))
            .map_err(|e| StoreError::Thread(format!("cannot start the fan-out thread: {e}")))?;
        Ok(fanout)
    }

    pub(in crate::store) fn url(&self) -> &str {
        &self.url
    }

    pub(in crate::store) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Delivers what this process just committed (`events`, in id order), right after its
    /// COMMIT: straight from memory when they follow the last event delivered without a gap
    /// (nothing of another process lies between), else by reading the log on `conn`. A
    /// failure leaves it to the listener thread.
    pub(in crate::store) fn deliver_committed(&self, conn: Conn<'_>, events: Vec<Event>) {
        if let Ok(mut last) = self.last.lock() {
            let follows = events.iter().enumerate().all(|(i, e)| e.seq == *last + 1 + i as i64);
            if follows && let Some(newest) = events.last().map(|e| e.seq) {
                *last = newest;
                (self.sink)(events);
                return;
            }
        }
        if let Err(e) = self.deliver(conn) {
            tracing::debug!(error = %e, "reading the event log after a commit failed; the listener will");
        }
    }

    fn deliver(&self, conn: Conn<'_>) -> Result<(), StoreError> {
        let mut last = self.last.lock().map_err(|_| StoreError::Thread("fan-out lock poisoned".into()))?;
        loop {
            let events = conn.query_map(
                "SELECT seq, namespace, name, company_id, branch_id, data FROM events
                 WHERE seq > ?1 AND namespace <> '' ORDER BY seq LIMIT ?2",
                params![*last, BATCH],
                |r| {
                    let data: String = r.get(5)?;
                    Ok(Event {
                        seq: r.get(0)?,
                        namespace: r.get(1)?,
                        name: r.get(2)?,
                        company_id: r.get(3)?,
                        branch_id: r.get(4)?,
                        data: serde_json::from_str(&data)?,
                    })
                },
            )?;
            let Some(newest) = events.last().map(|e| e.seq) else { return Ok(()) };
            let full = events.len() as i64 == BATCH;
            *last = newest;
            (self.sink)(events);
            if !full {
                return Ok(());
            }
        }
    }

    fn run(self: Arc<Self>, mut listener: PgConn) {
        let mut failures = 0u32;
        while !self.stopped.load(Ordering::SeqCst) {
            let waited = {
                let mut client = listener.client();
                let mut notifications = client.notifications();
                let first = notifications.timeout_iter(REREAD).next();
                first.map(|_| {
                    // Drain what else arrived; one read covers them all.
                    let mut rest = notifications.iter();
                    while let Ok(Some(_)) = rest.next() {}
                })
            };
            let delivered = waited.map_err(StoreError::from).and_then(|()| self.deliver(Conn::Postgres(&listener)));
            match delivered {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error = %e, "hub cluster: lost the event log listener; reconnecting");
                    }
                    std::thread::sleep(Duration::from_millis(200 * u64::from(failures.min(10))));
                    if let Ok(c) = listen(&self.url) {
                        listener = c;
                    }
                }
            }
        }
    }
}

fn listen(url: &str) -> Result<PgConn, StoreError> {
    let conn = PgConn::connect(url)?;
    Conn::Postgres(&conn).batch(&format!("LISTEN {CHANNEL}"))?;
    Ok(conn)
}
