//! Plain domain types more than one layer needs, beneath the store: the printer model and
//! its validation (`printer`, SPEC §3), which printers a new order prints on (`routing`),
//! and the Socket.IO namespace names (SPEC §4) that events, metrics and sync name. Pure:
//! no I/O, and nothing here imports a module above `orders` and `validate`.

pub mod printer;
pub mod routing;

/// The Socket.IO namespaces of SPEC §4, in the order `/metrics` and the dashboard list them.
pub const NAMESPACES: [&str; 3] = ["/printing-ws", "/orders", "/availability"];
