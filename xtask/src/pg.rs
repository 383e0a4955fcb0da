//! A throwaway PostgreSQL cluster: created in a fresh temporary directory,
//! listening on a free loopback port, and stopped and deleted on drop.
//!
//! ```ignore
//! let pg = TempPostgres::start(false)?; // non-durable: for tests
//! run_something_with(pg.url());
//! drop(pg); // stops the server, deletes its files
//! ```

mod locate;
pub mod sys;

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::interrupt;

pub use locate::PgBinDir;

/// How long to wait for `pg_isready` after `pg_ctl start` has returned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of `postgres.log` shown when the server does not come up.
const LOG_TAIL_LINES: usize = 40;

/// The OS user that owns and runs the cluster when xtask runs as root:
/// `initdb` and `postgres` refuse to run as root.
const SERVER_OS_USER: &str = "postgres";

pub struct TempPostgres {
    bin: PgBinDir,
    /// Holds `data/`, `postgres.log` and the server's Unix socket.
    dir: PathBuf,
    port: u16,
    /// Set when running as root: the `runuser` that runs the PostgreSQL
    /// programs as `SERVER_OS_USER`.
    runuser: Option<PathBuf>,
    /// `pg_ctl start` was attempted, so `drop` must try to stop a server.
    launched: bool,
    /// Whether fsync and friends are on; a restart keeps the setting.
    durable: bool,
}

impl TempPostgres {
    /// Finds the PostgreSQL binaries (see `PgBinDir::locate`) and starts a
    /// cluster. `durable: false` turns off fsync and friends: much faster,
    /// and a throwaway cluster has nothing to lose in a crash. Benchmarks
    /// want `true`, to measure what production would see.
    pub fn start(durable: bool) -> Result<TempPostgres, String> {
        Self::start_with(PgBinDir::locate()?, durable)
    }

    /// Like `start`, with binaries the caller already found.
    pub fn start_with(bin: PgBinDir, durable: bool) -> Result<TempPostgres, String> {
        let runuser = if sys::is_root()? {
            Some(server_user_runner()?)
        } else {
            None
        };
        let dir = sys::create_unique_dir("notifications-xtask-pg")?;
        // From here on `drop` deletes `dir`, whichever step fails.
        let mut pg = TempPostgres {
            bin,
            dir,
            port: 0,
            runuser,
            launched: false,
            durable,
        };
        if pg.runuser.is_some() {
            let mut chown = Command::new("chown");
            chown
                .arg("-R")
                .arg(format!("{SERVER_OS_USER}:"))
                .arg(&pg.dir);
            sys::run_quiet(&mut chown, "chown")?;
        }
        interrupt::check()?;
        pg.init_db()?;
        interrupt::check()?;
        pg.port = free_port()?;
        pg.launched = true;
        pg.launch()?;
        pg.wait_until_ready()?;
        Ok(pg)
    }

    /// Superuser URL of the `postgres` database (no password: trust auth).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server runs as its own OS user (`postgres`, when xtask runs as root): files
    /// it must read are then to be given to that user.
    pub fn runs_as_other_user(&self) -> bool {
        self.runuser.is_some()
    }

    /// Where the PostgreSQL programs came from (for messages).
    pub fn bin_dir(&self) -> &Path {
        self.bin.dir()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn init_db(&self) -> Result<(), String> {
        let attempt = |locale: &str| {
            let mut cmd = self.server_command("initdb");
            cmd.arg("-D")
                .arg(self.data_dir())
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
                .arg(format!("--locale={locale}"));
            sys::run_quiet(&mut cmd, "initdb")
        };
        // C.UTF-8 is not available everywhere (e.g. older glibc, macOS);
        // plain C sorts the same for our purposes. initdb deletes a data
        // directory it created when it fails, so the retry starts clean.
        attempt("C.UTF-8").or_else(|first| {
            interrupt::check()?;
            attempt("C").map_err(|second| format!("{first}\n(then, with --locale=C) {second}"))
        })
    }

    /// `pg_ctl start`, as the cluster was first started. The caller sets `launched` first.
    fn launch(&self) -> Result<(), String> {
        let mut options = format!(
            // The socket goes in our directory: the default
            // (/var/run/postgresql) may not exist or be writable. 400
            // connections leaves room for many test pools at once.
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 \
             -c shared_buffers=128MB",
            self.port,
            sys::sh_quote(&self.dir.to_string_lossy()),
        );
        if !self.durable {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        sys::run_quiet(&mut cmd, "pg_ctl start").map_err(|e| self.with_log_tail(e))
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint, sessions
    /// cut); [`Self::start_again`] brings it back, on the same port, through crash recovery.
    pub fn crash(&self) -> Result<(), String> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-m", "immediate", "stop"]);
        sys::run_quiet(&mut cmd, "pg_ctl stop").map_err(|e| self.with_log_tail(e))
    }

    /// Starts the server again after [`Self::crash`], with the settings it was first started
    /// with, and waits until it accepts connections. Takes `&self` so that another thread can
    /// watch for the moment it does ([`Self::accepts_connections`]) while `pg_ctl` waits.
    pub fn start_again(&self) -> Result<(), String> {
        self.launch()?;
        self.wait_until_ready()
    }

    /// Restarts the server (fast shutdown: sessions are cut, as in a real restart) and waits
    /// until it accepts connections again.
    pub fn restart(&self) -> Result<(), String> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-m", "fast", "restart"]);
        sys::run_quiet(&mut cmd, "pg_ctl restart").map_err(|e| self.with_log_tail(e))?;
        self.wait_until_ready()
    }

    /// Vacuums and analyzes every database, as autovacuum does within a minute or so of a bulk
    /// load: until then the planner has no statistics of the new rows and plans every statement
    /// for a near-empty table (a page read through the wrong index, a count that visits the
    /// whole inbox), and the server's connections keep those plans. Seeded read scenarios call
    /// this, so that they measure the steady state, not the first minute after a bulk load.
    pub fn settle(&self) -> Result<(), String> {
        let mut cmd = Command::new(self.bin.tool("vacuumdb"));
        let port = self.port.to_string();
        cmd.args([
            "-q",
            "--all",
            "--analyze",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &port]);
        sys::run_quiet(&mut cmd, "vacuumdb")
    }

    /// Whether the server accepts connections now (`pg_isready`: not while it is down, starting
    /// or recovering).
    pub fn accepts_connections(&self) -> Result<bool, String> {
        Ok(Command::new(self.bin.tool("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("could not run pg_isready: {e}"))?
            .success())
    }

    fn wait_until_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.accepts_connections()? {
                return Ok(());
            }
            interrupt::check()?;
            if Instant::now() >= deadline {
                return Err(self.with_log_tail(format!(
                    "the server did not accept connections within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&self) -> Result<(), String> {
        // Immediate: nothing in a throwaway cluster is worth a clean shutdown.
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "stop"]);
        let stopped = sys::run_quiet(&mut cmd, "pg_ctl stop");
        if stopped.is_err() {
            // If pg_ctl could not do it, kill the server directly rather than
            // leave it running (its children exit when it dies).
            if let Some(pid) = postmaster_pid(&self.data_dir()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        stopped
    }

    /// A command for a PostgreSQL program that must not run as root.
    fn server_command(&self, tool: &str) -> Command {
        let program = self.bin.tool(tool);
        let mut cmd = if let Some(runuser) = &self.runuser {
            let mut cmd = Command::new(runuser);
            cmd.args(["-u", SERVER_OS_USER, "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        // The server user may not be allowed into the caller's directory,
        // and initdb complains when it cannot resolve its working directory.
        cmd.current_dir(&self.dir);
        cmd
    }

    fn with_log_tail(&self, error: String) -> String {
        match fs::read_to_string(self.log_file()) {
            Ok(log) => {
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                format!(
                    "{error}\n--- last lines of {} ---\n{}",
                    self.log_file().display(),
                    tail.join("\n")
                )
            }
            Err(_) => error,
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // No postmaster.pid: the server never came up, or already exited.
        let running = self.launched && self.data_dir().join("postmaster.pid").exists();
        if running && let Err(e) = self.stop() {
            eprintln!("xtask: warning: stopping PostgreSQL: {e}");
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!(
                "xtask: warning: could not delete {}: {e}",
                self.dir.display()
            );
        }
    }
}

/// initdb and postgres refuse to run as root, so as root they run as
/// `SERVER_OS_USER` through util-linux's `runuser` (no password, no tty).
fn server_user_runner() -> Result<PathBuf, String> {
    if !sys::user_exists(SERVER_OS_USER) {
        return Err(format!(
            "running as root, and initdb/postgres refuse to run as root, but there is no \
             `{SERVER_OS_USER}` OS user to run them as: create one \
             (`useradd --system {SERVER_OS_USER}`) or run as another user"
        ));
    }
    // root's PATH does not always include the sbin directories.
    sys::find_program("runuser", &["/usr/sbin", "/sbin"]).ok_or_else(|| {
        format!(
            "running as root needs `runuser` (util-linux) to run initdb/postgres as \
             `{SERVER_OS_USER}`; install it or run as another user"
        )
    })
}

/// A loopback port nobody listens on right now. Another process could take
/// it before the server binds it; for a local test run that race is rare
/// enough that a failed start with a clear log is the better trade-off.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("could not find a free port on 127.0.0.1: {e}"))
}

/// The server's pid: the first line of `postmaster.pid`, while it runs.
fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}
