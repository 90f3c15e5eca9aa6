//! One SQL interface over two backends: SQLite (every appliance) and PostgreSQL (a hub
//! cluster, `BRANCHD_DATABASE_URL`). The table-group files write their queries once, in the
//! SQL both engines accept (`?N` parameters, `ON CONFLICT … DO …`, `RETURNING`, `CAST(… AS
//! BIGINT)`), and run them through [`Conn`]; the few places where the engines differ ask
//! [`Conn::backend`].
//!
//! Values cross the boundary as [`Cell`]s: integers are 64-bit everywhere (the PostgreSQL
//! schema uses `BIGINT` where SQLite says `INTEGER`), booleans are integers 0/1, JSON is text.
//! This module owns the translation (`?N` → `$N`), the statement caches and the mapping of
//! each engine's errors to [`StoreError`]; it must not know any table.

use std::cell::RefCell;
use std::collections::HashMap;

use super::StoreError;

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A PostgreSQL connection with its prepared statements (keyed by the SQL as written here).
pub struct PgConn {
    client: std::mem::ManuallyDrop<RefCell<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // SAFETY: `client` is taken once, here, and never used again.
        let client = unsafe { std::mem::ManuallyDrop::take(&mut self.client) };
        // Closing blocks on the client's own runtime, which cannot start inside ours.
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new().name("branchd-pg-close".into()).spawn(move || drop(client));
        } else {
            drop(client);
        }
    }
}

impl PgConn {
    /// Connects as `url` says, TLS included (`sslmode`, `sslrootcert`: see `pg_tls`).
    pub fn connect(url: &str) -> Result<PgConn, StoreError> {
        let target = super::pg_tls::parse(url)?;
        let connected = match super::pg_tls::client_config(&target)? {
            None => postgres::Client::connect(&target.url, postgres::NoTls),
            Some(tls) => postgres::Client::connect(&target.url, tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
        };
        let client = connected.map_err(|e| {
            let why = pg_message(&e);
            let hint = if why.contains("TLS") || why.contains("certificate") || why.contains("SSL") || why.contains("encryption") {
                " (check sslmode and sslrootcert in BRANCHD_DATABASE_URL, and the server's pg_hba.conf)"
            } else {
                ""
            };
            StoreError::Unavailable(format!("cannot connect to PostgreSQL: {why}{hint}"))
        })?;
        Ok(PgConn { client: std::mem::ManuallyDrop::new(RefCell::new(client)), statements: RefCell::new(HashMap::new()) })
    }

    /// The client itself, for LISTEN/NOTIFY and advisory locks held across calls.
    pub fn client(&self) -> std::cell::RefMut<'_, postgres::Client> {
        self.client.borrow_mut()
    }

    pub fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    /// The prepared statement for `sql`. A parameter PostgreSQL cannot type from the query
    /// alone (`?2 IS NULL OR x = ?2`) gets the type of the value given the first time.
    fn statement(&self, sql: &str, params: &[Pg<'_>]) -> Result<postgres::Statement, StoreError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let translated = to_postgres(sql);
        let prepared = self.client.borrow_mut().prepare(&translated);
        let stmt = match prepared {
            Err(e)
                if e.code() == Some(&postgres::error::SqlState::INDETERMINATE_DATATYPE)
                    || e.code() == Some(&postgres::error::SqlState::AMBIGUOUS_PARAMETER) =>
            {
                let types: Vec<postgres::types::Type> = params.iter().map(|p| p.natural_type()).collect();
                self.client.borrow_mut().prepare_typed(&translated, &types)?
            }
            other => other?,
        };
        let mut cache = self.statements.borrow_mut();
        if cache.len() > 512 {
            cache.clear();
        }
        cache.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

/// A connection of either engine, borrowed for one read or one transaction.
#[derive(Clone, Copy)]
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a PgConn),
}

/// A value going into or coming out of a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Anything that can be a query parameter.
pub trait Param {
    fn cell(&self) -> Cell<'_>;
}

impl Param for i64 {
    fn cell(&self) -> Cell<'_> {
        Cell::Int(*self)
    }
}
/// Integers narrower than 64 bits: stored as `i64`, which holds every value.
macro_rules! small_int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn cell(&self) -> Cell<'_> {
                Cell::Int(i64::from(*self))
            }
        }
    )*};
}
small_int_param!(i32, u32, u16, u8, bool);

impl Param for usize {
    fn cell(&self) -> Cell<'_> {
        Cell::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl Param for f64 {
    fn cell(&self) -> Cell<'_> {
        Cell::Real(*self)
    }
}
impl Param for str {
    fn cell(&self) -> Cell<'_> {
        Cell::Text(self)
    }
}
impl Param for String {
    fn cell(&self) -> Cell<'_> {
        Cell::Text(self)
    }
}
impl Param for [u8] {
    fn cell(&self) -> Cell<'_> {
        Cell::Blob(self)
    }
}
impl Param for Vec<u8> {
    fn cell(&self) -> Cell<'_> {
        Cell::Blob(self)
    }
}
impl<T: Param + ?Sized> Param for &T {
    fn cell(&self) -> Cell<'_> {
        (**self).cell()
    }
}
impl<T: Param> Param for Option<T> {
    fn cell(&self) -> Cell<'_> {
        self.as_ref().map_or(Cell::Null, Param::cell)
    }
}

/// `params![a, b, …]`: a parameter list for [`Conn`]'s methods.
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::sql::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::sql::Param),+] as &[&dyn $crate::store::sql::Param] };
}
pub(crate) use params;

/// Something a column can be read as.
pub trait FromCell: Sized {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String>;
}

impl FromCell for i64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Int(i) => Ok(i),
            Cell::Text(t) => t.parse().map_err(|_| format!("expected an integer, found text {t:?}")),
            Cell::Real(r) if r.fract() == 0.0 => Ok(r as i64),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}
/// Integers narrower than 64 bits: read as `i64`, refused when out of range.
macro_rules! small_int_from_cell {
    ($($t:ty),*) => {$(
        impl FromCell for $t {
            fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
                i64::from_cell(cell).and_then(|i| <$t>::try_from(i).map_err(|e| e.to_string()))
            }
        }
    )*};
}
small_int_from_cell!(i32, u32, u16, u8, usize);

impl FromCell for bool {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        i64::from_cell(cell).map(|i| i != 0)
    }
}
impl FromCell for f64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Real(r) => Ok(r),
            Cell::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}
impl FromCell for String {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Text(t) => Ok(t.to_string()),
            Cell::Int(i) => Ok(i.to_string()),
            Cell::Blob(b) => String::from_utf8(b.to_vec()).map_err(|e| e.to_string()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl FromCell for Vec<u8> {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Blob(b) => Ok(b.to_vec()),
            Cell::Text(t) => Ok(t.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}
impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Null => Ok(None),
            c => T::from_cell(c).map(Some),
        }
    }
}

/// One result row.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i` (0-based) as `T`; a stored value of another type is [`StoreError::Corrupt`].
    pub fn get<T: FromCell>(&self, i: usize) -> Result<T, StoreError> {
        let converted = match self {
            Row::Sqlite(r) => {
                let v = r.get_ref(i)?;
                T::from_cell(lite_cell(v))
            }
            Row::Postgres(r) => {
                let cell: Cell<'_> = r.try_get(i).map_err(StoreError::from)?;
                T::from_cell(cell)
            }
        };
        converted.map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }
}

fn lite_cell(v: rusqlite::types::ValueRef<'_>) -> Cell<'_> {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => Cell::Null,
        V::Integer(i) => Cell::Int(i),
        V::Real(r) => Cell::Real(r),
        V::Text(t) => std::str::from_utf8(t).map_or(Cell::Blob(t), Cell::Text),
        V::Blob(b) => Cell::Blob(b),
    }
}

struct Lite<'a>(&'a dyn Param);

impl rusqlite::ToSql for Lite<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput as O, ValueRef as V};
        Ok(match self.0.cell() {
            Cell::Null => O::Borrowed(V::Null),
            Cell::Int(i) => O::Borrowed(V::Integer(i)),
            Cell::Real(r) => O::Borrowed(V::Real(r)),
            Cell::Text(t) => O::Borrowed(V::Text(t.as_bytes())),
            Cell::Blob(b) => O::Borrowed(V::Blob(b)),
        })
    }
}

#[derive(Debug)]
struct Pg<'a>(Cell<'a>);

impl Pg<'_> {
    fn natural_type(&self) -> postgres::types::Type {
        use postgres::types::Type;
        match self.0 {
            Cell::Int(_) => Type::INT8,
            Cell::Real(_) => Type::FLOAT8,
            Cell::Blob(_) => Type::BYTEA,
            Cell::Text(_) | Cell::Null => Type::TEXT,
        }
    }
}

impl postgres::types::ToSql for Pg<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match (self.0, ty) {
            (Cell::Null, _) => Ok(postgres::types::IsNull::Yes),
            (Cell::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Cell::Int(i), &Type::INT4) => i32::try_from(i)?.to_sql(ty, out),
            (Cell::Int(i), &Type::INT2) => i16::try_from(i)?.to_sql(ty, out),
            (Cell::Int(i), &Type::BOOL) => (i != 0).to_sql(ty, out),
            (Cell::Int(i), &Type::FLOAT8) => (i as f64).to_sql(ty, out),
            (Cell::Int(i), _) => i.to_string().as_str().to_sql(&Type::TEXT, out),
            (Cell::Real(r), &Type::FLOAT4) => (r as f32).to_sql(ty, out),
            (Cell::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Cell::Real(r), _) => r.to_string().as_str().to_sql(&Type::TEXT, out),
            (Cell::Text(t), &Type::INT8) => t.parse::<i64>()?.to_sql(ty, out),
            (Cell::Text(t), &Type::INT4) => t.parse::<i32>()?.to_sql(ty, out),
            (Cell::Text(t), &Type::FLOAT8) => t.parse::<f64>()?.to_sql(ty, out),
            (Cell::Text(t), &Type::BYTEA) => t.as_bytes().to_sql(ty, out),
            (Cell::Text(t), _) => t.to_sql(&Type::TEXT, out),
            (Cell::Blob(b), _) => b.to_sql(&Type::BYTEA, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for Cell<'a> {
    fn from_sql(ty: &postgres::types::Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{FromSql, Type};
        Ok(match *ty {
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Cell::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Cell::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Cell::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Cell::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Cell::Blob(raw),
            Type::NUMERIC => return Err("NUMERIC column: cast it to BIGINT in the query".into()),
            _ => Cell::Text(<&str as FromSql>::from_sql(&Type::TEXT, raw)?),
        })
    }

    fn from_sql_null(_: &postgres::types::Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Cell::Null)
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
}

/// Rows per multi-row statement on SQLite: a batch is cut greedily into these sizes
/// ([`chunks`]), so a statement of `cols` columns has at most four texts (each prepared once
/// per connection).
const ROW_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// `items` cut into the sizes of [`ROW_CHUNKS`], in order.
fn chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        let n = ROW_CHUNKS.into_iter().find(|n| *n <= rest.len())?;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// The `VALUES` list of a multi-row statement: `rows` tuples of `cols` numbered parameters,
/// `(?1, ?2), (?3, ?4)` for 2 × 2.
fn values_rows(rows: usize, cols: usize) -> String {
    let tuple = |r: usize| {
        let p: Vec<String> = (1..=cols).map(|c| format!("?{}", r * cols + c)).collect();
        format!("({})", p.join(", "))
    };
    (0..rows).map(tuple).collect::<Vec<_>>().join(", ")
}

/// The type of a column written by [`Conn::insert_rows`] (PostgreSQL passes each column as
/// one typed array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Int,
    Text,
}

/// A multi-row statement's text around its rows: `head` up to them (`INSERT INTO t (a, b)`),
/// `cols` the types of the columns named there, `tail` what follows (`ON CONFLICT … DO
/// NOTHING RETURNING a`).
pub struct Rows<'s> {
    pub head: &'s str,
    pub cols: &'s [Ty],
    pub tail: &'s str,
}

impl Rows<'_> {
    /// PostgreSQL: every row in one statement, a column per array parameter (the arrays are
    /// unnested side by side).
    fn unnest(&self) -> String {
        let arrays: Vec<String> = self
            .cols
            .iter()
            .enumerate()
            .map(|(i, t)| format!("unnest(CAST(?{} AS {}))", i + 1, if *t == Ty::Int { "BIGINT[]" } else { "TEXT[]" }))
            .collect();
        // In the select list, not `FROM unnest(…)`: a function in FROM first copies all its
        // rows into a tuple store.
        format!("{} SELECT {} {}", self.head, arrays.join(", "), self.tail)
    }

    /// SQLite: `n` rows as one `VALUES` list.
    fn values(&self, n: usize) -> String {
        format!("{} VALUES {} {}", self.head, values_rows(n, self.cols.len()), self.tail)
    }
}

/// `?N` and `?` parameters → `$N` (outside quoted strings and identifiers).
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 1;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            None => out.push(c),
        }
    }
    out
}

fn pg_params<'a>(params: &'a [&'a dyn Param]) -> Vec<Pg<'a>> {
    params.iter().map(|p| Pg(p.cell())).collect()
}

fn pg_refs<'a>(values: &'a [Pg<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect()
}

impl<'a> Conn<'a> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, StoreError> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(|p| Lite(*p))))?)
            }
            Conn::Postgres(c) => {
                let values = pg_params(params);
                let stmt = c.statement(sql, &values)?;
                let n = c.client.borrow_mut().execute(&stmt, &pg_refs(&values))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// Statements without parameters, separated by `;`.
    pub fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => Ok(c.client.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Calls `f` for each row in order until it returns `Ok(false)`.
    pub fn each(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(|p| Lite(*p))))?;
                while let Some(r) = rows.next()? {
                    if !f(&Row::Sqlite(r))? {
                        break;
                    }
                }
                Ok(())
            }
            Conn::Postgres(c) => {
                let values = pg_params(params);
                let stmt = c.statement(sql, &values)?;
                let rows = c.client.borrow_mut().query(&stmt, &pg_refs(&values))?;
                for r in &rows {
                    if !f(&Row::Postgres(r))? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Every row, each turned into a `T` by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, params, |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The first row, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        self.each(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// The first row; none is an error (for queries that always give one, like `count(*)`).
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, f)?.ok_or_else(|| StoreError::Database(format!("no row from: {sql}")))
    }

    /// Runs `rows` over `params` (row-major, one per column of each row) and maps each row
    /// the statement returns. SQLite: `VALUES` lists of at most 64 rows. PostgreSQL: one
    /// statement whatever the count (`SELECT unnest(?1), unnest(?2) …`, a column per array), so a
    /// push of 500 events costs one round trip per table and one prepared text. The rows of
    /// an `ON CONFLICT … DO UPDATE` must have distinct keys (PostgreSQL refuses a key
    /// updated twice in one statement; SQLite would apply both, in turn).
    pub fn insert_rows<T>(
        &self,
        rows: &Rows<'_>,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let cols = rows.cols.len();
        if cols == 0 || !params.len().is_multiple_of(cols) {
            return Err(StoreError::Database(format!("{} parameters for rows of {cols} columns", params.len())));
        }
        let mut out = Vec::new();
        if params.is_empty() {
            return Ok(out);
        }
        match self {
            Conn::Sqlite(_) => {
                let all: Vec<&[&dyn Param]> = params.chunks(cols).collect();
                for chunk in chunks(&all) {
                    self.each(&rows.values(chunk.len()), &chunk.concat(), |r| {
                        out.push(f(r)?);
                        Ok(true)
                    })?;
                }
            }
            Conn::Postgres(c) => {
                let mut columns: Vec<Vec<Pg<'_>>> = (0..cols).map(|_| Vec::with_capacity(params.len() / cols)).collect();
                for (i, p) in params.iter().enumerate() {
                    columns[i % cols].push(Pg(p.cell()));
                }
                let sql = rows.unnest();
                let stmt = c.statement(&sql, &[])?;
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    columns.iter().map(|c| c as &(dyn postgres::types::ToSql + Sync)).collect();
                for r in &c.client.borrow_mut().query(&stmt, &refs)? {
                    out.push(f(&Row::Postgres(r))?);
                }
            }
        }
        Ok(out)
    }

    /// The SQLite connection, for the few SQLite-only operations (backup, PRAGMAs).
    pub(in crate::store) fn sqlite(&self) -> Option<&'a rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }
}

/// The message of a PostgreSQL error, with the server's text when there is one.
pub(in crate::store) fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            // The client's own errors keep their cause apart ("error performing TLS
            // handshake" → "invalid peer certificate: UnknownIssuer").
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            text
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let Some(db) = e.as_db_error() else {
            return if e.is_closed() {
                StoreError::Unavailable(format!("PostgreSQL connection closed: {e}"))
            } else {
                StoreError::Unavailable(format!("PostgreSQL: {e}"))
            };
        };
        let code = db.code();
        if *code == SqlState::DISK_FULL {
            StoreError::Full
        } else if *code == SqlState::UNIQUE_VIOLATION
            || *code == SqlState::FOREIGN_KEY_VIOLATION
            || *code == SqlState::NOT_NULL_VIOLATION
            || *code == SqlState::CHECK_VIOLATION
        {
            StoreError::Constraint(pg_message(&e))
        } else if code.code().starts_with("08") || code.code().starts_with("57") || code.code().starts_with("53") {
            StoreError::Unavailable(pg_message(&e))
        } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
            StoreError::Corrupt(pg_message(&e))
        } else {
            StoreError::Database(pg_message(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_are_cut_into_few_statement_sizes_and_numbered_in_order() {
        let sizes: Vec<usize> = chunks(&[0u8; 150]).map(<[u8]>::len).collect();
        assert_eq!(sizes, vec![64, 64, 16, 4, 1, 1]);
        assert_eq!(chunks::<u8>(&[]).count(), 0);
        assert_eq!(values_rows(2, 2), "(?1, ?2), (?3, ?4)");
        assert_eq!(values_rows(1, 3), "(?1, ?2, ?3)");
    }

    use super::*;

    #[test]
    fn parameters_become_dollar_numbers_outside_quotes() {
        assert_eq!(to_postgres("SELECT ?1, ?2 FROM t WHERE a = ?1"), "SELECT $1, $2 FROM t WHERE a = $1");
        assert_eq!(to_postgres("SELECT ? , ?"), "SELECT $1 , $2");
        assert_eq!(to_postgres("SELECT '?1', \"a?\" WHERE x = ?3"), "SELECT '?1', \"a?\" WHERE x = $3");
        assert_eq!(to_postgres("SELECT 'it''s ?' , ?2"), "SELECT 'it''s ?' , $2");
    }

    #[test]
    fn sqlite_round_trip_of_every_cell_kind() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let conn = Conn::Sqlite(&c);
        conn.batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)").unwrap();
        let none: Option<String> = None;
        assert_eq!(conn.execute("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", params![7i64, 1.5f64, "x", vec![1u8, 2], none]).unwrap(), 1);
        let row = conn
            .query_row("SELECT i, r, s, b, n FROM t", params![], |r| {
                Ok((r.get::<i64>(0)?, r.get::<f64>(1)?, r.get::<String>(2)?, r.get::<Vec<u8>>(3)?, r.get::<Option<String>>(4)?))
            })
            .unwrap();
        assert_eq!(row, (7, 1.5, "x".to_string(), vec![1, 2], None));
        assert!(conn.query_opt("SELECT i FROM t WHERE i = ?1", params![8i64], |r| r.get::<i64>(0)).unwrap().is_none());
        let bad = conn.query_row("SELECT s FROM t", params![], |r| r.get::<i64>(0)).unwrap_err();
        assert!(matches!(bad, StoreError::Corrupt(_)), "{bad:?}");
    }
}
