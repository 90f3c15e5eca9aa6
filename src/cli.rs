//! The command line (SPEC §1): global flags, `serve` and the admin subcommands. Admin
//! commands act on the data directory directly, so they work while the server runs;
//! `printer` commands go through the running server's API so that clients see the change.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, ConfigError, Flag, Layer, SETTINGS};

#[derive(Debug, Parser)]
#[command(name = "branchd", version = crate::VERSION, about = "Restaurant branch appliance: realtime hub, printers, offline store")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Server settings may also come before the subcommand (`branchd --port 3001`).
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings accepted before or after the subcommand (SPEC §1): `--config` and the settings
/// declared with `Flag::Global` in [`crate::config::SETTINGS`] (`--data-dir`).
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// TOML config file (lowest precedence after defaults)
    pub config: Option<PathBuf>,
    pub flags: Layer,
}

/// Server settings: flags of `serve` (or before the subcommand), the settings declared with
/// `Flag::Serve` in [`crate::config::SETTINGS`], and `--no-demo`.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    pub flags: Layer,
    /// Do not create demo data on a first start
    pub no_demo: bool,
}

impl ServeArgs {
    /// Values given after `serve` win over those given before it.
    pub fn or(self, before: ServeArgs) -> ServeArgs {
        ServeArgs { flags: before.flags.overlay(self.flags), no_demo: self.no_demo || before.no_demo }
    }
}

/// One clap argument per setting whose flag is accepted at `place`.
fn setting_args(cmd: clap::Command, place: fn(Flag) -> Option<&'static str>, global: bool) -> clap::Command {
    SETTINGS.iter().filter_map(|s| place(s.flag).map(|f| (s, f))).fold(cmd, |cmd, (s, flag)| {
        // The value name clap's derive would give (`--port <PORT>`); built once per parse.
        let value_name: &'static str = Box::leak(s.key.to_uppercase().into_boxed_str());
        cmd.arg(Arg::new(s.key).long(flag).value_name(value_name).global(global).action(ArgAction::Set).help(format!(
            "{} [env: {}] [default: {}]",
            s.meaning().trim_end_matches('.').replace('`', ""),
            s.env,
            s.default_text().replace('`', "")
        )))
    })
}

/// The values of the setting flags accepted at `place` into `layer`.
fn read_settings(m: &ArgMatches, place: fn(Flag) -> Option<&'static str>, layer: &mut Layer) {
    for s in SETTINGS.iter().filter(|s| place(s.flag).is_some()) {
        if let Ok(Some(v)) = m.try_get_one::<String>(s.key) {
            layer.set(s.key, v.clone());
        }
    }
}

fn serve_flag(f: Flag) -> Option<&'static str> {
    match f {
        Flag::Serve(name) => Some(name),
        _ => None,
    }
}

fn global_flag(f: Flag) -> Option<&'static str> {
    match f {
        Flag::Global(name) => Some(name),
        _ => None,
    }
}

impl Args for ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        setting_args(cmd, serve_flag, false)
            .arg(Arg::new("no_demo").long("no-demo").action(ArgAction::SetTrue).help("Do not create demo data on a first start"))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(m)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        read_settings(m, serve_flag, &mut self.flags);
        self.no_demo |= m.try_get_one::<bool>("no_demo").ok().flatten().copied().unwrap_or(false);
        Ok(())
    }
}

impl Args for Global {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let config = Arg::new("config")
            .long("config")
            .value_name("FILE")
            .global(true)
            .action(ArgAction::Set)
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML config file (lowest precedence after defaults)");
        setting_args(cmd.arg(config), global_flag, true)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for Global {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Global::default();
        args.update_from_arg_matches(m)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        read_settings(m, global_flag, &mut self.flags);
        if let Ok(Some(path)) = m.try_get_one::<PathBuf>("config") {
            self.config = Some(path.clone());
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default)
    Serve(ServeArgs),
    /// Companies
    #[command(subcommand)]
    Company(CompanyCmd),
    /// Branches
    #[command(subcommand)]
    Branch(BranchCmd),
    /// Local users (log in with POST /auth/login)
    #[command(subcommand)]
    User(UserCmd),
    /// Desktop print-agent license keys
    #[command(subcommand)]
    License(LicenseCmd),
    /// JWTs signed with the configured secret
    #[command(subcommand)]
    Token(TokenCmd),
    /// The JWT secret kept in the data directory
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Printers, through the running server
    #[command(subcommand)]
    Printer(PrinterCmd),
    /// Branch credentials for sync (on a hub)
    #[command(subcommand)]
    Uplink(UplinkCmd),
    /// Sync with the hub
    #[command(subcommand)]
    Sync(SyncCmd),
    /// List branchd appliances on the LAN (mDNS)
    Discover {
        /// Seconds to listen
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// One JSON array instead of lines
        #[arg(long)]
        json: bool,
    },
    /// Apply database migrations and exit
    Migrate,
    /// Write a consistent copy of the database to FILE (works while the server runs)
    Backup {
        /// The new file (must not exist yet)
        file: PathBuf,
    },
    /// Replace the database with a backup (the server must be stopped; the old one is kept)
    Restore {
        /// A file written by `branchd backup` (or the scheduled backups)
        file: PathBuf,
    },
    /// Check the configuration and that the data directory is writable (exit 2 if not)
    CheckConfig,
    /// Print the configuration file with every setting documented
    PrintDefaultConfig {
        /// With the Debian package's data directory (/var/lib/branchd)
        #[arg(long)]
        packaged: bool,
        /// The settings as a Markdown table (key, env, flag, default, meaning), as in docs/OPERATING.md
        #[arg(long, conflicts_with = "packaged")]
        markdown: bool,
    },
    /// Exit 0 when the local server reports healthy, 1 when not
    Healthcheck,
    /// Check everything an installer would (server, database, printers, uplink, clock, disk),
    /// as the running server sees it
    Doctor {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Write a support bundle (tar.gz, mode 0600): the report, recent logs, the settings
        /// without secrets, health, metrics, print queue and sync state
        #[arg(long, value_name = "FILE", conflicts_with = "json")]
        bundle: Option<PathBuf>,
    },
    /// Signed self-update with health-gated rollback (default: --check)
    Update(crate::ops::update::UpdateArgs),
    /// Make signing keys and signed release manifests
    #[command(subcommand)]
    Release(crate::ops::release::ReleaseCmd),
    /// Print the version
    Version {
        /// One JSON object (version, commit, target, build date)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Replace the JWT secret with a new one (every token in use stops working after a restart)
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum CompanyCmd {
    /// Add a company
    Add {
        /// Company id (letters, digits, '-', '_'; a UUID in production)
        id: String,
        /// Display name
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BranchCmd {
    /// Add a branch to a company
    Add {
        /// Branch id (letters, digits, '-', '_'; a UUID in production)
        id: String,
        /// The company it belongs to
        #[arg(long)]
        company: String,
        /// Display name
        #[arg(long)]
        name: String,
        /// ISO 4217 currency code; receipts print amounts with its minor-unit digits
        #[arg(long, default_value = crate::currency::DEFAULT)]
        currency: String,
    },
    /// Change a branch's currency (ISO 4217 code, e.g. EUR, JPY, KWD)
    Currency {
        /// Branch id
        id: String,
        /// ISO 4217 currency code
        currency: String,
    },
}

/// The roles a user may have (SPEC §2), for `--role`.
pub const ROLES: [&str; 6] = ["super_admin", "company_owner", "branch_manager", "cashier", "call_center", "kitchen"];

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// List users: email, name, role, company, branch, state, where managed
    List {
        /// Only users of this company
        #[arg(long)]
        company: Option<String>,
        /// Only users of this branch
        #[arg(long)]
        branch: Option<String>,
        /// One JSON array instead of a table (no password hashes)
        #[arg(long)]
        json: bool,
    },
    /// Add a user (password from a prompt or standard input)
    ///
    /// The password is asked at a prompt, or read from the first line of standard input when
    /// it is not a terminal (`printf '%s\n' "$PW" | branchd user add ...`).
    ///
    /// The first super_admin (sees and manages every company): `branchd user add --email
    /// you@example.com --role super_admin`.
    #[command(verbatim_doc_comment)]
    Add {
        /// Login email (unique, any case)
        #[arg(long)]
        email: String,
        /// super_admin: everything; company_owner and call_center: one company (--company);
        /// branch_manager, cashier and kitchen: one branch (--company and --branch)
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ROLES))]
        role: String,
        /// Company id (every role but super_admin)
        #[arg(long)]
        company: Option<String>,
        /// Branch id (branch_manager, cashier, kitchen; optional for call_center)
        #[arg(long)]
        branch: Option<String>,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// The password on the command line, for scripts (it shows in `ps` and the shell
        /// history: prefer the prompt or standard input)
        #[arg(long, value_name = "PASSWORD")]
        password: Option<String>,
    },
    /// Set a user's password (prompt or standard input); its older tokens stop working and
    /// its sockets close
    Passwd {
        /// The user's email
        email: String,
    },
    /// Disable a user: it cannot log in, its tokens are refused, its sockets close within 10 s
    Disable {
        /// The user's email
        email: String,
    },
    /// Enable a disabled user again
    Enable {
        /// The user's email
        email: String,
    },
    /// Remove a user for good (its tokens are refused from then on)
    Remove {
        /// The user's email
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LicenseCmd {
    /// Create a key; it is printed once, alone on the last line
    Create {
        /// Company id
        #[arg(long)]
        company: String,
        /// Branch id (the desktop app prints for this branch)
        #[arg(long)]
        branch: String,
    },
    /// Revoke a key: apps using it are disconnected within 10 s
    Revoke {
        /// The license key
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UplinkCmd {
    /// Make the credential a branch appliance puts in BRANCHD_UPSTREAM_TOKEN (printed once, last line)
    Create {
        /// Company id
        #[arg(long)]
        company: String,
        /// Branch id
        #[arg(long)]
        branch: String,
    },
    /// Revoke a branch's credential
    Revoke {
        /// Branch id
        #[arg(long)]
        branch: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Backlog, cursor and last success of this branch's uplink
    Status,
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Print a JWT for the given identity (for HQ systems and tests)
    Issue {
        /// Subject: the user id the token speaks for
        #[arg(long)]
        sub: String,
        /// The token's role
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ROLES))]
        role: String,
        /// Company id (every role but super_admin)
        #[arg(long)]
        company: Option<String>,
        /// Branch id (branch_manager, cashier, kitchen)
        #[arg(long)]
        branch: Option<String>,
        /// Lifetime: 90s, 15m, 1h, 7d
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrinterCmd {
    /// List printers: id, name, branch, role, connection, status
    List {
        /// Only this branch's printers
        #[arg(long)]
        branch: Option<String>,
        /// One JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Add a printer: give one of --host, --serial, --usb, --virtual (or --connection JSON)
    Add {
        /// Branch id
        #[arg(long)]
        branch: String,
        /// Display name
        #[arg(long)]
        name: String,
        /// What it prints
        #[arg(long, default_value = "receipt", value_parser = clap::builder::PossibleValuesParser::new(["receipt", "kitchen", "label"]))]
        role: String,
        /// Network printer: host name or IP address
        #[arg(long, group = "conn")]
        host: Option<String>,
        /// Network printer: TCP port
        #[arg(long, default_value_t = 9100, requires = "host")]
        port: u16,
        /// Serial printer: device path, e.g. /dev/ttyUSB0
        #[arg(long, value_name = "PATH", group = "conn")]
        serial: Option<String>,
        /// Serial printer: baud rate
        #[arg(long, value_name = "N", default_value_t = 9600, requires = "serial")]
        baud: u32,
        /// USB printer: vendor and product id in hex, e.g. 04b8:0202
        #[arg(long, value_name = "VID:PID", group = "conn")]
        usb: Option<String>,
        /// A virtual printer (renders to the dashboard and the data directory)
        #[arg(long = "virtual", group = "conn")]
        virtual_printer: bool,
        /// Any connection as JSON, e.g. '{"type":"desktop","deviceId":"d1","localId":"EPSON"}'
        #[arg(long, value_name = "JSON", group = "conn")]
        connection: Option<String>,
        /// Kitchen stations it serves, comma-separated
        #[arg(long, value_delimiter = ',')]
        stations: Vec<String>,
    },
    /// Remove a printer
    Remove {
        /// Printer id (see `printer list`)
        id: String,
    },
    /// Print a test page and say how it went
    Test {
        /// Printer id (see `printer list`)
        id: String,
    },
    /// Find printers on USB, serial, mDNS and (with --scan CIDR) port 9100
    Discover {
        /// Also scan this IPv4 network (a /24 or smaller) for port 9100, e.g. 192.168.1.0/24
        #[arg(long)]
        scan: Option<String>,
        /// Probe serial ports with a status request
        #[arg(long)]
        serial: bool,
        /// One JSON array of candidates instead of lines
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// File < environment < flags.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let path = crate::ops::sysconf::config_path(self.global.config.as_deref(), std::env::var("BRANCHD_CONFIG").ok());
        let file = match &path {
            Some(path) => Layer::from_file(path)?,
            None => Layer::default(),
        };
        let env = Layer::from_env(crate::ops::sysconf::env_lookup(path.as_deref()));
        let serve = match &self.command {
            Some(Command::Serve(after)) => after.clone().or(self.serve.clone()),
            _ => self.serve.clone(),
        };
        let flags = serve.flags.overlay(self.global.flags.clone());
        let mut config = file.overlay(env).overlay(flags).resolve()?;
        config.demo = !serve.no_demo;
        Ok(config)
    }
}
