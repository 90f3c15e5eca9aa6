//! The binary: parse the command line, load the configuration, run.

use clap::Parser;

use branchd::cli::{Cli, Command};
use branchd::config::LogFormat;

/// Colours only for a person at a terminal: never into the journal, a pipe or a file, and
/// never when `NO_COLOR` is set to anything non-empty (<https://no-color.org>).
fn use_ansi(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = use_ansi(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Registers SIGTERM and SIGINT handlers now (before the server announces itself, so a
/// signal sent right after "listening" is not lost to the default action) and returns the
/// future that completes on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Large allocations (argon2's 19 MiB per password check, big request bodies) go straight
/// to mmap and back to the system when freed. glibc otherwise raises its mmap threshold
/// after the first such free and keeps later ones in per-thread arenas for good: a login
/// flood then left a Pi hundreds of MB poorer (issue #8).
fn return_big_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; called once before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn main() -> std::process::ExitCode {
    return_big_allocations_to_the_system();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("branchd: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match cli.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("branchd: bad configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let result: anyhow::Result<()> = match cli.command.unwrap_or(Command::Serve(Default::default())) {
        Command::Serve(_) => {
            async {
                let stop = shutdown_signal();
                let app = branchd::App::build(config).await?;
                app.run(stop).await?;
                Ok(())
            }
            .await
        }
        cmd => branchd::commands::run(cmd, &config).await.map_err(Into::into),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Admin commands' errors say everything in one line; a chain would repeat it.
            match e.downcast_ref::<branchd::commands::CommandError>() {
                Some(c) => eprintln!("branchd: {c}"),
                None => eprintln!("branchd: {e:#}"),
            }
            let code = e
                .downcast_ref::<branchd::app::AppError>()
                .map(|e| e.exit_code())
                .or_else(|| e.downcast_ref::<branchd::commands::CommandError>().map(|e| e.exit_code()))
                .unwrap_or(1);
            std::process::ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::use_ansi;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_ansi(true, None));
        assert!(use_ansi(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!use_ansi(true, Some("1".into())));
        assert!(!use_ansi(false, None), "journald, pipes and files get no escape codes");
        assert!(!use_ansi(false, Some("1".into())));
    }
}
