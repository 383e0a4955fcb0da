//! Running the user's command (e.g. `cargo test`) and passing on how it ended.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus};

/// Runs `cmd` with inherited stdio until it exits and returns the exit code
/// xtask should end with.
///
/// The child stays in xtask's process group on purpose: a Ctrl-C in the
/// terminal reaches it directly, while xtask (see `interrupt`) keeps waiting
/// here so it can clean up afterwards.
pub fn run(cmd: &mut Command) -> ExitCode {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("xtask: could not run `{program}`: {e}");
            // What a shell reports for a missing / non-executable command.
            let code = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return ExitCode::from(code);
        }
    };
    ExitCode::from(exit_code(status))
}

/// The code a shell would report for `status`: the exit code itself, or
/// 128 + the signal number when the child was killed by a signal (so a
/// Ctrl-C'd run ends with 130, as if xtask had been killed too).
fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        // Unix exit codes are 0..=255 once they reach the parent.
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    match status.signal() {
        Some(signal) => u8::try_from(128 + signal).unwrap_or(1),
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(101 << 8)), 101);
    }

    #[test]
    fn signals_map_to_128_plus_signal() {
        // A raw wait status whose low 7 bits are the terminating signal.
        assert_eq!(exit_code(ExitStatus::from_raw(2)), 130);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
