//! Connection handling: the group-committing writer thread and the read pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::{Event, StoreError};

/// What a write closure gets: the connection (inside a transaction and a savepoint) and the
/// list of events to broadcast once the transaction is durable.
pub struct Tx<'a> {
    pub conn: &'a Connection,
    pub(crate) events: Vec<Event>,
    /// Where the changes of this write come from (sync stream membership).
    pub origin: super::events::Origin,
}

impl Tx<'_> {
    /// Records a broadcast in the same transaction as the change it announces.
    /// `scope` is `(company_id, branch_id)`: the event goes to both rooms.
    pub fn emit(&mut self, ns: &str, name: &str, scope: (&str, &str), data: serde_json::Value) -> Result<serde_json::Value, StoreError> {
        let ev = super::events::append(self.conn, ns, name, scope.0, scope.1, data, self.origin)?;
        let data = ev.data.clone();
        self.events.push(ev);
        Ok(data)
    }
}

type Completion = Box<dyn FnOnce(Option<String>) + Send>;
/// A queued write: run with `Some(tx)`, or with `None` when no transaction could be opened.
type Job = Box<dyn FnOnce(Option<&mut Tx<'_>>) -> (bool, Completion) + Send>;
/// Receives the events of every committed group, in commit order.
pub type EventSink = Box<dyn Fn(Vec<Event>) + Send + Sync>;

const MAX_GROUP: usize = 256;
const READ_POOL: usize = 8;

/// Handle to the database: cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Opens the database read-write, in WAL mode, with migrations applied.
pub fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    let open = |e| StoreError::Open { path: path.display().to_string(), source: e };
    let conn = Connection::open(path).map_err(open)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open)?;
    configure(&conn).map_err(open)?;
    super::migrate::apply(&conn)?;
    Ok(conn)
}

impl Db {
    /// Opens `path`, applies migrations and starts the writer thread. `sink` gets every
    /// committed group's events (in commit order) before the writers are told "done".
    pub fn open(path: &Path, sink: EventSink) -> Result<Db, StoreError> {
        let conn = open_rw(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("branchd-db-writer".into())
            .spawn(move || writer_loop(conn, rx, sink))
            .map_err(|e| StoreError::Corrupt(format!("cannot start writer thread: {e}")))?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                writer_thread: Mutex::new(Some(handle)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in a write transaction; returns after the group it joined is durable.
    /// An `Err` from `f` rolls back only `f`'s changes (and events).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx| {
            let result = match tx {
                Some(tx) => f(tx),
                None => Err(E::from(StoreError::Corrupt("cannot begin a write transaction".into()))),
            };
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit_error| {
                let out = match commit_error {
                    Some(msg) => Err(E::from(StoreError::Corrupt(format!("commit failed: {msg}")))),
                    None => result,
                };
                let _ = done_tx.send(out);
            });
            (ok, completion)
        });
        let sender = self.inner.writer.lock().map_err(|_| StoreError::Closed)?.clone();
        sender.ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `f` on a pooled read-only connection on the blocking thread pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f))
            .await
            .map_err(|e| StoreError::Corrupt(format!("reader task failed: {e}")))?
    }

    /// Same as [`Db::read`] for code already on a blocking thread.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.inner.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c = Connection::open_with_flags(&self.inner.path, flags)
                    .map_err(|e| StoreError::Open { path: self.inner.path.display().to_string(), source: e })?;
                configure(&c)?;
                c
            }
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.inner.readers.lock()
            && pool.len() < READ_POOL
        {
            pool.push(conn);
        }
        out
    }

    /// Stops accepting writes, lets queued ones commit, and joins the writer thread.
    pub fn close(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
        let handle = self.inner.writer_thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
        if let Ok(mut pool) = self.inner.readers.lock() {
            pool.clear();
        }
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, sink: EventSink) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group, &sink);
    }
    // Checkpoint on a clean shutdown so the WAL does not grow across restarts.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

fn commit_group(conn: &mut Connection, group: Vec<Job>, sink: &EventSink) {
    let mut completions = Vec::with_capacity(group.len());
    let mut events = Vec::new();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = e.to_string();
        tracing::error!(error = %msg, "cannot begin write transaction");
        for job in group {
            let (_, done) = job(None);
            done(Some(msg.clone()));
        }
        return;
    }
    for job in group {
        if let Err(e) = conn.execute_batch("SAVEPOINT w") {
            tracing::error!(error = %e, "savepoint failed");
        }
        let mut tx = Tx { conn, events: Vec::new(), origin: super::events::Origin::Local };
        // A panicking write must not take the writer thread (and every later write) with it:
        // its savepoint is rolled back and its caller gets an error (the reply channel drops).
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Some(&mut tx))));
        let job_events = std::mem::take(&mut tx.events);
        let Ok((ok, done)) = run else {
            tracing::error!("a database write panicked; it was rolled back");
            let _ = conn.execute_batch("ROLLBACK TO w; RELEASE w");
            continue;
        };
        if ok {
            let _ = conn.execute_batch("RELEASE w");
            events.extend(job_events);
        } else {
            let _ = conn.execute_batch("ROLLBACK TO w; RELEASE w");
        }
        completions.push(done);
    }
    let commit_error = conn.execute_batch("COMMIT").err().map(|e| {
        tracing::error!(error = %e, "commit failed");
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    });
    if commit_error.is_none() && !events.is_empty() {
        sink(events);
    }
    for done in completions {
        done(commit_error.clone());
    }
}
