//! The notifications backend: configuration, authentication, HTTP API, services and storage.

pub mod auth;
pub mod catalog;
pub mod cleaner;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
mod private_files;
pub mod processors;
pub mod published_signal;
pub mod server;
pub mod service;
pub mod signals;
pub mod store;

pub use server::{BackendBuilder, RunningBackend, StartError};
