//! Rate limits for keygate.
//!
//! Per-key and per-tenant limits (requests per second with a burst), checked after
//! authentication; the tighter one wins and answers how long to wait. Two backends share
//! one trait: in-process (the `governor` crate, memory bounded for many keys) and Redis
//! (one atomic GCRA script per check, so several servers share one budget).
