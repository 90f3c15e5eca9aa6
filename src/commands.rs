//! Runs the admin subcommands of [`crate::cli`]. Output is for people: one confirmation
//! line, and where SPEC says so, the secret alone on the last line.

use serde_json::{Value, json};

use crate::auth::{Role, jwt, license, password};
use crate::cli::{BranchCmd, Command, CompanyCmd, LicenseCmd, PrinterCmd, TokenCmd, UserCmd};
use crate::config::Config;
use crate::store::{StoreError, db, directory, migrate};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot use data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Server(String),
}

fn usage<T>(msg: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError::Usage(msg.into()))
}

fn open(config: &Config) -> Result<rusqlite::Connection, CommandError> {
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(db::open_rw(&config.db_path())?)
}

pub async fn run(cmd: Command, config: &Config) -> Result<(), CommandError> {
    match cmd {
        // `main` runs the server itself; nothing to do here.
        Command::Serve(_) => {}
        Command::Company(CompanyCmd::Add { id, name }) => {
            crate::validate::id(&id, "company id").map_err(|e| CommandError::Usage(e.0))?;
            directory::add_company(&open(config)?, &id, &name)?;
            println!("company {id} added");
        }
        Command::Branch(BranchCmd::Add { id, company, name }) => {
            crate::validate::id(&id, "branch id").map_err(|e| CommandError::Usage(e.0))?;
            directory::add_branch(&open(config)?, &id, &company, &name)?;
            println!("branch {id} added to company {company}");
        }
        Command::User(UserCmd::Add { email, password: pw, role, company, branch }) => add_user(config, email, pw, role, company, branch)?,
        Command::License(LicenseCmd::Create { company, branch }) => {
            let key = license::generate();
            directory::add_license(&open(config)?, &license::hash(&key), &company, &branch)?;
            println!("license created for branch {branch} of company {company}; it is shown only now:");
            println!("{key}");
        }
        Command::License(LicenseCmd::Revoke { key }) => {
            if !directory::revoke_license(&open(config)?, &license::hash(&key))? {
                return usage("no active license has that key");
            }
            println!("license revoked; desktop apps using it can no longer connect");
        }
        Command::Token(TokenCmd::Issue { sub, role, company, branch, ttl }) => {
            let token = issue_token(config, sub, role, company, branch, &ttl)?;
            println!("{token}");
        }
        Command::Printer(p) => printer(config, p).await?,
        Command::Discover { seconds } => {
            let ifs = config.mdns_interfaces.clone();
            eprintln!("listening for branchd appliances for {seconds} s…");
            let found = tokio::task::spawn_blocking(move || {
                crate::discovery::browse(&[crate::discovery::SERVICE], std::time::Duration::from_secs(seconds.clamp(1, 60)), &ifs)
            })
            .await
            .map_err(|e| CommandError::Server(e.to_string()))?
            .map_err(|e| CommandError::Server(e.to_string()))?;
            if found.is_empty() {
                println!("no branchd appliance answered (is mDNS allowed on this network?)");
            }
            for f in found {
                let addr = f.addresses.first().cloned().unwrap_or_else(|| f.host.clone());
                let txt = |k: &str| f.txt.get(k).cloned().unwrap_or_default();
                println!(
                    "{}  http://{addr}:{}/  role={} version={} company={} branch={} id={}",
                    f.instance,
                    f.port,
                    txt("role"),
                    txt("version"),
                    txt("companyId"),
                    txt("branchId"),
                    txt("id")
                );
            }
        }
        Command::Migrate => {
            let conn = open(config)?;
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(StoreError::from)?;
            println!("database {} is at schema version {version} (latest {})", config.db_path().display(), migrate::latest());
        }
        Command::Backup { file } => {
            if file.exists() {
                return usage(format!("{} already exists; choose a new file name", file.display()));
            }
            let conn = open(config)?;
            conn.execute("VACUUM INTO ?1", [file.to_string_lossy().as_ref()]).map_err(StoreError::from)?;
            println!("backup written to {}", file.display());
        }
        Command::Version { json: as_json } => {
            let v = crate::version_info();
            if as_json {
                println!("{v}");
            } else {
                println!(
                    "branchd {} ({} {} {})",
                    v["version"].as_str().unwrap_or(""),
                    v["commit"].as_str().unwrap_or(""),
                    v["target"].as_str().unwrap_or(""),
                    v["buildDate"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

fn add_user(
    config: &Config,
    email: String,
    pw: String,
    role: String,
    company: Option<String>,
    branch: Option<String>,
) -> Result<(), CommandError> {
    let Some(r) = Role::parse_user(&role) else {
        let all: Vec<&str> = Role::USER_ROLES.iter().map(|r| r.as_str()).collect();
        return usage(format!("--role must be one of {}", all.join(", ")));
    };
    if r != Role::SuperAdmin && company.is_none() {
        return usage(format!("--company is required for {role}"));
    }
    if r.branch_scoped() && branch.is_none() {
        return usage(format!("--branch is required for {role}"));
    }
    if pw.len() < 8 {
        return usage("--password must be at least 8 characters");
    }
    let row = directory::UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.clone(),
        password_hash: password::hash(&pw),
        role,
        company_id: company,
        branch_id: branch,
    };
    directory::add_user(&open(config)?, &row)?;
    println!("user {email} added (id {})", row.id);
    Ok(())
}

fn issue_token(
    config: &Config,
    sub: String,
    role: String,
    company: Option<String>,
    branch: Option<String>,
    ttl: &str,
) -> Result<String, CommandError> {
    let Some(r) = Role::parse_user(&role) else { return usage(format!("unknown role {role}")) };
    if r != Role::SuperAdmin && company.is_none() {
        return usage(format!("--company is required for {role}"));
    }
    if r.branch_scoped() && branch.is_none() {
        return usage(format!("--branch is required for {role}"));
    }
    let secs = jwt::parse_ttl(ttl).ok_or_else(|| CommandError::Usage(format!("--ttl {ttl} is not like 90s, 15m, 1h or 7d")))?;
    std::fs::create_dir_all(&config.data_dir)?;
    let secret = crate::secrets::jwt_secret(config)?;
    let claims = jwt::Claims { sub, role, company_id: company, branch_id: branch, email: None, exp: chrono::Utc::now().timestamp() + secs };
    Ok(jwt::Keys::new(secret.as_bytes()).issue(&claims))
}

/// Printer commands talk to the running server on 127.0.0.1 with a short-lived admin token.
async fn printer(config: &Config, cmd: PrinterCmd) -> Result<(), CommandError> {
    let token = issue_token(config, "branchd-cli".into(), "super_admin".into(), None, None, "5m")?;
    let base = format!("http://127.0.0.1:{}", config.port);
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut req = client.request(method, format!("{base}{path}")).bearer_auth(&token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let res = req.send().await.map_err(|e| {
                CommandError::Server(format!("cannot reach branchd at {base}: {e}; is `branchd serve` running on port {}?", config.port))
            })?;
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if status.is_client_error() || status.is_server_error() && status.as_u16() != 504 {
                let msg = body["error"]["message"].as_str().unwrap_or("request failed").to_string();
                return Err(CommandError::Server(format!("{status}: {msg}")));
            }
            Ok(body)
        }
    };
    match cmd {
        PrinterCmd::List { branch } => {
            let q = branch.map(|b| format!("?branchId={b}")).unwrap_or_default();
            let list = call(reqwest::Method::GET, format!("/api/printers{q}"), None).await?;
            for p in list["items"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<24} {:<8} {:<8} {}",
                    p["id"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or(""),
                    p["role"].as_str().unwrap_or(""),
                    p["connection"]["type"].as_str().unwrap_or(""),
                    p["status"].as_str().unwrap_or("")
                );
            }
        }
        PrinterCmd::Add { branch, name, role, connection, stations } => {
            let connection: Value =
                serde_json::from_str(&connection).map_err(|e| CommandError::Usage(format!("--connection is not JSON: {e}")))?;
            let body = json!({"branchId": branch, "name": name, "role": role, "connection": connection, "stations": stations});
            let p = call(reqwest::Method::POST, "/api/printers".into(), Some(body)).await?;
            println!("printer added: {}", p["id"].as_str().unwrap_or(""));
        }
        PrinterCmd::Remove { id } => {
            call(reqwest::Method::DELETE, format!("/api/printers/{id}"), None).await?;
            println!("printer {id} removed");
        }
        PrinterCmd::Discover { scan, serial } => {
            eprintln!("searching USB, serial and mDNS{}…", if scan.is_some() { " and scanning port 9100" } else { "" });
            let mut body = json!({"serial": serial});
            if let Some(cidr) = scan {
                body["scan"] = json!({"cidr": cidr});
            }
            let r = call(reqwest::Method::POST, "/api/printers/discover".into(), Some(body)).await?;
            let list = r["candidates"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no printers found");
            }
            for c in list {
                let added = if c["alreadyAdded"] == json!(true) { " (already added)" } else { "" };
                println!("{:<7} {:<28} {}{added}", c["source"].as_str().unwrap_or(""), c["name"].as_str().unwrap_or(""), c["connection"]);
            }
            println!("add one with: branchd printer add --branch BRANCH --name NAME --connection 'CONNECTION'");
        }
        PrinterCmd::Test { id } => {
            let r = call(reqwest::Method::POST, format!("/api/printers/{id}/test"), None).await?;
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            if r["success"] != json!(true) {
                return Err(CommandError::Server(format!("test print failed: {}", r["message"].as_str().unwrap_or(""))));
            }
        }
    }
    Ok(())
}
