//! Offline-first sync between branch appliances and the HQ hub (the same binary with
//! `--role hub`). Owns the wire protocol, the hub's endpoints logic, applying the other
//! side's events, and the branch's relay (push) and feed (pull) loops.
//!
//! Guarantees (SPEC §6): every company-level event of a branch is written with the change
//! that caused it and a gap-free per-branch stream number; the relay pushes batches in
//! stream order; the hub stores each under the unique key (branch, number), applies it once,
//! and answers with its highest contiguous number only after its commit; the branch
//! advances its cursor only from that answer. Nothing depends on the wall clock.

pub mod apply;
pub mod hub;
pub mod relay;

use serde::{Deserialize, Serialize};

pub use crate::store::sync::{FeedEvent, WireEvent};

/// The protocol this build speaks. A peer that speaks another one is refused loudly, never
/// retried in a loop.
pub const PROTOCOL: u32 = 1;
/// Push batches are bounded in count and bytes.
pub const BATCH_MAX_EVENTS: usize = 500;
pub const BATCH_MAX_BYTES: usize = 512 * 1024;
pub const FEED_MAX: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    pub protocol: u32,
    pub supported: Vec<u32>,
    pub branch_id: String,
    pub company_id: String,
    pub high_water: i64,
    /// The hub's newest feed position. A branch whose feed cursor is beyond it is talking to
    /// a hub restored from an older backup, and reads the feed again from the start (applying
    /// it is idempotent). Absent from older hubs.
    #[serde(default)]
    pub feed_head: Option<i64>,
    /// The names and currency the hub knows for this branch and its company, so that an
    /// appliance joining HQ (first-run setup) takes them from the hub. Absent from older hubs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushRequest {
    pub protocol: u32,
    pub branch_id: String,
    pub events: Vec<WireEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parked {
    pub seq: i64,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushResponse {
    pub protocol: u32,
    pub high_water: i64,
    #[serde(default)]
    pub parked: Vec<Parked>,
    /// Events of the batch the hub already had (a resend after a lost answer).
    #[serde(default)]
    pub duplicates: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedResponse {
    pub protocol: u32,
    pub events: Vec<FeedEvent>,
    pub next_cursor: i64,
    pub more: bool,
}
