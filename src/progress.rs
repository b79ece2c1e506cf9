//! Progress of long work: a bar with rate and ETA on a terminal, plain
//! periodic log lines otherwise (the project convention: bars for people, lines for logs).
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// A bar over `total` steps starting at `pos` (none when quiet or not a terminal).
    pub fn new(total: u64, pos: u64, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps | {per_sec} | ETA {eta} | {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_position(pos);
            b
        });
        Progress { bar, quiet }
    }

    pub fn set(&self, pos: u64, loss: f64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
            b.set_message(format!("loss {loss:.4}"));
        }
    }

    /// A log line (above the bar on a terminal).
    pub fn log(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(b) => b.println(line),
            None => crate::say!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
