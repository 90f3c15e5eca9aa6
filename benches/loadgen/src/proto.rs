//! The few Engine.IO v4 / Socket.IO v4 packets the harness speaks, and the fixed layout of
//! branches, companies and clients that coordinator and workers agree on.

/// Engine.IO long-polling payloads separate packets with the record separator.
pub const RS: char = '\u{1e}';

/// A `newOrder` of this harness: `42/orders,["newOrder",{..."notes":"lgPHASE:SEQ:T_NS"...}]`.
/// Returns `(phase, seq, t_ns)`; `None` for any other packet. Scans instead of parsing the
/// whole JSON so that the client side stays cheap at hundreds of thousands of messages/s.
pub fn new_order(s: &str) -> Option<(u64, u64, u64)> {
    let rest = s.strip_prefix("42/orders,")?;
    if !rest.starts_with("[\"newOrder\",") {
        return None;
    }
    let at = rest.find("\"notes\":\"lg")?;
    let tail = &rest[at + 11..];
    let tag = &tail[..tail.find('"')?];
    let mut it = tag.split(':');
    let phase = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    let t = it.next()?.parse().ok()?;
    Some((phase, seq, t))
}

/// The number in a broadcast's `"eventId":"…"` (branchd: `"17"`; the reference:
/// `"<boot>-17"`), which grows with every event the server sends.
pub fn event_seq(s: &str) -> Option<u64> {
    let at = s.rfind("\"eventId\":\"")?;
    let tail = &s[at + 11..];
    let id = &tail[..tail.find('"')?];
    id.rsplit('-').next()?.parse().ok()
}

/// The ack id of `43/orders,<id>[...]` on namespace `ns`.
pub fn ack_id(s: &str, ns: &str) -> Option<u64> {
    let rest = s.strip_prefix("43")?.strip_prefix(ns)?.strip_prefix(',')?;
    let end = rest.find('[')?;
    rest[..end].parse().ok()
}

/// SPEC §6 probe: events whose handlers take different times, sent in one go on `/orders`
/// with ack ids 1..=n. Ends joined to `branch` (where the client was), so a server that
/// applied the last leave/join out of order also loses the client's deliveries.
pub fn order_probe(branch: &str) -> Vec<String> {
    let b = format!("{{\"branchId\":\"{branch}\"}}");
    [
        format!("[\"leaveBranch\",{b}]"),
        "[\"catchUp\",{\"since\":\"0\"}]".to_string(),
        format!("[\"joinBranch\",{b}]"),
        "[\"requestLiveOrders\",{}]".to_string(),
        format!("[\"leaveBranch\",{b}]"),
        format!("[\"joinBranch\",{b}]"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, body)| format!("42/orders,{}{body}", i + 1))
    .collect()
}

pub fn notes_tag(phase: u64, seq: u64, t_ns: u64) -> String {
    format!("lg{phase}:{seq}:{t_ns}")
}

/// What a namespace CONNECT answer says: accepted, or refused with the server's message.
pub enum NsAnswer<'a> {
    Accepted(&'a str),
    Refused(&'a str, &'a str),
}

/// `40/ns,{"sid":..}` or `44/ns,{"message":..}`.
pub fn ns_answer(s: &str) -> Option<NsAnswer<'_>> {
    let (accepted, rest) = if let Some(r) = s.strip_prefix("40") { (true, r) } else { (false, s.strip_prefix("44")?) };
    let ns = match rest.find(',') {
        Some(i) => &rest[..i],
        None => rest,
    };
    let ns = if ns.is_empty() { "/" } else { ns };
    if accepted { Some(NsAnswer::Accepted(ns)) } else { Some(NsAnswer::Refused(ns, rest.get(ns.len() + 1..).unwrap_or(""))) }
}

/// The `sid` of an Engine.IO open packet `0{"sid":...}`.
pub fn open_sid(s: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(s.strip_prefix('0')?).ok()?;
    v.get("sid")?.as_str().map(str::to_string)
}

/// Who client `i` is and where its orders come from.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub branches: usize,
    pub companies: usize,
    /// Every `owner_every`-th client is a `company_owner` (0: none).
    pub owner_every: usize,
    /// Every `polling_every`-th client uses HTTP long-polling (0: none).
    pub polling_every: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cashier { branch: usize },
    Owner { company: usize },
}

impl Layout {
    pub fn branch_id(b: usize) -> String {
        format!("lg-br-{b}")
    }
    pub fn company_id(c: usize) -> String {
        format!("lg-co-{c}")
    }
    pub fn company_of(&self, branch: usize) -> usize {
        branch % self.companies.max(1)
    }
    pub fn kind(&self, i: usize) -> Kind {
        if self.owner_every > 0 && i % self.owner_every == self.owner_every - 1 {
            Kind::Owner { company: (i / self.owner_every) % self.companies.max(1) }
        } else {
            Kind::Cashier { branch: i % self.branches.max(1) }
        }
    }
    pub fn polling(&self, i: usize) -> bool {
        self.polling_every > 0 && i % self.polling_every == self.polling_every / 2
    }
    pub fn token(&self, secret: &str, i: usize) -> String {
        match self.kind(i) {
            Kind::Cashier { branch } => {
                let b = Layout::branch_id(branch);
                crate::jwt::sign(secret, &format!("lg-u{i}"), "cashier", &Layout::company_id(self.company_of(branch)), Some(&b), 86_400)
            }
            Kind::Owner { company } => {
                crate::jwt::sign(secret, &format!("lg-u{i}"), "company_owner", &Layout::company_id(company), None, 86_400)
            }
        }
    }
    /// The branch whose room client `i` leaves and joins again in the order probe: its
    /// own, or for an owner a branch of its company (it gets that branch's orders anyway).
    pub fn probe_branch(&self, i: usize) -> String {
        match self.kind(i) {
            Kind::Cashier { branch } => Layout::branch_id(branch),
            Kind::Owner { company } => Layout::branch_id(company % self.branches.max(1)),
        }
    }
    pub fn every(fraction: f64) -> usize {
        if fraction <= 0.0 { 0 } else { (1.0 / fraction.min(1.0)).round().max(1.0) as usize }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_new_order() {
        let s = r#"42/orders,["newOrder",{"id":"x","items":[{"name":"a","notes":null}],"notes":"lg3:17:123456","eventId":"9"}]"#;
        assert_eq!(new_order(s), Some((3, 17, 123456)));
        assert_eq!(new_order(r#"42/orders,["orderStatusUpdate",{"notes":"lg1:2:3"}]"#), None);
        assert_eq!(new_order(r#"42/orders,["newOrder",{"notes":null}]"#), None);
        assert_eq!(new_order("2"), None);
    }

    #[test]
    fn event_ids_and_acks() {
        assert_eq!(event_seq(r#"42/orders,["newOrder",{"notes":"lg1:2:3","eventId":"17"}]"#), Some(17));
        assert_eq!(event_seq(r#"42/orders,["newOrder",{"eventId":"1a2b3c4d-9"}]"#), Some(9));
        assert_eq!(event_seq(r#"42/orders,["newOrder",{}]"#), None);
        assert_eq!(ack_id(r#"43/orders,12[{"success":true}]"#, "/orders"), Some(12));
        assert_eq!(ack_id(r#"43/availability,1[{}]"#, "/orders"), None);
        let p = order_probe("lg-br-3");
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], r#"42/orders,1["leaveBranch",{"branchId":"lg-br-3"}]"#);
        assert_eq!(p[5], r#"42/orders,6["joinBranch",{"branchId":"lg-br-3"}]"#);
    }

    #[test]
    fn namespace_answers() {
        assert!(matches!(ns_answer(r#"40/orders,{"sid":"a"}"#), Some(NsAnswer::Accepted("/orders"))));
        match ns_answer(r#"44/orders,{"message":"TOKEN_INVALID"}"#) {
            Some(NsAnswer::Refused(ns, body)) => {
                assert_eq!(ns, "/orders");
                assert!(body.contains("TOKEN_INVALID"));
            }
            _ => panic!("not a refusal"),
        }
        assert_eq!(open_sid(r#"0{"sid":"abc","pingInterval":25000}"#).as_deref(), Some("abc"));
    }

    #[test]
    fn layout_spreads_clients() {
        let l = Layout { branches: 10, companies: 2, owner_every: 50, polling_every: 0 };
        assert_eq!(l.kind(0), Kind::Cashier { branch: 0 });
        assert_eq!(l.kind(49), Kind::Owner { company: 0 });
        assert_eq!(l.kind(99), Kind::Owner { company: 1 });
        assert_eq!(l.company_of(3), 1);
        assert_eq!(Layout::every(0.02), 50);
    }
}
