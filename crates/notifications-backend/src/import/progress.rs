//! How far an import is: a progress bar with counts and rate on a terminal, a log line every few
//! seconds otherwise (a pipe, a log collector).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// At most one log line per table this often.
const LOG_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    table: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_log: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `terminal`: draw a bar on stderr rather than log.
    pub fn start(table: &'static str, total: u64, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix:>21} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, {eta} left",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(table);
            bar
        });
        let now = Instant::now();
        Self {
            table,
            total,
            done: 0,
            started: now,
            last_log: now,
            bar,
        }
    }

    pub fn advance(&mut self, rows: u64) {
        self.done += rows;
        match &self.bar {
            Some(bar) => bar.inc(rows),
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                self.log("importing");
            }
            None => {}
        }
    }

    pub fn finish(self) {
        match &self.bar {
            Some(bar) => bar.finish(),
            None => self.log("done"),
        }
    }

    fn log(&self, what: &str) {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        tracing::info!(
            table = self.table,
            "{what}: {}/{} rows read ({:.0} rows/s)",
            self.done,
            self.total,
            self.done as f64 / seconds
        );
    }
}
