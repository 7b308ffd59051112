//! A one-line progress bar on stderr (bytes, rate, ETA), drawn only when stderr is a terminal
//! and at most five times a second.

use std::io::Write;
use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    total: Option<u64>,
    done: u64,
    start: Instant,
    last_draw: Option<Instant>,
}

impl Progress {
    pub fn new() -> Self {
        // SAFETY: isatty only inspects the descriptor.
        let enabled = unsafe { libc::isatty(2) } == 1;
        Progress { enabled, total: None, done: 0, start: Instant::now(), last_draw: None }
    }

    /// Sets (or grows) the number of bytes expected.
    pub fn expect(&mut self, bytes: u64) {
        self.total = Some(self.total.unwrap_or(0) + bytes);
    }

    pub fn add(&mut self, bytes: u64) {
        self.done += bytes;
        if self.enabled && self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
            self.draw();
        }
    }

    pub fn bytes(&self) -> u64 {
        self.done
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }

    fn draw(&mut self) {
        self.last_draw = Some(Instant::now());
        let line = render(self.done, self.total, self.start.elapsed());
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
    }
}

/// The bar's text: percentage, MiB done of total, rate and ETA (or MiB and rate without a total).
pub fn render(done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = done as f64 / secs;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    match total {
        Some(total) if total > 0 => {
            let eta = total.saturating_sub(done) as f64 / rate.max(1.0);
            format!(
                "{:5.1}%  {:.1}/{:.1} MiB  {:.0} Mbit/s  ETA {:.0}s",
                100.0 * done as f64 / total as f64,
                mib(done),
                mib(total),
                rate * 8e-6,
                eta
            )
        }
        _ => format!("{:.1} MiB  {:.0} Mbit/s", mib(done), rate * 8e-6),
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta() {
        // 25 MiB of 100 MiB in 2 s: 12.5 MiB/s = 104.9 Mbit/s, 75 MiB left = 6 s.
        let line = render(25 << 20, Some(100 << 20), Duration::from_secs(2));
        assert_eq!(line, " 25.0%  25.0/100.0 MiB  105 Mbit/s  ETA 6s");
        assert_eq!(render(1 << 20, None, Duration::from_secs(1)), "1.0 MiB  8 Mbit/s");
        // No time elapsed and nothing done: no division by zero, no infinite ETA.
        assert!(render(0, Some(10), Duration::ZERO).contains("ETA 10s"));
    }
}
