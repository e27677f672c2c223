//! The bench driver: `gen` writes a dataset for `roster import`, `run` loads a running
//! Roster and the baseline with each scenario and prints a table, `report` prints how the
//! figures of several runs grow with the dataset. `bench/run` calls all three.

mod dataset;
mod load;
mod scenarios;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

use dataset::Layout;
use load::{Settings, Target};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the dataset for `users` users as a `roster import` file.
    Gen {
        #[arg(long)]
        users: u64,
        #[arg(long)]
        out: PathBuf,
        /// The schema version the import file claims (what `roster migrate` prints).
        #[arg(long)]
        schema_version: u32,
    },
    /// Measure every scenario against Roster and the baseline; print a table and save it.
    Run(Box<RunArgs>),
    /// Print the figures of several `run --json` files side by side.
    Report { files: Vec<PathBuf> },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The dataset size the server was loaded with.
    #[arg(long)]
    users: u64,
    #[arg(long)]
    roster: SocketAddr,
    #[arg(long)]
    baseline: SocketAddr,
    /// A name for this run in the tables, e.g. the backend.
    #[arg(long, default_value = "sqlite")]
    label: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load before measuring, before every round.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured, per scenario and target, over all rounds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Roster and the baseline take turns this many times per scenario, each turn a
    /// warmup and then its share of the duration: the machine's speed drifts by a third
    /// within a minute here, and turns expose both to the same drift.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Runtime threads of the driver. One keeps the driver to one of the two cores, the
    /// same for Roster and the baseline.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Comma-separated scenario names; all when absent.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// The server's pid, to read its peak RSS after the run and its CPU time per iteration.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The baseline's pid, to read its CPU time per iteration.
    #[arg(long)]
    baseline_pid: Option<u32>,
    /// What the script measured around the run, carried into the saved figures.
    #[arg(long)]
    db_bytes: Option<u64>,
    #[arg(long)]
    gen_seconds: Option<f64>,
    #[arg(long)]
    import_seconds: Option<f64>,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct RunReport {
    label: String,
    users: u64,
    accounts: u64,
    memberships: u64,
    db_bytes: Option<u64>,
    gen_seconds: Option<f64>,
    import_seconds: Option<f64>,
    peak_rss_kb: Option<u64>,
    scenarios: Vec<Figures>,
}

#[derive(Serialize, Deserialize)]
struct Figures {
    name: String,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    iterations: u64,
    errors: u64,
    first_error: Option<String>,
    exhausted: bool,
    response_bytes: Vec<usize>,
    base_rate: f64,
    base_p50_ms: f64,
    base_p99_ms: f64,
    base_errors: u64,
    /// Server CPU microseconds per iteration; absent without the pids (and in files
    /// written before it was measured).
    #[serde(default)]
    cpu_us: Option<f64>,
    #[serde(default)]
    base_cpu_us: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Gen {
            users,
            out,
            schema_version,
        } => {
            let layout = Layout::new(users)?;
            let mut file = BufWriter::with_capacity(
                1 << 20,
                File::create(&out).with_context(|| format!("creating {}", out.display()))?,
            );
            layout.write_export(&mut file, schema_version)?;
            file.flush()?;
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            runtime.block_on(run(*args))
        }
        Command::Report { files } => report(&files),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let layout = Arc::new(Layout::new(args.users)?);
    let names: Vec<String> = if args.scenarios.is_empty() {
        scenarios::NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    let rounds = args.rounds.max(1);
    let settings = |addr, pid| Settings {
        addr,
        pid,
        connections: args.connections,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration / f64::from(rounds)),
    };
    let console = match names.iter().any(|n| scenarios::needs_console(n)) {
        true => Some(sign_in(args.roster, &layout.admin()).await?),
        false => None,
    };
    let mut figures = Vec::new();
    for name in &names {
        let scenario = scenarios::by_name(name, layout.clone(), console.clone())
            .with_context(|| format!("unknown scenario {name:?}"))?;
        let (roster, base) = take_turns(
            rounds,
            &settings(args.roster, args.server_pid),
            &settings(args.baseline, args.baseline_pid),
            scenario,
        )
        .await?;
        let ms = |h: &hdrhistogram::Histogram<u64>, q| h.value_at_quantile(q) as f64 / 1000.0;
        // Only successes count: a refusal or a wrong answer is no request served.
        let successes = |o: &load::Outcome| o.iterations.saturating_sub(o.errors) as f64;
        let rate = |o: &load::Outcome| successes(o) / o.seconds.max(1e-9);
        let cpu_us = |o: &load::Outcome| o.cpu_seconds.map(|s| s * 1e6 / successes(o).max(1.0));
        figures.push(Figures {
            cpu_us: cpu_us(&roster),
            base_cpu_us: cpu_us(&base),
            name: name.clone(),
            rate: rate(&roster),
            p50_ms: ms(&roster.latency, 0.5),
            p99_ms: ms(&roster.latency, 0.99),
            iterations: roster.iterations,
            errors: roster.errors,
            first_error: roster.first_error,
            exhausted: roster.exhausted,
            response_bytes: roster.sizes,
            base_rate: rate(&base),
            base_p50_ms: ms(&base.latency, 0.5),
            base_p99_ms: ms(&base.latency, 0.99),
            base_errors: base.errors,
        });
    }
    let report = RunReport {
        label: args.label,
        users: layout.users,
        accounts: layout.accounts(),
        memberships: layout.memberships(),
        db_bytes: args.db_bytes,
        gen_seconds: args.gen_seconds,
        import_seconds: args.import_seconds,
        peak_rss_kb: args.server_pid.and_then(peak_rss_kb),
        scenarios: figures,
    };
    print_run(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Signs `caller` in to the console at `addr` as a browser does (the sign-in form's token
/// and cookie, then the form): the session's cookie.
async fn sign_in(addr: SocketAddr, caller: &dataset::Caller) -> anyhow::Result<String> {
    use http_body_util::{BodyExt, Full};
    use hyper::Request;
    use hyper::body::Bytes;
    let mut sender = load::connect(addr).await?;
    let form = sender
        .send_request(
            Request::get("/console/sign-in")
                .header("host", addr.to_string())
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    let cookie_of = |headers: &hyper::HeaderMap, name: &str| {
        headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
    };
    let tied = cookie_of(form.headers(), "roster_sign_in").context("no sign-in cookie")?;
    let html = form.into_body().collect().await?.to_bytes();
    let html = String::from_utf8_lossy(&html);
    let marker = "name=\"csrf\" value=\"";
    let at = html
        .find(marker)
        .context("no form token on the sign-in page")?
        + marker.len();
    let csrf = &html[at..at + 64];
    let body = format!(
        "csrf={csrf}&email={}&api_key={}",
        caller.email.replace('@', "%40"),
        caller.key
    );
    sender.ready().await?;
    let answer = sender
        .send_request(
            Request::post("/console/sign-in")
                .header("host", addr.to_string())
                .header("cookie", tied)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body)))?,
        )
        .await?;
    cookie_of(answer.headers(), "roster_session").with_context(|| {
        format!(
            "the console did not sign the benchmark's administrator in ({})",
            answer.status()
        )
    })
}

/// Roster's and the baseline's rounds of one scenario, alternating, each target's merged.
async fn take_turns(
    rounds: u32,
    roster: &Settings,
    baseline: &Settings,
    scenario: Arc<dyn load::Scenario>,
) -> anyhow::Result<(load::Outcome, load::Outcome)> {
    let (roster_n, base_n) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut r = load::run(roster, scenario.clone(), Target::Roster, &roster_n).await?;
    // The baseline answers with the body sizes Roster's first round saw.
    let target = Target::Baseline(r.sizes.clone());
    let mut b = load::run(baseline, scenario.clone(), target.clone(), &base_n).await?;
    for _ in 1..rounds {
        // An exhausted pool (every invite used) has nothing left for another round.
        if r.exhausted || b.exhausted {
            break;
        }
        r = r.merge(load::run(roster, scenario.clone(), Target::Roster, &roster_n).await?)?;
        b = b.merge(load::run(baseline, scenario.clone(), target.clone(), &base_n).await?)?;
    }
    Ok((r, b))
}

/// VmHWM: the most resident memory the process has had, so the peak of the whole run.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn print_run(r: &RunReport) {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!();
    println!(
        "== {} users={} accounts={} memberships={}",
        r.label, r.users, r.accounts, r.memberships
    );
    println!(
        "   database {}, generate {}, import {}, server peak RSS {}",
        or_dash(r.db_bytes.map(mb)),
        or_dash(r.gen_seconds.map(|s| format!("{s:.1} s"))),
        or_dash(r.import_seconds.map(|s| format!("{s:.1} s"))),
        or_dash(r.peak_rss_kb.map(|kb| mb(kb * 1024))),
    );
    println!(
        "{:<36} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>6} {:>6}",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "base r/s",
        "base p50",
        "base p99",
        "x rate",
        "x p50",
        "x p99",
        "cpu us",
        "base cpu",
        "x cpu",
        "errors",
        "scale"
    );
    for f in &r.scenarios {
        println!(
            "{:<36} {:>9.0} {:>8.2} {:>8.2} {:>9.0} {:>8.2} {:>8.2} {:>7.2} {:>7.1} {:>7.1} {:>7} {:>8} {:>6} {:>6} {:>6}",
            format!("{} ({})", f.name, scenarios::describe(&f.name)),
            f.rate,
            f.p50_ms,
            f.p99_ms,
            f.base_rate,
            f.base_p50_ms,
            f.base_p99_ms,
            f.rate / f.base_rate.max(1e-9),
            f.p50_ms / f.base_p50_ms.max(1e-9),
            f.p99_ms / f.base_p99_ms.max(1e-9),
            or_dash(f.cpu_us.map(|c| format!("{c:.1}"))),
            or_dash(f.base_cpu_us.map(|c| format!("{c:.1}"))),
            // Like "x rate": the baseline's cost over Roster's, so 1 is as cheap.
            or_dash(
                f.cpu_us
                    .zip(f.base_cpu_us)
                    .map(|(c, b)| format!("{:.2}", b / c.max(1e-9)))
            ),
            f.errors,
            // The first small case this run measured beside it.
            or_dash(
                scales(r)
                    .into_iter()
                    .find(|s| s.many == f.name)
                    .map(|s| match s.errors {
                        true => "ERR".into(),
                        false => format!("{:.2}", s.rate),
                    })
            ),
        );
    }
    for f in &r.scenarios {
        if f.errors > 0 || f.base_errors > 0 {
            println!(
                "   ERRORS in {}: {} of {} iterations failed (baseline: {}); first: {}",
                f.name,
                f.errors,
                f.iterations,
                f.base_errors,
                f.first_error.as_deref().unwrap_or("-")
            );
        }
        if f.exhausted {
            println!(
                "   {} ran out of fresh pairs before the end: its rate is over the time it ran",
                f.name
            );
        }
    }
    let sizes: Vec<String> = r
        .scenarios
        .iter()
        .map(|f| format!("{} {:?}", f.name, f.response_bytes))
        .collect();
    println!("   response bytes per step: {}", sizes.join(", "));
    for s in scales(r) {
        println!("   {}", s.line());
    }
}

/// A `*_many` scenario against its small case, from one run (same server, same data).
struct Scale<'a> {
    many: &'a str,
    small: &'a str,
    /// The many case's rate over the small case's: 1 = holding many costs nothing.
    rate: f64,
    /// The many case's server CPU a request over the small case's.
    cpu: Option<f64>,
    /// Either side had errors (a refusal or a wrong count): its figures mean nothing.
    errors: bool,
}

/// The target: each `*_many` within this factor of its small case.
const SCALE_TARGET: f64 = 1.5;

impl Scale<'_> {
    fn line(&self) -> String {
        if self.errors {
            return format!(
                "scale {} / {}: ERRORS (see above), not comparable",
                self.many, self.small
            );
        }
        let cpu = self.cpu.map_or("-".into(), |c| format!("{c:.2}x"));
        let verdict = if self.rate * SCALE_TARGET >= 1.0 {
            "within 1.5x"
        } else {
            "over 1.5x"
        };
        format!(
            "scale {} / {}: rate {:.3} ({:.1}x slower), cpu a request {cpu}: {verdict}",
            self.many,
            self.small,
            self.rate,
            1.0 / self.rate.max(1e-9)
        )
    }
}

/// Every pair of [`scenarios::SCALE_PAIRS`] the run measured both sides of.
fn scales(r: &RunReport) -> Vec<Scale<'_>> {
    let find = |name: &str| r.scenarios.iter().find(|f| f.name == name);
    scenarios::SCALE_PAIRS
        .iter()
        .filter_map(|&(many, small)| {
            let (m, s) = (find(many)?, find(small)?);
            Some(Scale {
                many: &m.name,
                small: &s.name,
                rate: m.rate / s.rate.max(1e-9),
                cpu: m.cpu_us.zip(s.cpu_us).map(|(m, s)| m / s.max(1e-9)),
                errors: m.errors + s.errors > 0,
            })
        })
        .collect()
}

fn report(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for path in files {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        runs.push(serde_json::from_slice::<RunReport>(&text)?);
    }
    let mut labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
    labels.sort();
    labels.dedup();
    for label in labels {
        let mut mine: Vec<&RunReport> = runs.iter().filter(|r| r.label == label).collect();
        mine.sort_by_key(|r| r.users);
        let (Some(first), Some(last)) = (mine.first(), mine.last()) else {
            continue;
        };
        println!();
        println!("== {label}: p50 ms by dataset size (users), and largest / smallest");
        let mut header = format!("{:<16}", "scenario");
        for r in &mine {
            header += &format!(" {:>10}", r.users);
        }
        println!("{header} {:>8}", "growth");
        for (k, f) in first.scenarios.iter().enumerate() {
            let mut line = format!("{:<16}", f.name);
            for r in &mine {
                let p50 = r.scenarios.get(k).map_or(f64::NAN, |g| g.p50_ms);
                line += &format!(" {p50:>10.2}");
            }
            let end = last.scenarios.get(k).map_or(f64::NAN, |g| g.p50_ms);
            println!("{line} {:>7.1}x", end / f.p50_ms.max(1e-9));
        }
        let mut rss = format!("{:<16}", "peak RSS MB");
        let mut db = format!("{:<16}", "database MB");
        let mut import = format!("{:<16}", "import s");
        for r in &mine {
            let cell =
                |v: Option<f64>| v.map_or(format!(" {:>10}", "-"), |v| format!(" {v:>10.1}"));
            rss += &cell(r.peak_rss_kb.map(|kb| kb as f64 * 1024.0 / 1e6));
            db += &cell(r.db_bytes.map(|b| b as f64 / 1e6));
            import += &cell(r.import_seconds);
        }
        println!("{rss}\n{db}\n{import}");
        for r in &mine {
            let lines = scales(r);
            if !lines.is_empty() {
                println!(
                    "-- {label}, {} users: what holding many costs a page",
                    r.users
                );
            }
            for s in lines {
                println!("   {}", s.line());
            }
        }
    }
    Ok(())
}
