//! Integration tests of the keygate server: `oneshot` on `App::router()` over a
//! `MemoryStore` and the in-process demo platform (or a loopback upstream), and
//! `App::serve` on loopback sockets.

mod admin;
mod approvals;
mod elicitation;
mod errors;
mod forward_auth;
mod leak_reports;
mod limits;
mod mcp;
mod misc;
mod mrtr;
mod origins;
mod postgres;
mod router_proptest;
mod sessions;
mod streams;
mod timing;
mod transport;
mod url_elicitation;
mod util;
