//! Surviving Ctrl-C long enough to clean up.
//!
//! A terminal's Ctrl-C sends SIGINT to the whole foreground process group:
//! the command xtask runs (e.g. `cargo test`) gets it and stops, and xtask
//! must then still stop the PostgreSQL cluster and delete its directory. So
//! instead of dying, xtask records the signal; the steps that would otherwise
//! keep going (starting the cluster) check `requested()` and give up.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Replaces the default "terminate" action for SIGINT (and, with ctrlc's
/// `termination` feature, SIGTERM and SIGHUP) with recording the request.
pub fn install() -> Result<(), String> {
    ctrlc::set_handler(|| {
        if !REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("xtask: interrupted; cleaning up before exiting");
        }
    })
    .map_err(|e| format!("could not install the Ctrl-C handler: {e}"))
}

/// Whether an interrupt arrived since `install`.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// For early returns between steps: `interrupt::check()?`.
pub fn check() -> Result<(), String> {
    if requested() {
        Err("interrupted".to_owned())
    } else {
        Ok(())
    }
}
