//! Which printers a new order prints on (SPEC §3): one kitchen ticket per station to every
//! kitchen printer serving it, and one receipt to the branch's receipt printer. A kitchen
//! printer with no stations is a catch-all: it gets one ticket with every item (the usual
//! single-printer kitchen). Pure.

use crate::orders::Order;

use super::printer::Printer;

#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// (printer id, station) — `None`: a catch-all ticket with every item.
    pub kitchen: Vec<(String, Option<String>)>,
    pub receipt: Option<String>,
    /// Stations of the order that no kitchen printer serves; `None`: its items without a
    /// station, when the branch has station printers but no catch-all kitchen printer.
    pub unserved: Vec<Option<String>>,
}

/// `printers` are the branch's printers in creation order.
pub fn plan(order: &Order, printers: &[Printer]) -> Plan {
    let mut stations: Vec<Option<String>> = Vec::new();
    for item in &order.items {
        if !stations.contains(&item.station) {
            stations.push(item.station.clone());
        }
    }
    let kitchens: Vec<&Printer> = printers.iter().filter(|p| p.role == "kitchen").collect();
    let catch_all: Vec<&&Printer> = kitchens.iter().filter(|p| p.stations.is_empty()).collect();
    let mut out = Plan { receipt: printers.iter().find(|p| p.role == "receipt").map(|p| p.id.clone()), ..Plan::default() };
    for p in &catch_all {
        out.kitchen.push((p.id.clone(), None));
    }
    for station in stations {
        let Some(station) = station else {
            // Only a catch-all ticket lists items without a station; a kitchen that prints by
            // station must hear about them rather than never see them.
            if catch_all.is_empty() && !kitchens.is_empty() {
                out.unserved.push(None);
            }
            continue;
        };
        let serving: Vec<&&Printer> = kitchens.iter().filter(|p| p.stations.contains(&station)).collect();
        if serving.is_empty() && catch_all.is_empty() {
            out.unserved.push(Some(station.clone()));
        }
        for p in serving {
            out.kitchen.push((p.id.clone(), Some(station.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::printer::Connection;
    use crate::orders::{Item, Status};

    fn printer(id: &str, role: &str, stations: &[&str]) -> Printer {
        Printer {
            id: id.into(),
            name: id.into(),
            branch_id: "b".into(),
            company_id: "c".into(),
            role: role.into(),
            stations: stations.iter().map(|s| s.to_string()).collect(),
            paper_width: 80,
            connection: Connection::Virtual,
            profile: None,
            status: "online".into(),
            checked_at: String::new(),
            created_at: String::new(),
            device_id: None,
            local_id: None,
            answers_status: false,
            fallback_printer_id: None,
            fallback_after_seconds: 60,
        }
    }

    fn order(stations: &[Option<&str>]) -> Order {
        Order {
            id: "o".into(),
            number: 1,
            company_id: "c".into(),
            branch_id: "b".into(),
            order_type: "dine_in".into(),
            status: Status::Pending,
            items: stations
                .iter()
                .map(|s| Item { name: "x".into(), quantity: 1, unit_price: 1, station: s.map(Into::into), notes: None })
                .collect(),
            subtotal: 0,
            total: 0,
            customer: None,
            notes: None,
            driver: None,
            cancel_reason: None,
            created_at: String::new(),
            updated_at: String::new(),
            printing: None,
        }
    }

    #[test]
    fn one_ticket_per_station_and_one_receipt() {
        let ps = [printer("grill", "kitchen", &["grill"]), printer("bar", "kitchen", &["bar"]), printer("front", "receipt", &[])];
        let p = plan(&order(&[Some("grill"), Some("bar"), Some("grill"), Some("dessert")]), &ps);
        assert_eq!(p.kitchen, vec![("grill".into(), Some("grill".into())), ("bar".into(), Some("bar".into()))]);
        assert_eq!(p.receipt.as_deref(), Some("front"));
        assert_eq!(p.unserved, vec![Some("dessert".to_string())]);
    }

    #[test]
    fn items_without_a_station_are_never_dropped_silently() {
        // Station printers only: the station-less item prints nowhere, so staff are told.
        let ps = [printer("grill", "kitchen", &["grill"]), printer("front", "receipt", &[])];
        let p = plan(&order(&[Some("grill"), None]), &ps);
        assert_eq!(p.kitchen, vec![("grill".into(), Some("grill".into()))]);
        assert_eq!(p.unserved, vec![None]);
        // No kitchen printing at all (receipt only): nothing to warn about.
        assert!(plan(&order(&[None]), &[printer("front", "receipt", &[])]).unserved.is_empty());
    }

    #[test]
    fn catch_all_kitchen_printer_serves_everything() {
        let ps = [printer("all", "kitchen", &[])];
        let p = plan(&order(&[None, Some("grill")]), &ps);
        assert_eq!(p.kitchen, vec![("all".into(), None)]);
        assert!(p.unserved.is_empty());
        assert_eq!(p.receipt, None);
    }
}
