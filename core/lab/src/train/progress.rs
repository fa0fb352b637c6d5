//! Progress: a bar with img/s and ETA on a terminal, plain log lines otherwise.
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    start: Instant,
    first: u64,
}

impl Progress {
    pub fn new(start: u64, total: u64, interactive: bool, quiet: bool) -> Self {
        let bar = (interactive && !quiet).then(|| {
            let bar = ProgressBar::new(total).with_position(start);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}")
                    .expect("static template")
                    .progress_chars("█▉▊▋▌▍▎▏ "),
            );
            bar.reset_eta();
            bar
        });
        Self { bar, quiet, start: Instant::now(), first: start }
    }

    pub fn set(&self, step: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
        }
    }

    /// At logging steps: the bar's message, or one plain line with an ETA.
    pub fn message(&self, step: u64, total: u64, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            None if !self.quiet => {
                let done = (step - self.first) as f64;
                let secs = self.start.elapsed().as_secs_f64();
                let eta = if done > 0.0 { secs / done * (total - step) as f64 } else { 0.0 };
                println!("step {step}/{total}  {line}  elapsed {}  eta {}", fmt_secs(secs), fmt_secs(eta));
            }
            None => {}
        }
    }

    /// Runs `f` with the bar hidden, so other output (an evaluation's own bar) is not garbled.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

pub fn fmt_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
