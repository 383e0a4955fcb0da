//! What the `xtask` binary shares with the workspace's tests: the throwaway PostgreSQL cluster
//! (a test that must restart its database gets a cluster of its own from here).

pub mod interrupt;
pub mod pg;
