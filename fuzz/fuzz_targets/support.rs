//! What the fuzz targets share; each includes it with `mod support;`.

/// A current-thread runtime with I/O and timers, for a target's fixture.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
