//! Connection handling: the group-committing writer thread and the read pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::sql::{Conn, PgConn};
use super::{Event, StoreError};

/// What a read closure gets ([`Db::read`]) and what every store function that only reads
/// takes. Outside `store` it is opaque: the connection behind it is not reachable, so every
/// query goes through a typed function of `store` (see ARCHITECTURE.md, "The store boundary").
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub(in crate::store) conn: Conn<'a>,
}

impl Reader<'_> {
    /// Whether the database answers a trivial query (liveness probes).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn.query_row("SELECT 1", super::sql::params![], |r| r.get::<i64>(0))?;
        Ok(())
    }

    /// Which engine is behind this reader.
    pub fn backend(&self) -> super::sql::Backend {
        self.conn.backend()
    }
}

/// What a write closure gets: a transaction (under [`Db::write`], its own savepoint of a
/// group's transaction) and the list of events to broadcast once it is durable. Store functions that change state take it; it derefs to
/// a [`Reader`] so that the read functions work inside a write too. Like `Reader`, it does not
/// expose the connection outside `store`.
pub struct Tx<'a> {
    read: Reader<'a>,
    pub(in crate::store) events: Vec<Event>,
    /// Where the changes of this write come from (sync stream membership).
    pub origin: super::events::Origin,
    /// Inside [`Tx::deferring`]: the broadcasts recorded so far, not yet written.
    deferred: Option<Vec<super::events::Pending>>,
    /// Whether this transaction may write events: it holds the cluster's write-order lock
    /// (always, except in the first stage of [`Db::write_staged`]).
    ordered: bool,
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Reader<'a>;
    fn deref(&self) -> &Reader<'a> {
        &self.read
    }
}

impl<'a> Tx<'a> {
    pub(in crate::store) fn new(conn: Conn<'a>) -> Self {
        Tx { read: Reader { conn }, events: Vec::new(), origin: super::events::Origin::Local, deferred: None, ordered: true }
    }

    /// Ends the first stage of a [`Db::write_staged`] transaction: waits for the cluster's
    /// write-order lock, which it then holds to COMMIT like every other write. A no-op in
    /// any other transaction.
    pub fn order_writes(&mut self) -> Result<(), StoreError> {
        if !self.ordered {
            self.conn.batch(&format!("SELECT pg_advisory_xact_lock({})", super::events::WRITE_ORDER_LOCK))?;
            self.ordered = true;
        }
        Ok(())
    }

    /// Refuses a broadcast in the first stage of a staged write (its id would not follow
    /// commit order).
    pub(in crate::store) fn check_ordered(&self) -> Result<(), StoreError> {
        if self.ordered { Ok(()) } else { Err(StoreError::Database("an event was written before Tx::order_writes".into())) }
    }

    /// Runs `f` in a savepoint of this transaction: an `Err` from `f` leaves no trace (rows or
    /// broadcasts), an `Ok` keeps both.
    pub fn isolated<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&mut Tx<'a>) -> Result<T, E>) -> Result<T, E> {
        let mark = self.events.len();
        let deferred_mark = self.deferred.as_ref().map(Vec::len);
        let ordered = self.ordered;
        savepoint(self.conn, "nested")?;
        let out = f(self);
        if out.is_ok() {
            release(self.conn, "nested")?;
        } else {
            rollback_to(self.conn, "nested");
            // A lock taken in the savepoint went with it (PostgreSQL releases it).
            self.ordered = ordered;
            self.events.truncate(mark);
            if let (Some(d), Some(m)) = (&mut self.deferred, deferred_mark) {
                d.truncate(m);
            }
        }
        out
    }

    /// Runs `f` with [`Tx::emit`] only recording its broadcasts; when `f` succeeds they are
    /// written all at once, in the order emitted (a few multi-row statements instead of one
    /// round trip each on PostgreSQL). `emit` then returns the payload without its
    /// `eventId`: for bulk work that does not use it (the hub applying a push).
    pub fn deferring<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&mut Tx<'a>) -> Result<T, E>) -> Result<T, E> {
        if self.deferred.is_some() {
            return f(self); // already deferring: the outer call writes them
        }
        self.check_ordered()?;
        self.deferred = Some(Vec::new());
        let out = f(self);
        let pending = self.deferred.take().unwrap_or_default();
        let out = out?;
        let events = super::events::append_all(self.conn, pending)?;
        self.events.extend(events);
        Ok(out)
    }

    /// Records a broadcast in the same transaction as the change it announces.
    /// `scope` is `(company_id, branch_id)`: the event goes to both rooms.
    pub fn emit(&mut self, ns: &str, name: &str, scope: (&str, &str), data: serde_json::Value) -> Result<serde_json::Value, StoreError> {
        self.check_ordered()?;
        if let Some(d) = &mut self.deferred {
            d.push(super::events::Pending::new(ns, name, scope, data.clone(), self.origin));
            return Ok(data);
        }
        let ev = super::events::append(self.conn, ns, name, scope.0, scope.1, data, self.origin)?;
        let data = ev.data.clone();
        self.events.push(ev);
        Ok(data)
    }
}

fn savepoint(conn: Conn<'_>, name: &str) -> Result<(), StoreError> {
    conn.batch(&format!("SAVEPOINT {name}"))
}

fn release(conn: Conn<'_>, name: &str) -> Result<(), StoreError> {
    conn.batch(&format!("RELEASE {name}"))
}

/// Undoes everything since the savepoint `name` and ends it (best effort: a failure here
/// surfaces at COMMIT).
fn rollback_to(conn: Conn<'_>, name: &str) {
    let _ = conn.batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
}

/// Why a group's transaction did not commit; every write of the group gets it.
#[derive(Debug, Clone)]
enum CommitFailure {
    Full,
    Unavailable(String),
    Corrupt(String),
}

impl CommitFailure {
    fn of(e: StoreError) -> Self {
        match e {
            StoreError::Full => CommitFailure::Full,
            StoreError::Corrupt(m) => CommitFailure::Corrupt(m),
            other => CommitFailure::Unavailable(other.to_string()),
        }
    }
}

impl From<CommitFailure> for StoreError {
    fn from(f: CommitFailure) -> Self {
        match f {
            CommitFailure::Full => StoreError::Full,
            CommitFailure::Unavailable(m) => StoreError::Unavailable(format!("commit failed: {m}")),
            CommitFailure::Corrupt(m) => StoreError::Corrupt(m),
        }
    }
}

type Completion = Box<dyn FnOnce(Option<CommitFailure>) + Send>;
/// A queued write: run with `Some(tx)`, or with `None` when no transaction could be opened.
type Run = Box<dyn FnOnce(Option<&mut Tx<'_>>) -> (bool, Completion) + Send>;
struct Job {
    run: Run,
    /// [`Db::write_staged`]: on PostgreSQL, a transaction of its own that begins without
    /// the write-order lock.
    staged: bool,
}
/// Receives the events of every committed group, in commit order.
pub type EventSink = Box<dyn Fn(Vec<Event>) + Send + Sync>;

const MAX_GROUP: usize = 256;
const READ_POOL: usize = 8;
/// A PostgreSQL read connection idle longer than this is checked before use (a server
/// restart or failover meanwhile closed it; the client only notices on use).
const RECHECK_IDLE: Duration = Duration::from_millis(500);

/// Handle to the database: cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

/// Where the database lives.
#[derive(Clone)]
enum Location {
    File(PathBuf),
    Postgres(String),
}

/// An open connection of either engine, owned by a thread or the read pool.
enum Owned {
    Sqlite(Connection),
    Postgres(Box<PgConn>),
}

impl Owned {
    fn conn(&self) -> Conn<'_> {
        match self {
            Owned::Sqlite(c) => Conn::Sqlite(c),
            Owned::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// BEGIN (and on PostgreSQL the cluster's write-order lock, unless `staged`), with
    /// `then` in the same round trip.
    fn begin_with(&self, then: &str, staged: bool) -> Result<(), StoreError> {
        match self {
            Owned::Sqlite(c) => Ok(c.execute_batch(&format!("BEGIN IMMEDIATE; {then}"))?),
            Owned::Postgres(_) if staged => self.conn().batch(&format!("BEGIN; {then}")),
            Owned::Postgres(_) => {
                self.conn().batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({}); {then}", super::events::WRITE_ORDER_LOCK))
            }
        }
    }

    fn begin(&self) -> Result<(), StoreError> {
        self.begin_with("", false)
    }

    /// Whether the connection answers a trivial query (always, for SQLite).
    fn answers(&self) -> bool {
        match self {
            Owned::Sqlite(_) => true,
            Owned::Postgres(c) => c.client().is_valid(Duration::from_secs(2)).is_ok(),
        }
    }

    fn usable(&self) -> bool {
        match self {
            Owned::Sqlite(_) => true,
            Owned::Postgres(c) => !c.is_closed(),
        }
    }
}

struct Inner {
    location: Location,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    /// Idle read connections, with when each was last used.
    readers: Mutex<Vec<(Owned, std::time::Instant)>>,
    /// At most [`READ_POOL`] reads run at once, so a burst of connects reuses the pooled
    /// connections instead of opening one per blocking thread (hundreds at a reconnect
    /// storm: 1,041 SQLite connections, 39 MB, for 3,000 clients before this bound).
    read_slots: Arc<tokio::sync::Semaphore>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    health: Arc<super::health::StorageHealth>,
    /// PostgreSQL: the broadcasts of every process, read back from the event log.
    fanout: Option<Arc<super::fanout::Fanout>>,
}

/// Per-connection settings: a busy timeout (the CLI and the server share the file), foreign
/// keys, and `synchronous = FULL` (a commit is on disk before anyone hears "ok").
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// The database opened by one command of the CLI (no writer thread, no bus): it works while
/// a server runs (WAL lets both share the file; the busy timeout serialises their writes; a
/// PostgreSQL database is shared by design).
pub struct Direct {
    conn: Owned,
}

impl Direct {
    /// Opens the database read-write, in WAL mode, with migrations applied.
    pub fn open(path: &Path) -> Result<Direct, StoreError> {
        Ok(Direct { conn: Owned::Sqlite(open_rw(path)?) })
    }

    /// Opens a hub cluster's PostgreSQL database (`postgres://…`), with migrations applied.
    pub fn open_postgres(url: &str) -> Result<Direct, StoreError> {
        outside_runtime(|| {
            let conn = PgConn::connect(url)?;
            super::migrate::apply_postgres(&conn)?;
            Ok(Direct { conn: Owned::Postgres(Box::new(conn)) })
        })
    }

    /// Runs `f` with read access.
    pub fn read<T, E: From<StoreError>>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T, E>) -> Result<T, E> {
        outside_runtime(|| f(&Reader { conn: self.conn.conn() }))
    }

    /// Runs `f` in one transaction (an `Err` rolls it back). The events it records are
    /// stored (the sync relay sends the syncable ones); on SQLite they are broadcast by
    /// nobody, on PostgreSQL every hub process broadcasts them (they read the event log).
    pub fn write<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        outside_runtime(|| self.write_now(f))
    }

    fn write_now<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        self.conn.begin()?;
        let conn = self.conn.conn();
        let mut tx = Tx::new(conn);
        let out = f(&mut tx);
        let had_events = !tx.events.is_empty();
        if out.is_ok() {
            if had_events {
                conn.batch(super::fanout::announcement(conn))?;
            }
            if let Err(e) = conn.batch("COMMIT") {
                let _ = conn.batch("ROLLBACK");
                return Err(E::from(e));
            }
        } else {
            let _ = conn.batch("ROLLBACK");
        }
        out
    }

    /// The schema version (migrations applied).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match &self.conn {
            Owned::Sqlite(c) => super::migrate::user_version(c),
            Owned::Postgres(c) => outside_runtime(|| super::migrate::postgres_version(c)),
        }
    }

    /// A consistent copy of the database in `file` (see [`super::backup::vacuum_into`]).
    pub fn copy_to(&self, file: &Path) -> Result<(), StoreError> {
        outside_runtime(|| super::backup::vacuum_into(&Reader { conn: self.conn.conn() }, file))
    }

    /// `PRAGMA integrity_check`: `Ok(())` or the problems SQLite lists.
    pub fn integrity(&self) -> Result<Result<(), Vec<String>>, StoreError> {
        outside_runtime(|| super::backup::integrity(&Reader { conn: self.conn.conn() }))
    }

    /// Checks that the write lock can be taken (nothing is changed).
    pub fn probe_write(&self) -> Result<(), StoreError> {
        match &self.conn {
            Owned::Sqlite(c) => Ok(c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?),
            Owned::Postgres(_) => outside_runtime(|| self.conn.conn().batch("BEGIN; ROLLBACK;")),
        }
    }
}

/// Runs blocking database work that may be PostgreSQL's: its client runs a runtime of its
/// own, which must not start inside the CLI's async runtime (SQLite does not care).
fn outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Opens the database read-write, in WAL mode, with migrations applied.
pub(in crate::store) fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    let open = |e| StoreError::Open { path: path.display().to_string(), source: e };
    create_private(path);
    let conn = Connection::open(path).map_err(open)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open)?;
    configure(&conn).map_err(open)?;
    super::migrate::apply(&conn)?;
    Ok(conn)
}

/// Creates the database file readable by its owner only (SQLite gives its `-wal` and
/// `-shm` files the same mode); an existing file keeps its mode.
fn create_private(path: &Path) {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    // AlreadyExists is the normal case; any other failure shows when SQLite opens it.
    let _ = opts.open(path);
}

impl Db {
    /// Opens `path`, applies migrations and starts the writer thread. `sink` gets every
    /// committed group's events (in commit order) before the writers are told "done".
    pub fn open(path: &Path, sink: EventSink) -> Result<Db, StoreError> {
        let conn = open_rw(path)?;
        Self::start(Location::File(path.to_path_buf()), Owned::Sqlite(conn), sink, None)
    }

    /// Opens a hub cluster's PostgreSQL database (`postgres://…`), applies migrations (once,
    /// whichever process gets there first) and starts the writer thread. `sink` gets the
    /// events every process of the cluster commits, in event id order, each once.
    pub fn open_postgres(url: &str, sink: EventSink) -> Result<Db, StoreError> {
        let conn = PgConn::connect(url)?;
        super::migrate::apply_postgres(&conn)?;
        let fanout = super::fanout::Fanout::start(url, sink)?;
        Self::start(Location::Postgres(url.to_string()), Owned::Postgres(Box::new(conn)), Box::new(|_| {}), Some(fanout))
    }

    fn start(location: Location, conn: Owned, sink: EventSink, fanout: Option<Arc<super::fanout::Fanout>>) -> Result<Db, StoreError> {
        let health = Arc::new(super::health::StorageHealth::default());
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_health = health.clone();
        let writer_fanout = fanout.clone();
        let handle = std::thread::Builder::new()
            .name("branchd-db-writer".into())
            .spawn(move || writer_loop(conn, rx, sink, writer_fanout, &writer_health))
            .map_err(|e| StoreError::Thread(format!("cannot start the writer thread: {e}")))?;
        Ok(Db {
            inner: Arc::new(Inner {
                location,
                writer: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                read_slots: Arc::new(tokio::sync::Semaphore::new(READ_POOL)),
                writer_thread: Mutex::new(Some(handle)),
                health,
                fanout,
            }),
        })
    }

    /// The database file (empty for PostgreSQL).
    pub fn path(&self) -> &Path {
        match &self.inner.location {
            Location::File(p) => p,
            Location::Postgres(_) => Path::new(""),
        }
    }

    /// Which engine holds the data.
    pub fn backend(&self) -> super::sql::Backend {
        match &self.inner.location {
            Location::File(_) => super::sql::Backend::Sqlite,
            Location::Postgres(_) => super::sql::Backend::Postgres,
        }
    }

    /// Full disk, damage: what `/health` reports about the storage.
    pub fn health(&self) -> &super::health::StorageHealth {
        &self.inner.health
    }

    /// `PRAGMA quick_check` on a read connection; damage is recorded in [`Db::health`].
    /// Returns what it found (empty: none). PostgreSQL checks its own pages.
    pub async fn quick_check(&self) -> Result<Vec<String>, StoreError> {
        let found = self.read(super::backup::quick_problems).await;
        match found {
            Ok(problems) if !problems.is_empty() => {
                self.health().damaged(&problems.join("; "));
                Ok(problems)
            }
            Err(StoreError::Corrupt(m)) => {
                self.health().damaged(&m);
                Ok(vec![m])
            }
            other => other,
        }
    }

    /// Whether the database answers a trivial query on a read connection (liveness probes).
    pub async fn ping(&self) -> bool {
        self.read(|r| r.ping()).await.is_ok()
    }

    /// Runs `f` in a write transaction; returns after the group it joined is durable.
    /// An `Err` from `f` rolls back only `f`'s changes (and events).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        self.enqueue(f, false).await
    }

    /// [`Db::write`] in two stages, for bulk work that would otherwise hold up every
    /// process of a hub cluster. On PostgreSQL the transaction is one of its own and begins
    /// *without* the cluster's write-order lock: `f` first writes rows that only this kind
    /// of write touches, under a lock of its own (a branch's, see `sync::lock_branch`),
    /// while other processes commit; then it calls [`Tx::order_writes`] and does the rest
    /// (anything other writes touch too, and every broadcast) under the lock as usual.
    /// Broadcasts before `order_writes` are refused. Deadlock-free as long as the first
    /// stage touches nothing that a holder of the write-order lock may wait for. On SQLite
    /// (one writer in all) it is [`Db::write`].
    pub async fn write_staged<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let staged = matches!(self.inner.location, Location::Postgres(_));
        self.enqueue(f, staged).await
    }

    async fn enqueue<T, E, F>(&self, f: F, staged: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T, E>>();
        let run: Run = Box::new(move |tx| {
            let result = match tx {
                Some(tx) => f(tx),
                None => Err(E::from(StoreError::Unavailable("cannot begin a write transaction".into()))),
            };
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit_error| {
                let out = match commit_error {
                    Some(failure) => Err(E::from(StoreError::from(failure))),
                    None => result,
                };
                let _ = done_tx.send(out);
            });
            (ok, completion)
        });
        let sender = self.inner.writer.lock().map_err(|_| StoreError::Closed)?.clone();
        sender.ok_or(StoreError::Closed)?.send(Job { run, staged }).map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `f` on a pooled read-only connection on the blocking thread pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.clone();
        let slot = self.inner.read_slots.clone().acquire_owned().await.map_err(|_| StoreError::Thread("the read pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            db.read_blocking(f)
        })
        .await
        .map_err(|e| StoreError::Thread(format!("a read task failed: {e}")))?
    }

    fn open_reader(&self) -> Result<Owned, StoreError> {
        match &self.inner.location {
            Location::File(path) => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c = Connection::open_with_flags(path, flags)
                    .map_err(|e| StoreError::Open { path: path.display().to_string(), source: e })?;
                configure(&c)?;
                Ok(Owned::Sqlite(c))
            }
            Location::Postgres(url) => Ok(Owned::Postgres(Box::new(PgConn::connect(url)?))),
        }
    }

    /// Same as [`Db::read`] for code already on a blocking thread.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.inner.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some((c, idle_since)) if c.usable() && (idle_since.elapsed() < RECHECK_IDLE || c.answers()) => c,
            _ => self.open_reader()?,
        };
        let out = f(&Reader { conn: conn.conn() });
        match &out {
            Err(StoreError::Corrupt(m)) => self.inner.health.damaged(m),
            // PostgreSQL restarted or failed over: the pooled connections are dead too.
            Err(StoreError::Unavailable(_)) if matches!(conn, Owned::Postgres(_)) => {
                if let Ok(mut pool) = self.inner.readers.lock() {
                    pool.clear();
                }
                return out;
            }
            _ => {}
        }
        if let Ok(mut pool) = self.inner.readers.lock()
            && pool.len() < READ_POOL
            && conn.usable()
        {
            pool.push((conn, std::time::Instant::now()));
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
        if let Some(f) = &self.inner.fanout {
            f.stop();
        }
        if let Ok(mut pool) = self.inner.readers.lock() {
            pool.clear();
        }
    }
}

fn writer_loop(
    mut conn: Owned,
    rx: mpsc::Receiver<Job>,
    sink: EventSink,
    fanout: Option<Arc<super::fanout::Fanout>>,
    health: &super::health::StorageHealth,
) {
    let url = fanout.as_ref().map(|f| f.url().to_string());
    // A staged job is a group of its own: the next group starts with it.
    let mut carried: Option<Job> = None;
    loop {
        let Some(first) = carried.take().or_else(|| rx.recv().ok()) else { break };
        let staged = first.staged;
        let mut group = vec![first];
        while !staged && group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) if job.staged => {
                    carried = Some(job);
                    break;
                }
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let begun = begin(&mut conn, url.as_deref(), staged);
        match commit_group(&conn, begun, group, staged, &sink, fanout.as_deref()) {
            // Only a group that stored something proves the disk takes writes again.
            Ok(true) => health.write_succeeded(),
            Ok(false) => {}
            Err(CommitFailure::Full) => health.write_failed_full(),
            Err(CommitFailure::Corrupt(m)) => health.damaged(&m),
            Err(CommitFailure::Unavailable(m)) => health.write_unavailable(&m),
        }
    }
    // Checkpoint on a clean shutdown so the WAL does not grow across restarts.
    if let Owned::Sqlite(c) = &conn {
        let _ = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }
}

/// Runs and commits one group: `Ok(whether any write of it stored something)`, or why it
/// did not commit (the health tracker logs changes of state, so a full disk is not logged
/// per write).
/// Begins the group's transaction. A PostgreSQL connection found dead (a server restart or
/// failover closes it, and the client notices only on use) is opened again once, before any
/// write of the group has run.
fn begin(conn: &mut Owned, url: Option<&str>, staged: bool) -> Result<(), StoreError> {
    match (conn.begin_with("SAVEPOINT w", staged), url) {
        (Err(StoreError::Unavailable(why)), Some(url)) => {
            tracing::debug!(error = %why, "PostgreSQL connection lost; connecting again");
            *conn = Owned::Postgres(Box::new(PgConn::connect(url)?));
            conn.begin_with("SAVEPOINT w", staged)
        }
        (begun, _) => begun,
    }
}

fn commit_group(
    owned: &Owned,
    begun: Result<(), StoreError>,
    group: Vec<Job>,
    staged: bool,
    sink: &EventSink,
    fanout: Option<&super::fanout::Fanout>,
) -> Result<bool, CommitFailure> {
    let mut completions = Vec::with_capacity(group.len());
    let mut events = Vec::new();
    let mut wrote = false;
    if let Err(e) = begun {
        tracing::debug!(error = %e, "cannot begin write transaction");
        let failure = CommitFailure::of(e);
        for job in group {
            let (_, done) = (job.run)(None);
            done(Some(failure.clone()));
        }
        return Err(failure);
    }
    let conn = owned.conn();
    // Transaction control travels with its neighbours (one round trip to PostgreSQL each):
    // BEGIN opened savepoint `w` for the first write; between writes "RELEASE w; SAVEPOINT w"
    // (or "ROLLBACK TO w", which keeps `w`); after the last, one batch ends it and commits.
    let mut last_ok = true;
    let n = group.len();
    for (i, job) in group.into_iter().enumerate() {
        if i > 0 {
            let between = if last_ok { "RELEASE w; SAVEPOINT w" } else { "ROLLBACK TO w" };
            if let Err(e) = conn.batch(between) {
                tracing::error!(error = %e, "savepoint failed");
            }
        }
        let mut tx = Tx::new(conn);
        tx.ordered = !staged;
        // A panicking write must not take the writer thread (and every later write) with it:
        // its savepoint is rolled back and its caller gets an error (the reply channel drops).
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(Some(&mut tx))));
        let job_events = std::mem::take(&mut tx.events);
        let Ok((ok, done)) = run else {
            tracing::error!("a database write panicked; it was rolled back");
            last_ok = false;
            continue;
        };
        last_ok = ok;
        if ok {
            wrote = true;
            events.extend(job_events);
        }
        completions.push(done);
    }
    let mut tail = String::from(if last_ok || n == 0 { "RELEASE w; " } else { "ROLLBACK TO w; RELEASE w; " });
    if !events.is_empty() {
        tail.push_str(super::fanout::announcement(conn));
    }
    tail.push_str("COMMIT");
    let commit_error = conn.batch(&tail).err().map(|e| {
        tracing::debug!(error = %e, "commit failed");
        let _ = conn.batch("ROLLBACK");
        CommitFailure::of(e)
    });
    if commit_error.is_none() && !events.is_empty() {
        match fanout {
            // Every process broadcasts the cluster's events in id order (ours included).
            Some(f) => f.deliver_committed(conn, events),
            None => sink(events),
        }
    }
    for done in completions {
        done(commit_error.clone());
    }
    commit_error.map_or(Ok(wrote), Err)
}
