//! A real PostgreSQL for the hub-cluster tests (issue 15): Debian's server binaries
//! (`/usr/lib/postgresql/<newest>/bin`), one server per test process, started on first use
//! and stopped when the process exits (see [`super::supervised`]), each test with a fresh
//! database of its own.
//!
//! The server is made with `initdb -A trust` in a temporary directory, as `nobody` when the
//! tests run as root (PostgreSQL refuses root), and listens on 127.0.0.1 on a free port and on
//! a unix socket in that directory. `fsync` stays on: durability is what the cluster tests
//! check (only `initdb` skips flushing the fresh cluster's files). Settings are small, for a
//! shared 2-core machine: 200 connections, 32 MB shared buffers, no parallel query. TLS is
//! on, with a certificate from a test CA ([`PgDb::ca_file`]); of [`tls_databases`], one
//! refuses plain TCP and one takes only a client certificate.
//!
//! ```ignore
//! let Some(db) = common::postgres::database("cross_process") else { return };  // says SKIPPED
//! let url = db.url();                       // postgres://postgres@127.0.0.1:PORT/cross_process_0
//! assert_eq!(db.psql("SELECT count(*) FROM events"), "0");
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::supervised::{self, Supervised};

/// The database superuser `initdb` makes (trusted, no password).
pub const USER: &str = "postgres";

/// What a test prints when PostgreSQL is missing and it does not run.
pub const SKIPPED: &str = "SKIPPED: PostgreSQL not installed (apt-get install postgresql)";

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, `postgres` and `psql`.
pub fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.split('.').map(|p| p.parse().ok()).collect::<Option<Vec<u32>>>()?;
            let bin = e.path().join("bin");
            ["initdb", "postgres", "psql"].iter().all(|t| bin.join(t).is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A program of the installed PostgreSQL (`pg_dump`, `pg_isready`...), when installed.
pub fn tool(name: &str) -> Option<PathBuf> {
    bin_dir().map(|b| b.join(name)).filter(|p| p.is_file())
}

struct Server {
    bin: PathBuf,
    port: u16,
    /// The CA that signed the server's TLS certificate (PEM).
    ca: PathBuf,
    /// Held for the life of the test process: dropping it would stop the server.
    _process: Supervised,
}

/// The test process's server, started on first call; `None` when PostgreSQL is missing.
fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER.get_or_init(|| bin_dir().map(start)).as_ref()
}

/// A fresh database on the test process's server, named after `name` (plus a number, so the
/// same name may be asked for twice). `None`, after printing [`SKIPPED`], when PostgreSQL is
/// not installed: the test returns. Blocks while the server starts (first call: seconds).
pub fn database(name: &str) -> Option<PgDb> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let Some(server) = server() else {
        eprintln!("{SKIPPED}");
        return None;
    };
    let mut base: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(40).collect();
    if base.is_empty() {
        base.push_str("test");
    }
    Some(create(server, format!("{base}_{}", NEXT.fetch_add(1, Ordering::Relaxed))))
}

/// The database named [`TLS_ONLY`], which the server's `pg_hba.conf` refuses over plain TCP,
/// and [`CERT_ONLY`], which takes only a client certificate ([`PgDb::client_cert`]) for
/// `postgres` (made on first call; every caller shares them). `None` as for [`database`].
pub fn tls_databases() -> Option<(PgDb, PgDb)> {
    static MADE: OnceLock<Option<(PgDb, PgDb)>> = OnceLock::new();
    MADE.get_or_init(|| match server() {
        Some(server) => Some((create(server, TLS_ONLY.into()), create(server, CERT_ONLY.into()))),
        None => {
            eprintln!("{SKIPPED}");
            None
        }
    })
    .clone()
}

/// See [`tls_databases`].
pub const TLS_ONLY: &str = "tls_only";
pub const CERT_ONLY: &str = "cert_only";

fn create(server: &Server, name: String) -> PgDb {
    let db = PgDb { name, port: server.port, bin: server.bin.clone(), ca: server.ca.clone() };
    let admin = PgDb { name: "postgres".into(), ..db.clone() };
    admin.psql(&format!("CREATE DATABASE \"{}\"", db.name));
    db
}

/// One test's database.
#[derive(Debug, Clone)]
pub struct PgDb {
    name: String,
    port: u16,
    bin: PathBuf,
    ca: PathBuf,
}

impl PgDb {
    /// `postgres://postgres@127.0.0.1:PORT/NAME`, for `BRANCHD_DATABASE_URL`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{}", self.port, self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA file that verifies the server's certificate (for `sslrootcert`).
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// A client certificate for the user `postgres`, signed by that CA, and its key (for
    /// `sslcert` and `sslkey`).
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        let dir = self.ca.parent().expect("the CA's directory");
        (dir.join("client.crt"), dir.join("client.key"))
    }

    /// Runs `sql` (one or more statements) with `psql` on this database; the rows of the last
    /// result, one a line, columns separated by `|`, no header. Panics with psql's message
    /// when it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql).unwrap_or_else(|e| panic!("psql on {} failed: {e}\nSQL: {sql}", self.name))
    }

    /// [`PgDb::psql`], with psql's error message as `Err` (for SQL that is meant to fail).
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .arg("-c")
            .arg(sql)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(|e| format!("psql does not run: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

/// A port nothing listens on right now (the server binds it a moment later; a clash is
/// noticed and retried by [`start`]).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// `initdb` and start a server; retried on a fresh port when another process took it first.
fn start(bin: PathBuf) -> Server {
    for _ in 0..5 {
        if let Some(server) = try_start(&bin) {
            return server;
        }
    }
    panic!("PostgreSQL could not bind a free port on 127.0.0.1 in five tries");
}

fn try_start(bin: &Path) -> Option<Server> {
    let dir = supervised::temp_dir("branchd-pg-");
    supervised::give_away(&dir);
    let data = dir.join("data");
    let out = supervised::command(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
        .output()
        .expect("initdb runs");
    assert!(out.status.success(), "initdb failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let ca = tls_files(&dir);
    // Plain TCP is refused for one database, so that the TLS test can tell.
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(&hba, format!("hostnossl {TLS_ONLY} all 127.0.0.1/32 reject\nhostssl {CERT_ONLY} all 127.0.0.1/32 cert\nhost {CERT_ONLY} all 127.0.0.1/32 reject\n{rules}"))
        .expect("pg_hba.conf written");
    supervised::give_away(&dir);
    let port = free_port();
    let log = dir.join("postgres.log");
    let mut args: Vec<String> = vec!["-D".into(), data.display().to_string()];
    for setting in [
        "listen_addresses=127.0.0.1".to_string(),
        format!("port={port}"),
        format!("unix_socket_directories={}", dir.display()),
        "fsync=on".into(),
        "synchronous_commit=on".into(),
        "max_connections=200".into(),
        "shared_buffers=32MB".into(),
        "max_parallel_workers_per_gather=0".into(),
        "max_wal_size=512MB".into(),
        "log_min_messages=warning".into(),
        "ssl=on".into(),
        format!("ssl_cert_file={}", dir.join("server.crt").display()),
        format!("ssl_key_file={}", dir.join("server.key").display()),
        format!("ssl_ca_file={}", dir.join("ca.crt").display()),
    ] {
        args.extend(["-c".into(), setting]);
    }
    // SIGQUIT: immediate shutdown, the database is thrown away anyway.
    let process = Supervised::spawn(&bin.join("postgres"), &args, &log, "QUIT", Some(&dir));
    let probe = PgDb { name: "postgres".into(), port, bin: bin.to_path_buf(), ca: ca.clone() };
    let server = Server { bin: bin.to_path_buf(), port, ca, _process: process };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !server._process.alive() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            if log.contains("could not bind") || log.contains("already in use") {
                return None; // dropping `server` removes the directory
            }
            panic!("PostgreSQL exited at start; its log:\n{log}");
        }
        // Ours, not a server that happened to be on the port.
        if let Ok(seen) = probe.try_psql("SHOW data_directory")
            && Path::new(&seen) == data
        {
            return Some(server);
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not accept connections in 60 s; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A CA (`ca.crt`), the server's certificate for `localhost` (not 127.0.0.1) signed by it
/// (`server.crt`, `server.key`, mode 0600 as PostgreSQL wants) and a client certificate for
/// the user `postgres` (`client.crt`, `client.key`), in `dir`; the CA's path.
fn tls_files(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::os::unix::fs::PermissionsExt;
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "branchd test PostgreSQL CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client.distinguished_name.push(rcgen::DnType::CommonName, USER);
    let client_cert = client.signed_by(&client_key, &issuer).expect("client certificate");
    std::fs::write(dir.join("client.crt"), client_cert.pem()).expect("client.crt");
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).expect("client.key");
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("ca.crt");
    std::fs::write(dir.join("server.crt"), cert.pem()).expect("server.crt");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("server.key");
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod server.key");
    dir.join("ca.crt")
}
