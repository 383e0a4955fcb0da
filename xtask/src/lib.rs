//! What the `xtask` binary shares with the workspace's tests: the throwaway PostgreSQL cluster
//! (a test that must restart its database gets a cluster of its own from here), and how Chromium
//! is started over chromedriver (the backend's browser tests and `bench`'s page scenario).

// A developer tool: a failed step ends the run with its message, which is what a panic does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod chromium;
pub mod interrupt;
pub mod pg;
