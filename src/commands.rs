//! Runs the admin subcommands of [`crate::cli`]. Output is for people: one confirmation
//! line, and where SPEC says so, the secret alone on the last line.

use serde_json::{Value, json};

use crate::auth::{Role, jwt, license, manage, password};
use crate::cli::{BranchCmd, Command, CompanyCmd, LicenseCmd, PrinterCmd, SecretCmd, SyncCmd, TokenCmd, UplinkCmd, UserCmd};
use crate::config::Config;
use crate::store::{Direct, Reader, StoreError, Tx, directory, migrate};

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
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
}

impl CommandError {
    /// The process exit code: 2 for bad usage or configuration (SPEC §1), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) => 2,
            CommandError::Secret(e) if e.is_config() => 2,
            CommandError::Ops(e) => e.exit_code(),
            _ => 1,
        }
    }
}

fn usage<T>(msg: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError::Usage(msg.into()))
}

/// The database the commands act on: the data directory's SQLite file, or a hub cluster's
/// PostgreSQL database (`BRANCHD_DATABASE_URL`), shared with the running processes.
fn open(config: &Config) -> Result<Direct, CommandError> {
    if let Some(url) = &config.database_url {
        return Ok(Direct::open_postgres(url.expose())?);
    }
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(Direct::open(&config.db_path())?)
}

pub async fn run(cmd: Command, config: &Config) -> Result<(), CommandError> {
    match cmd {
        // `main` runs the server itself; nothing to do here.
        Command::Serve(_) => {}
        Command::Secret(SecretCmd::Rotate) => secret_rotate(config)?,
        Command::Company(CompanyCmd::Add { id, name }) => {
            crate::validate::id(&id, "company id").map_err(|e| CommandError::Usage(e.0))?;
            open(config)?.write(|tx| directory::add_company(tx, &id, &name))?;
            println!("company {id} added");
        }
        Command::Branch(BranchCmd::Add { id, company, name, currency }) => {
            crate::validate::id(&id, "branch id").map_err(|e| CommandError::Usage(e.0))?;
            let currency = crate::currency::parse(&currency).map_err(CommandError::Usage)?;
            open(config)?.write(|tx| {
                directory::add_branch(tx, &id, &company, &name)?;
                directory::set_branch_currency(tx, &id, currency)
            })?;
            println!("branch {id} added to company {company} ({currency})");
        }
        Command::Branch(BranchCmd::Currency { id, currency }) => {
            let currency = crate::currency::parse(&currency).map_err(CommandError::Usage)?;
            open(config)?.write(|tx| directory::set_branch_currency(tx, &id, currency))?;
            println!("branch {id} now uses {currency}");
        }
        Command::User(cmd) => user(config, cmd)?,
        Command::License(cmd) => license(config, cmd)?,
        Command::Token(TokenCmd::Issue { sub, role, company, branch, ttl }) => {
            let token = issue_token(config, sub, role, company, branch, &ttl)?;
            println!("{token}");
        }
        Command::Printer(p) => printer(config, p).await?,
        Command::Uplink(cmd) => uplink(config, cmd)?,
        Command::Sync(SyncCmd::Status) => sync_status(config)?,
        Command::Discover { seconds, json: as_json } => discover(config, seconds, as_json).await?,
        Command::Migrate => {
            let version = open(config)?.schema_version()?;
            match &config.database_url {
                Some(_) => println!("PostgreSQL database is at schema version {version} (latest {})", migrate::latest_postgres()),
                None => println!("database {} is at schema version {version} (latest {})", config.db_path().display(), migrate::latest()),
            }
        }
        Command::Backup { file } => {
            if file.exists() {
                return usage(format!("{} already exists; choose a new file name", file.display()));
            }
            open(config)?.copy_to(&file)?;
            println!("backup written to {}", file.display());
        }
        Command::Restore { file } => crate::ops::backup::restore(config, &file).await?,
        Command::CheckConfig => crate::ops::settings::check_config(config).await,
        Command::PrintDefaultConfig { packaged, markdown } => crate::ops::settings::print_default(packaged, markdown),
        Command::Healthcheck => crate::ops::doctor::healthcheck(config).await?,
        Command::Doctor { json: as_json, bundle: None } => crate::ops::doctor::run(config, as_json).await?,
        Command::Doctor { bundle: Some(file), .. } => crate::ops::bundle::write(config, &file).await?,
        Command::Update(args) => crate::ops::update::run(config, args).await.map_err(crate::ops::OpsError::from)?,
        Command::Release(cmd) => crate::ops::release::run(cmd)?,
        Command::Version { json: as_json } => print_version(as_json),
    }
    Ok(())
}

fn license(config: &Config, cmd: LicenseCmd) -> Result<(), CommandError> {
    match cmd {
        LicenseCmd::Create { company, branch } => {
            let key = license::generate();
            open(config)?.write(|tx| {
                directory::add_license(tx, &license::hash(&key), &company, &branch)?;
                if config.role == crate::config::ApplianceRole::Hub {
                    let data = json!({"keyHash": license::hash(&key), "companyId": company, "branchId": branch, "revokedAt": null});
                    crate::store::events::append_internal(tx, "directory:license", &company, &branch, data)?;
                }
                Ok::<_, StoreError>(())
            })?;
            println!("license created for branch {branch} of company {company}; it is shown only now:");
            println!("{key}");
        }
        LicenseCmd::Revoke { key } => {
            let hash = license::hash(&key);
            open(config)?.write(|tx| {
            let lic = directory::license_any(tx, &hash)?;
            if !directory::revoke_license(tx, &hash)? {
                return usage("no active license has that key");
            }
            if let (crate::config::ApplianceRole::Hub, Some(l)) = (config.role, lic) {
                let data =
                    json!({"keyHash": hash, "companyId": l.company_id, "branchId": l.branch_id, "revokedAt": crate::store::now_rfc3339()});
                crate::store::events::append_internal(tx, "directory:license", &l.company_id, &l.branch_id, data)?;
            }
            Ok(())
        })?;
            println!("license revoked; desktop apps using it can no longer connect");
        }
    }
    Ok(())
}

fn uplink(config: &Config, cmd: UplinkCmd) -> Result<(), CommandError> {
    match cmd {
        UplinkCmd::Create { company, branch } => {
            let credential = crate::sync::hub::new_credential();
            open(config)?.write(|tx| crate::store::sync::uplink_create(tx, &branch, &company, &license::hash(&credential)))?;
            println!("uplink credential for branch {branch} of company {company} (shown only now; any earlier one is revoked):");
            println!("{credential}");
        }
        UplinkCmd::Revoke { branch } => {
            if !open(config)?.write(|tx| crate::store::sync::uplink_revoke(tx, &branch))? {
                return usage(format!("branch {branch} has no active uplink credential"));
            }
            println!("uplink credential of branch {branch} revoked; that appliance can no longer sync");
        }
    }
    Ok(())
}

/// `branchd discover`: the branchd appliances that answer on the LAN (mDNS).
async fn discover(config: &Config, seconds: u64, as_json: bool) -> Result<(), CommandError> {
    let ifs = config.mdns_interfaces.clone();
    eprintln!("listening for branchd appliances for {seconds} s…");
    let found = tokio::task::spawn_blocking(move || {
        crate::mdns::browse(&[crate::mdns::SERVICE], std::time::Duration::from_secs(seconds.clamp(1, 60)), &ifs)
    })
    .await
    .map_err(|e| CommandError::Server(e.to_string()))?
    .map_err(|e| CommandError::Server(e.to_string()))?;
    if as_json {
        let items: Vec<Value> = found
            .iter()
            .map(|f| json!({"instance": f.instance, "host": f.host, "addresses": f.addresses, "port": f.port, "txt": f.txt}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&items).unwrap_or_default());
        return Ok(());
    }
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
    Ok(())
}

fn print_version(as_json: bool) {
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

fn user(config: &Config, cmd: UserCmd) -> Result<(), CommandError> {
    match cmd {
        UserCmd::List { company, branch, json: as_json } => user_list(config, company, branch, as_json),
        UserCmd::Add { email, role, company, branch, name, password: pw } => {
            let pw = match pw {
                Some(pw) => {
                    eprintln!(
                        "warning: --password shows in `ps` and the shell history; leave it out to be asked, or pipe the password on standard input"
                    );
                    pw
                }
                None => read_new_password(&format!("password for {email}"))?,
            };
            add_user(config, email, pw, role, company, branch, name)
        }
        UserCmd::Passwd { email } => {
            let mut db = open(config)?;
            let u = db.read(|r| local_user(r, &email))?;
            let pw = read_new_password(&format!("new password for {}", u.email))?;
            manage::check_password(&pw, &u.email).map_err(CommandError::Usage)?;
            let change = directory::UserChange { password_hash: Some(password::hash(&pw)), ..Default::default() };
            let u = db.write(|tx| {
                let u = directory::update_user(tx, &u.id, &change)?;
                publish_if_hub(config, tx, &u)?;
                Ok::<_, CommandError>(u)
            })?;
            println!("password of {} changed; its older tokens stop working and its sockets close within 10 s", u.email);
            Ok(())
        }
        UserCmd::Disable { email } => set_disabled(config, &email, true),
        UserCmd::Enable { email } => set_disabled(config, &email, false),
        UserCmd::Remove { email } => {
            let u = open(config)?.write(|tx| {
                let mut u = local_user(tx, &email)?;
                // Branches keep HQ's users: tell them it is gone for good (disabled) first.
                u.disabled = true;
                publish_if_hub(config, tx, &u)?;
                directory::remove_user(tx, &u.id)?;
                Ok::<_, CommandError>(u)
            })?;
            println!("user {} removed", u.email);
            Ok(())
        }
    }
}

/// A user managed here (not one HQ's feed brought: those are changed at HQ).
fn local_user(r: &Reader<'_>, email: &str) -> Result<directory::User, CommandError> {
    let u = directory::user_by_email(r, email)?.ok_or_else(|| CommandError::Usage(format!("no user has the email {email}")))?;
    if u.from_hq() {
        return usage(format!("user {} was created at HQ and is managed there; change it on the HQ hub", u.email));
    }
    Ok(u)
}

fn publish_if_hub(config: &Config, tx: &Tx<'_>, u: &directory::User) -> Result<(), CommandError> {
    if config.role == crate::config::ApplianceRole::Hub {
        directory::publish_user(tx, u)?;
    }
    Ok(())
}

fn set_disabled(config: &Config, email: &str, disabled: bool) -> Result<(), CommandError> {
    let u = open(config)?.write(|tx| {
        let u = local_user(tx, email)?;
        let u = directory::update_user(tx, &u.id, &directory::UserChange { disabled: Some(disabled), ..Default::default() })?;
        publish_if_hub(config, tx, &u)?;
        Ok::<_, CommandError>(u)
    })?;
    if disabled {
        println!("user {} disabled: it cannot log in, its tokens are refused and its sockets close within 10 s", u.email);
    } else {
        println!("user {} enabled", u.email);
    }
    Ok(())
}

/// A new password: asked twice at a prompt when standard input is a terminal, else the
/// first line of standard input.
fn read_new_password(what: &str) -> Result<String, CommandError> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password(format!("{what}: "))?;
        let again = rpassword::prompt_password("repeat it: ")?;
        if first != again {
            return usage("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        return usage(format!("no {what} on standard input (give it on the first line, or run in a terminal to be asked)"));
    }
    Ok(pw)
}

fn user_list(config: &Config, company: Option<String>, branch: Option<String>, as_json: bool) -> Result<(), CommandError> {
    let users = open(config)?.read(|r| directory::users(r, company.as_deref(), branch.as_deref()))?;
    let origin = |u: &directory::User| if u.from_hq() { "hq" } else { "local" };
    if as_json {
        let items: Vec<Value> = users
            .iter()
            .map(|u| {
                json!({"id": u.id, "email": u.email, "name": u.name, "role": u.role, "companyId": u.company_id,
                       "branchId": u.branch_id, "disabled": u.disabled, "origin": origin(u), "createdAt": u.created_at})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items).unwrap_or_default());
        return Ok(());
    }
    if users.is_empty() {
        println!("no users{}", if company.is_some() || branch.is_some() { " match" } else { " yet: branchd user add --help" });
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING).set_header(["EMAIL", "NAME", "ROLE", "COMPANY", "BRANCH", "STATE", "MANAGED", "ID"]);
    for u in &users {
        table.add_row([
            u.email.as_str(),
            u.name.as_deref().unwrap_or("-"),
            u.role.as_str(),
            u.company_id.as_deref().unwrap_or("-"),
            u.branch_id.as_deref().unwrap_or("-"),
            if u.disabled { "disabled" } else { "active" },
            if u.from_hq() { "at HQ" } else { "here" },
            u.id.as_str(),
        ]);
    }
    print_table(&table);
    Ok(())
}

fn add_user(
    config: &Config,
    email: String,
    pw: String,
    role: String,
    company: Option<String>,
    branch: Option<String>,
    name: Option<String>,
) -> Result<(), CommandError> {
    let Some(r) = Role::parse_user(&role) else {
        return usage(format!("--role must be one of {}", manage::role_names()));
    };
    if r == Role::SuperAdmin && (company.is_some() || branch.is_some()) {
        return usage("a super_admin belongs to no company or branch: leave --company and --branch out");
    }
    if r != Role::SuperAdmin && company.is_none() {
        return usage(format!("--company is required for {role}"));
    }
    if r.branch_scoped() && branch.is_none() {
        return usage(format!("--branch is required for {role}"));
    }
    manage::check_email(&email).map_err(CommandError::Usage)?;
    manage::check_password(&pw, &email).map_err(CommandError::Usage)?;
    let row = directory::UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.clone(),
        password_hash: password::hash(&pw),
        role,
        company_id: company,
        branch_id: branch,
    };
    open(config)?.write(|tx| {
        directory::add_user(tx, &row)?;
        let u = directory::update_user(tx, &row.id, &directory::UserChange { name: Some(name), ..Default::default() })?;
        // HQ users reach the branches through the feed, so they can log in offline there.
        publish_if_hub(config, tx, &u)
    })?;
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
    let claims = jwt::Claims {
        sub,
        role,
        company_id: company,
        branch_id: branch,
        email: None,
        exp: chrono::Utc::now().timestamp() + secs,
        iat: Some(crate::auth::jwt::now_iat()),
    };
    Ok(jwt::Keys::new(secret.as_bytes()).issue(&claims))
}

fn secret_rotate(config: &Config) -> Result<(), CommandError> {
    if config.jwt_secret.is_some() {
        return usage("JWT_SECRET is set in the environment or config file: change it where it is set (on every process that shares it)");
    }
    let path = crate::secrets::rotate(config)?;
    println!("a new JWT secret is in {}", path.display());
    if crate::ops::lock::running(&config.data_dir).is_some() {
        println!(
            "the running server still uses the old one: restart it (systemctl restart branchd); every token in use then stops working and users log in again"
        );
    } else {
        println!("every token signed with the old secret stops working: users log in again");
    }
    Ok(())
}

/// The running server's API on 127.0.0.1, with a short-lived admin token.
struct LocalApi {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl LocalApi {
    fn new(config: &Config) -> Result<LocalApi, CommandError> {
        let token = issue_token(config, "branchd-cli".into(), "super_admin".into(), None, None, "5m")?;
        // The address the running server recorded in its lock file (it may not be the configured port).
        Ok(LocalApi { client: reqwest::Client::new(), base: crate::ops::local_base(config), token })
    }

    /// The JSON answer; an error status is one line with the server's message (504, a
    /// printer that did not answer in time, is an answer for the caller to read).
    async fn call(&self, method: reqwest::Method, path: String, body: Option<Value>) -> Result<Value, CommandError> {
        let base = &self.base;
        let mut req = self.client.request(method, format!("{base}{path}")).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| {
            CommandError::Server(format!("cannot reach branchd at {base} ({}); is `branchd serve` running?", root_cause(&e)))
        })?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() && status.as_u16() != 504 {
            let msg = body["error"]["message"].as_str().unwrap_or("request failed").to_string();
            return Err(CommandError::Server(format!("{status}: {msg}")));
        }
        Ok(body)
    }
}

/// Printer commands talk to the running server ([`LocalApi`]), so that clients see the change.
async fn printer(config: &Config, cmd: PrinterCmd) -> Result<(), CommandError> {
    let api = LocalApi::new(config)?;
    let call = |method, path, body| api.call(method, path, body);
    match cmd {
        PrinterCmd::List { branch, json: as_json } => {
            let q = branch.map(|b| format!("?branchId={b}")).unwrap_or_default();
            let list = call(reqwest::Method::GET, format!("/api/printers{q}"), None).await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            if as_json {
                println!("{}", serde_json::to_string_pretty(&items).unwrap_or_default());
                return Ok(());
            }
            if items.is_empty() {
                println!("no printers yet: branchd printer discover, then branchd printer add --help");
                return Ok(());
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING).set_header(["ID", "NAME", "BRANCH", "ROLE", "CONNECTION", "STATUS"]);
            let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
            for p in &items {
                table.add_row([
                    s(&p["id"]),
                    s(&p["name"]),
                    s(&p["branchId"]),
                    s(&p["role"]),
                    connection_text(&p["connection"]),
                    s(&p["status"]),
                ]);
            }
            print_table(&table);
        }
        PrinterCmd::Add { branch, name, role, host, port, serial, baud, usb, virtual_printer, connection, stations } => {
            let connection = connection_arg(host, port, serial, baud, usb, virtual_printer, connection)?;
            let body = json!({"branchId": branch, "name": name, "role": role, "connection": connection, "stations": stations});
            let p = call(reqwest::Method::POST, "/api/printers".into(), Some(body)).await?;
            println!("printer {} added: {}", p["name"].as_str().unwrap_or(""), p["id"].as_str().unwrap_or(""));
        }
        PrinterCmd::Remove { id } => {
            call(reqwest::Method::DELETE, format!("/api/printers/{id}"), None).await?;
            println!("printer {id} removed");
        }
        PrinterCmd::Discover { scan, serial, json: as_json } => {
            eprintln!("searching USB, serial and mDNS{}…", if scan.is_some() { " and scanning port 9100" } else { "" });
            let mut body = json!({"serial": serial});
            if let Some(cidr) = scan {
                body["scan"] = json!({"cidr": cidr});
            }
            let r = call(reqwest::Method::POST, "/api/printers/discover".into(), Some(body)).await?;
            let list = r["candidates"].as_array().cloned().unwrap_or_default();
            if as_json {
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
                return Ok(());
            }
            if list.is_empty() {
                println!("no printers found");
            }
            for c in list {
                let added = if c["alreadyAdded"] == json!(true) { " (already added)" } else { "" };
                println!("{:<7} {:<28} {}{added}", c["source"].as_str().unwrap_or(""), c["name"].as_str().unwrap_or(""), c["connection"]);
            }
            println!("add one with: branchd printer add --branch BRANCH --name NAME (--host ADDR | --serial PATH | --usb VID:PID)");
        }
        PrinterCmd::Test { id } => {
            let r = call(reqwest::Method::POST, format!("/api/printers/{id}/test"), None).await?;
            if r["success"] != json!(true) {
                let why = r["error"]["message"].as_str().or(r["message"].as_str()).unwrap_or("no reason given");
                let code = r["error"]["code"].as_str().unwrap_or("FAILED");
                return Err(CommandError::Server(format!("test print on {id} failed ({code}): {why}")));
            }
            println!("test page printed on {id} in {} ms", r["durationMs"].as_u64().unwrap_or(0));
        }
    }
    Ok(())
}

/// The `connection` of `printer add` from its flags.
fn connection_arg(
    host: Option<String>,
    port: u16,
    serial: Option<String>,
    baud: u32,
    usb: Option<String>,
    virtual_printer: bool,
    connection: Option<String>,
) -> Result<Value, CommandError> {
    Ok(match (host, serial, usb, connection) {
        (Some(host), ..) => json!({"type": "network", "host": host, "port": port}),
        (_, Some(path), ..) => json!({"type": "serial", "path": path, "baudRate": baud}),
        (_, _, Some(ids), _) => {
            let (vid, pid) =
                ids.split_once(':').ok_or_else(|| CommandError::Usage(format!("--usb {ids} is not VID:PID in hex, e.g. 04b8:0202")))?;
            json!({"type": "usb", "vendorId": vid, "productId": pid})
        }
        (_, _, _, Some(text)) => serde_json::from_str(&text).map_err(|e| CommandError::Usage(format!("--connection is not JSON: {e}")))?,
        _ if virtual_printer => json!({"type": "virtual"}),
        _ => {
            return usage("say how to reach the printer: --host ADDR [--port N], --serial PATH [--baud N], --usb VID:PID or --virtual");
        }
    })
}

/// A table without the padding after each line's last column.
fn print_table(table: &comfy_table::Table) {
    for line in table.to_string().lines() {
        println!("{}", line.trim_end());
    }
}

/// The innermost cause of an error, for one-line messages.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A printer connection in a few words: `network 10.0.0.5:9100`, `usb 04b8:0202`, …
fn connection_text(c: &Value) -> String {
    let s = |k: &str| c[k].as_str().map(str::to_string).or_else(|| c[k].as_u64().map(|n| n.to_string())).unwrap_or_default();
    let hex = |k: &str| c[k].as_u64().map(|n| format!("{n:04x}")).unwrap_or_else(|| s(k));
    match c["type"].as_str().unwrap_or("") {
        "network" => format!("network {}:{}", s("host"), s("port")),
        "serial" => format!("serial {} @{}", s("path"), s("baudRate")),
        "usb" => format!("usb {}:{}", hex("vendorId"), hex("productId")),
        "desktop" => format!("desktop {}/{}", s("deviceId"), s("localId")),
        other => other.to_string(),
    }
}

fn sync_status(config: &Config) -> Result<(), CommandError> {
    let db = open(config)?;
    // The settings' hub, else the one first-run setup joined.
    let joined = db.read(crate::store::setup::persisted_uplink)?.map(|(url, _)| url);
    let Some(url) = config.upstream_url.as_ref().or(joined.as_ref()) else {
        println!("sync is off: BRANCHD_UPSTREAM_URL is not set");
        return Ok(());
    };
    println!("hub:            {url}");
    let Some(branch) = db.read(|r| crate::store::sync::state_get(r, "uplink:branch"))? else {
        println!("state:          never reached the hub yet (check the URL, the network and BRANCHD_UPSTREAM_TOKEN)");
        return Ok(());
    };
    let (pending, oldest) = db.read(|r| crate::store::sync::pending(r, &branch))?;
    let age = oldest.map(|ms| format!("{} s", (chrono::Utc::now().timestamp_millis() - ms).max(0) / 1000)).unwrap_or_else(|| "-".into());
    println!("branch:         {branch}");
    println!(
        "acknowledged:   {} of {} events",
        db.read(|r| crate::store::sync::acked(r, &branch))?,
        db.read(|r| crate::store::sync::stream_last(r, &branch))?
    );
    println!("pending:        {pending} (oldest {age})");
    println!("parked:         {}", db.read(crate::store::sync::parked_count)?);
    println!("last success:   {}", db.read(|r| crate::store::sync::state_get(r, "last_success"))?.unwrap_or_else(|| "never".into()));
    Ok(())
}
