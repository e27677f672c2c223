//! The load loop: a fixed number of keep-alive HTTP/1.1 connections, each sending one
//! request at a time for a fixed duration, with latency recorded per iteration (one
//! iteration is one request, or a request and the ones that follow from its answer).
//!
//! An iteration counts if it finishes after the warmup, even if it started during it, so a
//! stall that spans the start of the measurement shows in the latencies and not only as a
//! lower rate; the rate is over the time from the end of the warmup to the last answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub struct Step {
    pub method: Method,
    pub path: String,
    pub email: String,
    pub key: String,
    pub body: Option<String>,
    /// A console session's cookie, sent in place of the key (a console page's step).
    pub cookie: Option<String>,
}

/// What a scenario sends: step `idx` of iteration `n`, given the previous step's response
/// body. `None` at step 0 means the scenario has no work left (the invitation pool).
pub trait Scenario: Send + Sync {
    fn step(&self, n: u64, idx: usize, prev: &[u8]) -> Option<Step>;

    /// What Roster's 2xx answer to step `idx` must also hold to count as a success (a
    /// list's exact `total_count`, say): a server that answers fast by answering wrong
    /// must not look fast. Not asked of the baseline, whose bodies are filler.
    fn check(&self, _n: u64, _idx: usize, _body: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// Where the steps go: Roster itself, or the baseline standing in for it with the response
/// sizes Roster gave for each step.
#[derive(Clone)]
pub enum Target {
    Roster,
    Baseline(Vec<usize>),
}

pub struct Settings {
    pub addr: SocketAddr,
    /// The server's pid, to read the CPU time it spends while measured.
    pub pid: Option<u32>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

pub struct Outcome {
    /// Iterations finished while measured, failed ones included.
    pub iterations: u64,
    /// Of those, the ones with a step that was not 2xx, failed its check or got no answer.
    pub errors: u64,
    pub first_error: Option<String>,
    pub exhausted: bool,
    /// Microseconds per successful iteration: a quick refusal is not a fast answer.
    pub latency: Histogram<u64>,
    /// Mean response body size of each step.
    pub sizes: Vec<usize>,
    pub seconds: f64,
    /// Server CPU seconds (user and system, all threads) between the end of the warmup
    /// and the end of the round.
    pub cpu_seconds: Option<f64>,
}

struct Tally {
    iterations: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
    size_sums: Vec<(u64, u64)>,
    last_finish: Option<Instant>,
}

/// One measured round. `counter` numbers the iterations and is shared by the rounds of
/// one target, so a later round does not replay (re-invite) an earlier one's iterations.
pub async fn run(
    settings: &Settings,
    scenario: Arc<dyn Scenario>,
    target: Target,
    counter: &Arc<AtomicU64>,
) -> anyhow::Result<Outcome> {
    let exhausted = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let measure_from = started + settings.warmup;
    let end = measure_from + settings.duration;
    let cpu = settings.pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let before = cpu_seconds(pid)?;
            tokio::time::sleep_until(end.into()).await;
            Some(cpu_seconds(pid)? - before)
        })
    });
    let mut tasks = Vec::new();
    for _ in 0..settings.connections {
        let (scenario, target) = (scenario.clone(), target.clone());
        let (counter, exhausted) = (Arc::clone(counter), exhausted.clone());
        let addr = settings.addr;
        tasks.push(tokio::spawn(async move {
            connection(
                addr,
                &*scenario,
                &target,
                &counter,
                &exhausted,
                measure_from,
                end,
            )
            .await
        }));
    }
    let mut outcome = Outcome {
        iterations: 0,
        errors: 0,
        first_error: None,
        exhausted: false,
        latency: new_histogram(),
        sizes: Vec::new(),
        seconds: 0.0,
        cpu_seconds: None,
    };
    let mut size_sums: Vec<(u64, u64)> = Vec::new();
    let mut last_finish = measure_from;
    for task in tasks {
        let tally = task.await.context("a connection task panicked")??;
        outcome.iterations += tally.iterations;
        outcome.errors += tally.errors;
        outcome.first_error = outcome.first_error.or(tally.first_error);
        outcome.latency.add(&tally.latency)?;
        last_finish = last_finish.max(tally.last_finish.unwrap_or(measure_from));
        size_sums.resize(size_sums.len().max(tally.size_sums.len()), (0, 0));
        for (total, (sum, count)) in size_sums.iter_mut().zip(tally.size_sums) {
            total.0 += sum;
            total.1 += count;
        }
    }
    // An exhausted pool ends the run early; slow answers end it late.
    outcome.seconds = last_finish.duration_since(measure_from).as_secs_f64();
    outcome.exhausted = exhausted.load(Ordering::Relaxed);
    if let Some(cpu) = cpu {
        outcome.cpu_seconds = cpu.await.context("the CPU sampler panicked")?;
    }
    outcome.sizes = size_sums
        .iter()
        .map(|(sum, count)| (sum / (*count).max(1)) as usize)
        .collect();
    Ok(outcome)
}

impl Outcome {
    /// Two rounds of the same target as one: counts and seconds add up, the latency
    /// histograms merge, the body sizes are the first round's.
    pub fn merge(mut self, other: Outcome) -> anyhow::Result<Outcome> {
        self.iterations += other.iterations;
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        self.exhausted |= other.exhausted;
        self.latency.add(&other.latency)?;
        if self.sizes.is_empty() {
            self.sizes = other.sizes;
        }
        self.seconds += other.seconds;
        self.cpu_seconds = self.cpu_seconds.zip(other.cpu_seconds).map(|(a, b)| a + b);
        Ok(self)
    }
}

/// utime + stime of every thread of `pid`, from /proc/{pid}/stat (fields 14 and 15, in
/// clock ticks of 1/100 s: USER_HZ is 100 on Linux whatever the kernel's own tick).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; count fields after its closing paren.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    // Requests are small and sent one at a time: Nagle would only add delay.
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn connection(
    addr: SocketAddr,
    scenario: &dyn Scenario,
    target: &Target,
    counter: &AtomicU64,
    exhausted: &AtomicBool,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        iterations: 0,
        errors: 0,
        first_error: None,
        latency: new_histogram(),
        size_sums: Vec::new(),
        last_finish: None,
    };
    let mut sender = connect(addr).await?;
    while Instant::now() < end && !exhausted.load(Ordering::Relaxed) {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut prev = Bytes::new();
        let mut failure = None;
        let mut idx = 0;
        while let Some(step) = scenario.step(n, idx, &prev) {
            let request = build(step, target, idx, addr)?;
            let answer = async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                anyhow::Ok((status, body))
            }
            .await;
            match answer {
                Ok((status, body)) if status.is_success() => {
                    if let (Target::Roster, Err(why)) = (target, scenario.check(n, idx, &body)) {
                        failure = Some(format!("step {idx}: HTTP {status}, but {why}"));
                        break;
                    }
                    if tally.size_sums.len() <= idx {
                        tally.size_sums.resize(idx + 1, (0, 0));
                    }
                    tally.size_sums[idx].0 += body.len() as u64;
                    tally.size_sums[idx].1 += 1;
                    prev = body;
                }
                Ok((status, body)) => {
                    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                    failure = Some(format!("step {idx}: HTTP {status}: {text}"));
                    break;
                }
                Err(e) => {
                    failure = Some(format!("step {idx}: {e:#}"));
                    // The connection is in an unknown state: start a new one.
                    sender = connect(addr).await?;
                    break;
                }
            }
            idx += 1;
        }
        if idx == 0 && failure.is_none() {
            exhausted.store(true, Ordering::Relaxed);
            break;
        }
        let finished = Instant::now();
        if finished < measure_from {
            continue;
        }
        tally.iterations += 1;
        tally.last_finish = Some(finished);
        if let Some(failure) = failure {
            tally.errors += 1;
            tally.first_error.get_or_insert(failure);
            continue;
        }
        let micros = (finished - started).as_micros().max(1) as u64;
        tally.latency.saturating_record(micros);
    }
    Ok(tally)
}

fn build(
    step: Step,
    target: &Target,
    idx: usize,
    addr: SocketAddr,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let path = match target {
        Target::Roster => step.path,
        Target::Baseline(sizes) => format!("/bytes/{}", sizes.get(idx).copied().unwrap_or(0)),
    };
    let mut request = Request::builder()
        .method(step.method)
        .uri(path)
        .header("host", addr.to_string());
    request = match &step.cookie {
        Some(cookie) => request.header("cookie", cookie),
        None => request
            .header("x-auth-email", step.email)
            .header("x-auth-key", step.key),
    };
    let body = match step.body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Bytes::from(body)
        }
        None => Bytes::new(),
    };
    Ok(request.body(Full::new(body))?)
}
