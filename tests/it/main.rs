//! The integration tests, one test binary (`cargo test --test it`): each module is what was
//! a test binary of its own (`tests/printing.rs` is now module `printing`, so
//! `cargo test --test it printing::` runs what `--test printing` ran), and `common` (the test
//! server, the printer emulator, the fault proxy, `eventually`) is compiled once for all.
//! One binary compiles and links once; the tests of all modules share one process, so what
//! is process-wide (the tracing subscriber of `print_alerts`, the panic hook of `fuzz`, the
//! browser lock in `common`) is written with that in mind.

mod common;

mod abuse;
mod asb;
mod backup;
mod cli;
mod cli_printers;
mod cli_users;
mod cluster;
mod cluster_harness;
mod crash;
mod dashboard;
mod doctor;
mod fuzz;
mod hardening;
mod http_api;
mod js_client;
mod mdns;
mod packaging;
mod print_alerts;
mod printing;
mod python_client;
mod setup;
mod slow_client;
mod sync;
mod tidy;
mod tls;
mod update;
mod users;
