//! `cargo xtask fuzz`: the cargo-fuzz targets in `fuzz/`, each run for a bounded time from its
//! committed corpus. libFuzzer needs nightly; cargo-fuzz is installed from crates.io when absent.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use crate::child;
use crate::commands::workspace_root;

const DEFAULT_SECONDS: u64 = 30;
/// Pinned, so that CI installs what was tried here.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// One input taking longer than this is a hang, reported as a failure.
const INPUT_TIMEOUT_SECONDS: u64 = 10;

pub fn fuzz(args: &[OsString]) -> ExitCode {
    let (seconds, mut targets) = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("xtask fuzz: {message}\nusage: cargo xtask fuzz [--seconds N] [target...]");
            return ExitCode::FAILURE;
        }
    };
    let fuzz_dir = workspace_root().join("fuzz");
    if targets.is_empty() {
        targets = match all_targets(&fuzz_dir) {
            Ok(all) => all,
            Err(e) => {
                eprintln!("xtask fuzz: cannot list {}: {e}", fuzz_dir.display());
                return ExitCode::FAILURE;
            }
        };
    }
    // Skipping would hide that nothing was fuzzed: a machine without nightly fails here.
    if !succeeds(nightly_cargo(&fuzz_dir).arg("--version")) {
        eprintln!(
            "xtask fuzz: error: the nightly toolchain is missing (cargo-fuzz needs it): \
             install it with `rustup toolchain install nightly`"
        );
        return ExitCode::FAILURE;
    }
    if !succeeds(nightly_cargo(&fuzz_dir).args(["fuzz", "--version"])) {
        eprintln!("xtask fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
        let code = child::run(Command::new("cargo").args([
            "install",
            "--locked",
            &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
        ]));
        if code != ExitCode::SUCCESS {
            return code;
        }
    }

    let started = Instant::now();
    let code = child::run(nightly_cargo(&fuzz_dir).args(["fuzz", "build"]));
    if code != ExitCode::SUCCESS {
        return code;
    }
    eprintln!("xtask fuzz: built in {:.0?}", started.elapsed());
    for target in &targets {
        // New inputs go to a scratch corpus under the fuzz crate's target directory; the
        // committed one is only read.
        let scratch = fuzz_dir.join("target").join("corpus").join(target);
        if let Err(e) = std::fs::create_dir_all(&scratch) {
            eprintln!("xtask fuzz: cannot create {}: {e}", scratch.display());
            return ExitCode::FAILURE;
        }
        eprintln!("xtask fuzz: {target} for {seconds} s");
        let code = child::run(
            nightly_cargo(&fuzz_dir)
                .args(["fuzz", "run", target])
                .arg(&scratch)
                .arg(fuzz_dir.join("corpus").join(target))
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
                .arg("-print_final_stats=1"),
        );
        if code != ExitCode::SUCCESS {
            eprintln!(
                "xtask fuzz: {target} failed; the input is under fuzz/artifacts/{target}/: \
                 fix the bug, add a regression test and copy the input into fuzz/corpus/{target}/"
            );
            return code;
        }
    }
    eprintln!(
        "xtask fuzz: {} targets, {seconds} s each, no failure ({:.0?} in all)",
        targets.len(),
        started.elapsed()
    );
    ExitCode::SUCCESS
}

/// `cargo +nightly` in the fuzz crate, without what the `cargo run` behind `cargo xtask` sets
/// for its child (which would pin the stable toolchain).
fn nightly_cargo(fuzz_dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .current_dir(fuzz_dir)
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC");
    cmd
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn parse_args(args: &[OsString]) -> Result<(u64, Vec<String>), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            let value = args.next().ok_or("--seconds needs a value")?;
            seconds = value
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("--seconds {value:?}: expected a positive number"))?;
        } else if arg.starts_with('-') {
            return Err(format!("unknown option {arg}"));
        } else {
            targets.push(arg);
        }
    }
    Ok((seconds, targets))
}

/// Every `fuzz/fuzz_targets/<name>.rs`, sorted.
fn all_targets(fuzz_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(fuzz_dir.join("fuzz_targets"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            names.extend(path.file_stem().map(|s| s.to_string_lossy().into_owned()));
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<(u64, Vec<String>), String> {
        parse_args(&list.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn seconds_and_targets() {
        assert_eq!(parse(&[]), Ok((DEFAULT_SECONDS, vec![])));
        assert_eq!(
            parse(&["--seconds", "5", "jwt"]),
            Ok((5, vec!["jwt".to_owned()]))
        );
        assert!(parse(&["--seconds", "0"]).is_err());
        assert!(parse(&["--seconds"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn every_target_is_found() {
        let targets = all_targets(&workspace_root().join("fuzz")).unwrap();
        assert!(targets.contains(&"jwt".to_owned()), "{targets:?}");
    }
}
