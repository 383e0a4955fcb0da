//! The notifications backend: configuration, authentication, HTTP API, services and storage.

mod auth;
mod catalog;
mod cleaner;
pub mod cli;
mod clock;
pub mod config;
mod db;
mod delivery;
mod error;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
mod html;
mod http;
mod import;
mod inbox;
mod metrics;
mod outbound_http;
mod private_files;
mod processors;
mod published_signal;
mod schedule;
mod server;
mod service;
mod signals;
mod store;

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use server::{BackendBuilder, RunningBackend, StartError};
