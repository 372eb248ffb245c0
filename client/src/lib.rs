//! `client` — the Rust client for Porpoise and DolphinDB servers: the DolphinDB wire protocol
//! (connect, login, script, function, upload), high-availability site switching on
//! `<NotLeader>`-style replies, and the `porpoise shell`.
//!
//! The protocol arrives with the client-protocol issue. What lives here now is the piece every
//! client needs first and that the server shares: parsing a `host:port` site list the way the
//! official clients accept it (`highAvailabilitySites`).

pub mod sites;
