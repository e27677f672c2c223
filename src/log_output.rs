//! Where `roster serve`'s log lines go: gathered in memory and written out in batches by a
//! thread of their own, at the latest [`EVERY`] after they were logged. While no line waits
//! the thread sleeps: an idle server makes no system calls for its log.
//!
//! tracing-appender's non-blocking writer, used before, queued each line on a channel and
//! woke its writer thread for it: a futex wake, the thread's spinning (`sched_yield`) and
//! a `write` per request, which showed in a one-row read's CPU when callers rotate over
//! many users (bench/README.md, "Figures behind the code"). Here a line costs a mutex and
//! a copy.
//!
//! Nothing is dropped: when [`MOST`] bytes wait, the request that logs waits for the writer
//! to take them. Dropping the [`Flush`] guard writes out what is left.
//!
//! [`PlainFields`] writes a text line's fields as tracing-subscriber's default does, but
//! writes a plain string (printable ASCII, nothing to escape) as it is: the default quotes
//! every string through `Debug`, which looks each character up in Unicode's tables
//! (measured with `bench/instructions` on `GET /memberships/{id}`; figures in
//! bench/README.md, "Figures behind the code").

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::FormatFields as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::time::FormatTime;

use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

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

/// The fields of a text log line, as tracing-subscriber's `DefaultFields` writes them (see
/// the module doc).
pub struct PlainFields;

impl<'a> MakeVisitor<Writer<'a>> for PlainFields {
    type Visitor = PlainVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> PlainVisitor<'a> {
        PlainVisitor {
            writer,
            empty: true,
            result: Ok(()),
        }
    }
}

pub struct PlainVisitor<'a> {
    writer: Writer<'a>,
    /// Whether no field was written yet (the next one then needs no space before it).
    empty: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    /// Records the field as the default does, then notes it was written (unless the
    /// default skips it: `log.` fields are the line's metadata, with tracing-subscriber's
    /// `tracing-log` feature, one of its defaults).
    fn by_default(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut default = DefaultVisitor::new(self.writer.by_ref(), self.empty);
        record(&mut default);
        self.result = default.finish();
        self.empty &= field.name().starts_with("log.");
    }
}

impl PlainVisitor<'_> {
    /// A number as the default writes it (`name=digits`, Debug of an integer being its
    /// digits), without going through `Debug` and `fmt::write`.
    fn record_number(
        &mut self,
        field: &Field,
        digits: &str,
        record: impl FnOnce(&mut DefaultVisitor<'_>),
    ) {
        let name = field.name();
        if self.result.is_err()
            || name == "message"
            || name.starts_with("r#")
            || name.starts_with("log.")
        {
            return self.by_default(field, record);
        }
        self.write_field(&[name, "=", digits]);
    }

    /// A field's parts, after a space unless it is the line's first.
    fn write_field(&mut self, parts: &[&str]) {
        let space = if std::mem::take(&mut self.empty) {
            ""
        } else {
            " "
        };
        self.result = std::iter::once(&space)
            .chain(parts)
            .try_for_each(|part| std::fmt::Write::write_str(&mut self.writer, part));
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        let plain = |c: u8| (b' '..=b'~').contains(&c) && c != b'"' && c != b'\\';
        if self.result.is_err()
            || name == "message"
            || name.starts_with("r#")
            || name.starts_with("log.")
            || !value.bytes().all(plain)
        {
            return self.by_default(field, |d| d.record_str(field, value));
        }
        self.write_field(&[name, "=\"", value, "\""]);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_number(field, itoa::Buffer::new().format(value), |d| {
            d.record_u64(field, value)
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_number(field, itoa::Buffer::new().format(value), |d| {
            d.record_i64(field, value)
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.by_default(field, |d| d.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.by_default(field, |d| d.record_debug(field, value));
    }
}

impl VisitOutput<std::fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.result
    }
}

impl VisitFmt for PlainVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        &mut self.writer
    }
}

/// A text line as tracing-subscriber's `Full` format writes it without colour (time,
/// level, target, fields), written straight out: the general format's walk through its
/// options and `write!`s was a tenth of a line's cost (`bench/instructions`; bench/README.md,
/// "Figures behind the code"). Lines in a span, in colour or from the `log` crate are left
/// to it.
pub struct PlainLine<T = UtcMicros> {
    timer: T,
    full: tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, T>,
}

impl<T: FormatTime + Clone> PlainLine<T> {
    pub fn new(timer: T) -> Self {
        PlainLine {
            full: tracing_subscriber::fmt::format::Format::default().with_timer(timer.clone()),
            timer,
        }
    }
}

impl<S, N, T> tracing_subscriber::fmt::FormatEvent<S, N> for PlainLine<T>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        if writer.has_ansi_escapes() || meta.target() == "log" || ctx.event_scope().is_some() {
            return self.full.format_event(ctx, writer, event);
        }
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        let level = match *meta.level() {
            tracing::Level::TRACE => " TRACE ",
            tracing::Level::DEBUG => " DEBUG ",
            tracing::Level::INFO => "  INFO ",
            tracing::Level::WARN => "  WARN ",
            tracing::Level::ERROR => " ERROR ",
        };
        writer.write_str(level)?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// Each line's time as tracing-subscriber's `SystemTime` writes it (RFC 3339 in UTC, to
/// the microsecond), with the date and time up to the second formatted once a second per
/// thread: formatting the whole of it each time was a fortieth of a one-row read
/// (`bench/instructions`; bench/README.md, "Figures behind the code").
#[derive(Clone, Copy)]
pub struct UtcMicros;

thread_local! {
    /// The second last formatted on this thread and its text up to the decimal point.
    static SECOND: std::cell::Cell<(i64, [u8; 20])> = const { std::cell::Cell::new((i64::MIN, [0; 20])) };
}

impl UtcMicros {
    fn write(at: std::time::SystemTime, w: &mut impl std::fmt::Write) -> std::fmt::Result {
        let up_to_second = |date: time::OffsetDateTime| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                date.year(),
                u8::from(date.month()),
                date.day(),
                date.hour(),
                date.minute(),
                date.second()
            )
        };
        let Ok(since) = at.duration_since(std::time::UNIX_EPOCH) else {
            // Before 1970: a clock this wrong is written without the kept second.
            let date = time::OffsetDateTime::from(at);
            return write!(w, "{}{:06}Z", up_to_second(date), date.microsecond());
        };
        let (second, micros) = (since.as_secs() as i64, since.subsec_micros());
        let (kept, mut prefix) = SECOND.get();
        if kept != second {
            let text = up_to_second(time::OffsetDateTime::from(at));
            if text.len() != prefix.len() {
                // Past year 9999: not kept.
                return write!(w, "{text}{micros:06}Z");
            }
            prefix.copy_from_slice(text.as_bytes());
            SECOND.set((second, prefix));
        }
        let mut digits = [b'0'; 7];
        let mut rest = micros;
        for slot in digits[..6].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        digits[6] = b'Z';
        w.write_str(std::str::from_utf8(&prefix).expect("formatted as ASCII"))?;
        w.write_str(std::str::from_utf8(&digits).expect("digits are ASCII"))
    }
}

impl tracing_subscriber::fmt::time::FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        UtcMicros::write(std::time::SystemTime::now(), w)
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

    /// A time that is the same in every line.
    #[derive(Clone, Copy)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
            w.write_str("2026-12-07T22:00:00.000001Z")
        }
    }

    /// Lines written by tracing-subscriber's own format and by [`PlainLine`], with the
    /// fields of each as [`PlainFields`] writes them.
    #[test]
    fn plain_lines_are_the_full_formats_lines() {
        let lines = |plain: bool| {
            let out = Out::default();
            let writer = out.clone();
            let builder = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .with_timer(Fixed)
                .fmt_fields(PlainFields)
                .with_writer(move || writer.clone());
            let log = || {
                tracing::trace!(n = 1u64, "trace");
                tracing::debug!(target: "elsewhere", "debug");
                tracing::info!(method = %"GET", path = "/a", status = 200u16, "request");
                tracing::warn!(caller = "user x", "warn");
                tracing::error!(detail = %"disk \"on\" fire", "error");
                tracing::info!("");
                let span = tracing::info_span!("outer", id = 7u64);
                span.in_scope(|| tracing::info!(inside = true, "in a span"));
            };
            if plain {
                tracing::subscriber::with_default(
                    builder.event_format(PlainLine::new(Fixed)).finish(),
                    log,
                );
            } else {
                tracing::subscriber::with_default(builder.finish(), log);
            }
            out.text()
        };
        let (full, plain) = (lines(false), lines(true));
        assert_eq!(plain, full);
        assert_eq!(full.lines().count(), 7, "{full}");
        assert!(full.contains("outer{id=7}: "), "{full}");
    }

    /// The lines `log` writes with the default fields and with [`PlainFields`].
    fn both_ways(log: impl Fn()) -> (String, String) {
        let line = |plain: bool| {
            let out = Out::default();
            let writer = out.clone();
            let builder = tracing_subscriber::fmt()
                .with_ansi(false)
                .without_time()
                .with_writer(move || writer.clone());
            if plain {
                tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), &log);
            } else {
                tracing::subscriber::with_default(builder.finish(), &log);
            }
            out.text()
        };
        (line(false), line(true))
    }

    #[test]
    fn times_are_written_as_rfc_3339_to_the_microsecond_across_seconds() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        let start = std::time::UNIX_EPOCH + Duration::new(1_796_680_799, 999_998_000);
        // Within one second (kept), across it, a jump back, a day and a year later.
        for step in [0, 1, 2, 3, 1_000_001, 86_400_000_000, 31_622_400_000_000, 0] {
            let at = start + Duration::from_micros(step);
            let mut written = String::new();
            UtcMicros::write(at, &mut written).unwrap();
            let expected = time::OffsetDateTime::from(at).format(&format).unwrap();
            assert_eq!(written, expected);
        }
        // A clock before 1970 is written the same way.
        let before = std::time::UNIX_EPOCH - Duration::from_micros(1_500_001);
        let mut written = String::new();
        UtcMicros::write(before, &mut written).unwrap();
        assert_eq!(written, "1969-12-31T23:59:58.499999Z");
    }

    #[test]
    fn plain_fields_write_what_the_default_writes() {
        let error = io::Error::other("disk \"on\" fire");
        for text in [
            "/client/v4/memberships/a3",
            "",
            "user ad00",
            "with \"quotes\" and \\ a backslash",
            "a\nnew line, a\ttab and an \u{1b}[31mescape",
            "accents é, ß and a combining \u{301} mark",
            "~ and \u{7f}",
        ] {
            let (default, plain) = both_ways(|| {
                tracing::info!(
                    method = %"GET",
                    path = text,
                    r#type = text,
                    status = 200u16,
                    code = Some(10_000u32),
                    latency_us = 31u64,
                    offset = -5i64,
                    big = u64::MAX,
                    flag = true,
                    error = &error as &(dyn std::error::Error + 'static),
                    "request {text}"
                )
            });
            assert_eq!(plain, default, "{text:?}");
            let (default, plain) = both_ways(|| tracing::warn!(caller = text, ray = text));
            assert_eq!(plain, default, "{text:?}");
        }
        let (default, plain) =
            both_ways(|| tracing::info!(message = 5u64, r#type = 6u64, n = -1i64));
        assert_eq!(plain, default);
        let (_, plain) = both_ways(|| tracing::info!(path = "/a", query = "", "request"));
        assert!(
            plain.ends_with("request path=\"/a\" query=\"\"\n"),
            "{plain}"
        );
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
