//! End-to-end tests: the real `keygated` and `keygate` binaries over real HTTP on
//! loopback. Each test starts its own server process (see the `keygate_e2e` harness).

mod browser;
mod cli;
mod concurrency;
mod errors;
mod examples;
mod faults;
mod forward_auth;
mod gates;
mod hygiene;
mod isolation;
mod keys;
mod leak_reports;
mod leaks;
mod mcp_conformance;
mod openapi;
mod peers;
mod policing;
mod postgres;
mod python_sdk;
mod revocation_load;
mod stdio;
mod transport;
mod wrap;
