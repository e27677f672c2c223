//! Where `roster serve`'s log lines go: gathered in memory and written out in batches by a
//! thread of their own, at the latest [`EVERY`] after they were logged. While no line waits
//! the thread sleeps: an idle server makes no system calls for its log.
//!
//! tracing-appender's non-blocking writer, used before, queued each line on a channel and
//! woke its writer thread for it: a futex wake, the thread's spinning (`sched_yield`) and
//! a `write` per request, nearly a tenth of a one-row read's CPU when callers rotate over
//! many users. Here a line costs a mutex and a copy.
//!
//! Nothing is dropped: when [`MOST`] bytes wait, the request that logs waits for the writer
//! to take them. Dropping the [`Flush`] guard writes out what is left.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// The longest a logged line waits before it is written.
pub const EVERY: Duration = Duration::from_millis(100);

/// Waiting bytes that wake the writer before [`EVERY`] is up.
const SOON: usize = 64 * 1024;

/// Waiting bytes past which logging waits for the writer.
const MOST: usize = 8 << 20;

/// The log's side of the output: what tracing-subscriber writes each line to.
#[derive(Clone)]
pub struct Batched(Arc<Shared>);

/// Held while the process logs; dropping it writes out the lines still waiting.
pub struct Flush {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

struct Shared {
    waiting: Mutex<Waiting>,
    /// Told when the first line of a batch comes, when there is enough to write, or when
    /// the process stops.
    wake: Condvar,
    /// Told when the writer has taken what was waiting.
    taken: Condvar,
    most: usize,
}

#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    woken: bool,
    stopping: bool,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        // A line half-copied by a panicking thread is still bytes to write.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Log lines to `out` (stdout in `roster serve`) through a writer thread.
pub fn batched(out: impl Write + Send + 'static) -> (Batched, Flush) {
    with_limit(out, MOST)
}

fn with_limit(mut out: impl Write + Send + 'static, most: usize) -> (Batched, Flush) {
    let shared = Arc::new(Shared {
        waiting: Mutex::default(),
        wake: Condvar::new(),
        taken: Condvar::new(),
        most,
    });
    let theirs = shared.clone();
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut batch = Vec::new();
            loop {
                // Asleep while there is nothing to write, then gathering for EVERY.
                let waiting = theirs
                    .wake
                    .wait_while(theirs.waiting(), |w| w.bytes.is_empty() && !w.stopping)
                    .unwrap_or_else(PoisonError::into_inner);
                let (mut waiting, _) = theirs
                    .wake
                    .wait_timeout_while(waiting, EVERY, |w| !w.woken && !w.stopping)
                    .unwrap_or_else(PoisonError::into_inner);
                std::mem::swap(&mut waiting.bytes, &mut batch);
                waiting.woken = false;
                let stopping = waiting.stopping;
                drop(waiting);
                theirs.taken.notify_all();
                // Nowhere to report a failed write of the log but the log.
                let _ = out.write_all(&batch).and_then(|()| out.flush());
                batch.clear();
                if stopping {
                    return;
                }
            }
        })
        .expect("a thread starts");
    (
        Batched(shared.clone()),
        Flush {
            shared,
            writer: Some(writer),
        },
    )
}

impl Write for &Batched {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.0;
        let mut waiting = shared.waiting();
        while waiting.bytes.len() >= shared.most && !waiting.stopping {
            waiting = shared
                .taken
                .wait(waiting)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let first = waiting.bytes.is_empty();
        waiting.bytes.extend_from_slice(line);
        if first {
            // The writer sleeps while nothing waits: this starts its gathering.
            shared.wake.notify_one();
        } else if waiting.bytes.len() >= SOON.min(shared.most) && !waiting.woken {
            waiting.woken = true;
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = &'a Batched;

    fn make_writer(&'a self) -> &'a Batched {
        self
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.shared.waiting().stopping = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl Write for Out {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Out {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn a_line_is_written_without_waiting_for_more() {
        let out = Out::default();
        let (log, _flush) = batched(out.clone());
        (&log).write_all(b"one\n").unwrap();
        let logged = Instant::now();
        while out.text().is_empty() {
            assert!(logged.elapsed() < EVERY * 50, "never written");
            std::thread::sleep(EVERY / 10);
        }
        assert_eq!(out.text(), "one\n");
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let out = Out::default();
        // A limit of a few lines: most of them wait for the writer to take the others.
        let (log, flush) = with_limit(out.clone(), 64);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        (&log).write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(flush);
        let text = out.text();
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2_000).collect::<Vec<_>>(), "thread {t}");
        }
        assert_eq!(text.lines().count(), 8_000);
    }
}
