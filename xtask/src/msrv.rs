//! `cargo xtask msrv`: the workspace's declared `rust-version` is at least every locked
//! dependency's own.
//!
//! Only one toolchain can be installed here, so CI cannot build with the declared version. What
//! it can check without one: what the lock file pins must not need a newer Rust than the
//! workspace says it builds with (the code itself is checked by clippy's `incompatible_msrv`,
//! which reads the same `rust-version`).

use std::env;
use std::fmt;
use std::process::{Command, ExitCode};

use serde::Deserialize;

use crate::commands::workspace_root;

/// A `rust-version`: `1.89` and `1.89.0` are the same; a missing patch counts as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RustVersion([u64; 3]);

impl RustVersion {
    fn parse(s: &str) -> Option<Self> {
        let mut parts = [0; 3];
        let mut fields = s.split('.');
        for part in &mut parts {
            match fields.next() {
                Some(field) => *part = field.parse().ok()?,
                None => break,
            }
        }
        // At least major.minor, and nothing after the patch.
        (s.split('.').count() >= 2 && fields.next().is_none()).then_some(Self(parts))
    }
}

impl fmt::Display for RustVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [major, minor, patch] = self.0;
        write!(f, "{major}.{minor}.{patch}")
    }
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
    version: String,
    rust_version: Option<String>,
}

pub fn msrv(args: &[std::ffi::OsString]) -> ExitCode {
    if !args.is_empty() {
        eprintln!("xtask: msrv takes no arguments");
        return ExitCode::FAILURE;
    }
    match check() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: msrv: {message}");
            ExitCode::FAILURE
        }
    }
}

fn check() -> Result<(), String> {
    let metadata = metadata()?;
    let (members, deps): (Vec<&Package>, Vec<&Package>) = metadata
        .packages
        .iter()
        .partition(|p| metadata.workspace_members.contains(&p.id));

    // Every member inherits the workspace's `rust-version`: the lowest is the one promised.
    let mut declared = None;
    for member in &members {
        let version = member
            .rust_version
            .as_deref()
            .ok_or_else(|| format!("{} declares no rust-version", member.name))?;
        let version = RustVersion::parse(version)
            .ok_or_else(|| format!("{}: rust-version {version:?} is not a version", member.name))?;
        declared = Some(declared.map_or(version, |d: RustVersion| d.min(version)));
    }
    let declared = declared.ok_or("cargo metadata lists no workspace members")?;

    let mut needed = Vec::new();
    for dep in deps {
        let Some(raw) = dep.rust_version.as_deref() else {
            continue;
        };
        let version = RustVersion::parse(raw).ok_or_else(|| {
            format!(
                "{} {}: rust-version {raw:?} is not a version",
                dep.name, dep.version
            )
        })?;
        needed.push((version, dep));
    }
    needed.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));

    let too_new: Vec<_> = needed.iter().filter(|(v, _)| *v > declared).collect();
    if too_new.is_empty() {
        let highest = needed
            .first()
            .map(|(v, p)| format!("; the highest a dependency needs is {v} ({})", p.name))
            .unwrap_or_default();
        println!("msrv: declared rust-version {declared}{highest}");
        return Ok(());
    }
    let list: Vec<String> = too_new
        .iter()
        .map(|(v, p)| format!("  {} {} needs Rust {v}", p.name, p.version))
        .collect();
    Err(format!(
        "the workspace declares rust-version {declared}, but locked dependencies need more:\n{}\n\
         Raise `rust-version` in Cargo.toml, or pin older versions (`cargo update -p <crate> \
         --precise <version>`; with resolver 3, `cargo update` prefers versions that fit).",
        list.join("\n")
    ))
}

/// `cargo metadata` for the lock file as it is, and for this machine's target only: the crates
/// of other platforms are not downloaded here, and the build never compiles them.
fn metadata() -> Result<Metadata, String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let host = host_triple()?;
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
        ])
        .arg(&host)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata's output: {e}"))
}

fn host_triple() -> Result<String, String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("could not run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers_with_a_missing_patch_as_zero() {
        let v = |s| RustVersion::parse(s).unwrap();
        assert_eq!(v("1.89"), v("1.89.0"));
        assert!(v("1.100") > v("1.99.9"));
        assert!(v("1.89.1") > v("1.89"));
        assert_eq!(v("1.89").to_string(), "1.89.0");
    }

    #[test]
    fn malformed_versions_are_refused() {
        for bad in ["", "1", "1.x", "1.89.0.1", "1.89-beta"] {
            assert_eq!(RustVersion::parse(bad), None, "{bad:?}");
        }
    }
}
