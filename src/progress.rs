//! What a long one-shot command (`roster import`) shows while it works: on a terminal, a
//! bar with rows done, rate and time left (indicatif); otherwise (a CI log, a file) a plain
//! line every few seconds, so that a million-row import is never minutes of silence.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::export::Progress;

/// How often the plain line is written when standard error is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Shows `done`'s count against `total` until [`Ticker::finish`].
pub struct Ticker {
    stop: tokio::sync::oneshot::Sender<()>,
    shown: tokio::task::JoinHandle<()>,
}

impl Ticker {
    /// `doing` names the work ("importing"), `unit` what is counted ("rows"), `then` what
    /// follows the last one (statistics).
    pub fn start(
        doing: &'static str,
        unit: &'static str,
        then: &'static str,
        total: u64,
        done: Arc<Progress>,
    ) -> Ticker {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let terminal = std::io::stderr().is_terminal();
        let shown = tokio::spawn(async move {
            let started = Instant::now();
            let bar = terminal.then(|| {
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(&format!(
                        "{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit}, {{per_sec}}, {{eta}} left"
                    ))
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_message(doing);
                bar
            });
            let tick = if terminal {
                Duration::from_millis(100)
            } else {
                PLAIN_EVERY
            };
            let mut last_plain = started;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(tick) => {}
                }
                let rows = done.rows();
                match &bar {
                    Some(bar) => {
                        bar.set_position(rows);
                        if rows >= total {
                            bar.set_message(then);
                        }
                    }
                    None if last_plain.elapsed() >= PLAIN_EVERY => {
                        last_plain = Instant::now();
                        eprintln!(
                            "{}",
                            plain_line(doing, unit, then, rows, total, started.elapsed())
                        );
                    }
                    None => {}
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        Ticker { stop, shown }
    }

    /// Stops showing and clears the bar.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.shown.await;
    }
}

/// "importing: 250,000 of 1,000,000 rows (25%), 41,000 rows/s, about 18 s left", or once
/// every one is done, what comes next.
fn plain_line(
    doing: &str,
    unit: &str,
    then: &str,
    rows: u64,
    total: u64,
    elapsed: Duration,
) -> String {
    if rows >= total {
        return format!("{doing}: {} {unit} done; {then}", grouped(total));
    }
    let rate = rows as f64 / elapsed.as_secs_f64().max(0.001);
    let left = if rate > 0.0 {
        format!("about {:.0} s left", (total - rows) as f64 / rate)
    } else {
        "time left not known yet".to_string()
    };
    format!(
        "{doing}: {} of {} {unit} ({}%), {} {unit}/s, {left}",
        grouped(rows),
        grouped(total),
        rows * 100 / total.max(1),
        grouped(rate as u64)
    )
}

/// 1234567 as "1,234,567".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_says_how_far_how_fast_and_how_long() {
        let line = |rows, total, seconds| {
            plain_line(
                "importing",
                "rows",
                "statistics",
                rows,
                total,
                Duration::from_secs(seconds),
            )
        };
        assert_eq!(
            line(250_000, 1_000_000, 5),
            "importing: 250,000 of 1,000,000 rows (25%), 50,000 rows/s, about 15 s left"
        );
        assert_eq!(
            line(0, 10, 5),
            "importing: 0 of 10 rows (0%), 0 rows/s, time left not known yet"
        );
        assert_eq!(line(10, 10, 1), "importing: 10 rows done; statistics");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
    }
}
