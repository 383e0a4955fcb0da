//! The backend under test: the release binary, run as a separate process
//! with a generated configuration, and always stopped again.

use std::env;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::report::{parse_vm_hwm_kb, parse_vm_rss_kb};
use crate::interrupt;

/// How long the server may take to answer readiness (it migrates first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a SIGTERM'd server may take to finish before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Lines of the server's log shown when something goes wrong.
const LOG_TAIL_LINES: usize = 30;

pub struct Backend {
    child: Child,
    log: PathBuf,
    /// Set once the child has been waited for: its pid may then be reused,
    /// so no more signals.
    reaped: bool,
}

impl Backend {
    /// Starts `binary --config <each> --data-dir <data_dir> serve`, with its
    /// output in `log`.
    pub fn spawn(
        binary: &Path,
        configs: &[PathBuf],
        data_dir: &Path,
        log: PathBuf,
    ) -> Result<Backend, String> {
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = command(binary, configs, data_dir);
        cmd.arg("serve")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: a Ctrl-C in the terminal reaches xtask
            // only, which then stops the server itself, before the database.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", binary.display()))?;
        Ok(Backend {
            child,
            log,
            reaped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `ready_url` until it answers 200, the server exits, or the
    /// timeout passes.
    pub fn wait_until_ready(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &reqwest::Client,
        ready_url: &str,
    ) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait()? {
                return Err(
                    self.with_log_tail(format!("the server exited during start-up ({status})"))
                );
            }
            let answer = rt.block_on(async {
                client
                    .get(ready_url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            });
            if let Ok(200) = answer {
                return Ok(());
            }
            interrupt::check()?;
            if Instant::now() >= deadline {
                return Err(self.with_log_tail(format!(
                    "{ready_url} did not answer 200 within {} s (last: {answer:?})",
                    READY_TIMEOUT.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's peak resident memory so far, in kB (Linux only).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        parse_vm_hwm_kb(&self.proc_status()?)
    }

    /// The server's resident memory now, in kB (Linux only).
    pub fn rss_kb(&self) -> Option<u64> {
        parse_vm_rss_kb(&self.proc_status()?)
    }

    fn proc_status(&self) -> Option<String> {
        if self.reaped {
            return None;
        }
        fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()
    }

    /// Stops the server as an operator would (SIGTERM, a graceful shutdown),
    /// killing it if it takes longer than `STOP_TIMEOUT`. An error says the
    /// server did not end cleanly.
    pub fn stop(&mut self) -> Result<(), String> {
        if self.reaped {
            return Ok(());
        }
        if let Some(status) = self.try_wait()? {
            return Err(self.with_log_tail(format!("the server had already exited ({status})")));
        }
        // std can only SIGKILL; `kill` sends the SIGTERM the server handles.
        // The child is not reaped yet, so its pid cannot have been reused.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stdin(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(self.with_log_tail(format!("the server exited with {status}")))
                };
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(self.with_log_tail(format!(
            "the server did not stop within {} s of SIGTERM and was killed",
            STOP_TIMEOUT.as_secs()
        )))
    }

    fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>, String> {
        let status = self
            .child
            .try_wait()
            .map_err(|e| format!("could not check on the server: {e}"))?;
        if status.is_some() {
            self.reaped = true;
        }
        Ok(status)
    }

    pub fn with_log_tail(&self, error: String) -> String {
        match fs::read_to_string(&self.log) {
            Ok(log) => {
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                format!(
                    "{error}\n--- last lines of the server's log ---\n{}",
                    tail.join("\n")
                )
            }
            Err(_) => error,
        }
    }
}

impl Drop for Backend {
    /// On every early return (errors, Ctrl-C) the server still goes: no
    /// orphans left holding a port or a database.
    fn drop(&mut self) {
        if !self.reaped
            && let Err(e) = self.stop()
        {
            eprintln!("xtask: warning: stopping the backend: {e}");
        }
    }
}

/// `binary --config <each> --data-dir <data_dir>`, ready for its command
/// (`serve`, `token`, …), without the variables that would change its
/// configuration behind the bench's back.
pub fn command(binary: &Path, configs: &[PathBuf], data_dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for config in configs {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("NOTIFICATIONS_DATA_DIR");
    // `APP_CONFIG_*` variables would override the generated configuration.
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("APP_CONFIG_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A loopback port nobody listens on right now (see `pg::free_port` for the
/// small race this accepts).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("could not find a free port on 127.0.0.1: {e}"))
}
