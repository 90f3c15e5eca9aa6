//! The binary: parse the command line, load the configuration, run.

use clap::Parser;

use branchd::cli::{Cli, Command};
use branchd::config::LogFormat;

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
                let app = branchd::App::build(config).await?;
                app.run(shutdown_signal()).await?;
                Ok(())
            }
            .await
        }
        cmd => branchd::commands::run(cmd, &config).await.map_err(Into::into),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("branchd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
