//! Prometheus metrics (`GET /metrics`, no credentials, like `/_roster/health`): requests by
//! route template, method and status, their latency, and the store's connections and
//! caches. Each router records into a recorder of its own rather than the process's global
//! one, so servers in one process (the tests) count apart.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::RwLock;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use super::AppState;

const REQUESTS: &str = "roster_http_requests_total";
const LATENCY: &str = "roster_http_request_duration_seconds";

/// From 100 µs (a cached read) to 10 s (a request near its timeout).
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10.0,
];

pub struct Metrics {
    recorder: PrometheusRecorder,
    /// The series each route, method and status records into, by a hash of the three:
    /// building the labelled key and finding it in the recorder's registry for every
    /// request cost a tenth of a one-row read (`bench/instructions`, 83.6k to 92.8k).
    series: RwLock<HashMap<u64, Vec<Series>>>,
    hasher: foldhash::fast::FixedState,
    /// Whether the database is serving, as the answers show it (the access log keeps it).
    pub database: super::access::DatabaseState,
}

struct Series {
    route: Box<str>,
    method: Box<str>,
    status: u16,
    count: Counter,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(LATENCY.into()),
                &LATENCY_BUCKETS,
            )
            .expect("the buckets are not empty")
            .build_recorder();
        recorder.describe_counter(
            REQUESTS.into(),
            None,
            "Requests answered, by route template, method and status.".into(),
        );
        recorder.describe_histogram(
            LATENCY.into(),
            Some(Unit::Seconds),
            "Time from a request's arrival to its answer, by route template and method.".into(),
        );
        Metrics {
            recorder,
            series: RwLock::default(),
            hasher: foldhash::fast::FixedState::default(),
            database: Default::default(),
        }
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the router's template
    /// (`/client/v4/accounts/{account_id}/members`), so that ids do not each make a series;
    /// a path no route matched is `unmatched`. The method is labelled as
    /// [`method_label`] says, for the same reason.
    pub fn record(&self, route: &str, method: &Method, status: u16, latency: Duration) {
        let method = method_label(method);
        let hash = self.hasher.hash_one((route, method, status));
        let same = |s: &Series| &*s.route == route && &*s.method == method && s.status == status;
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = series
            .get(&hash)
            .and_then(|list| list.iter().find(|s| same(s)))
        {
            s.count.increment(1);
            s.latency.record(latency.as_secs_f64());
            return;
        }
        drop(series);
        let s = self.register(route, method, status);
        s.count.increment(1);
        s.latency.record(latency.as_secs_f64());
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        let list = series.entry(hash).or_default();
        if !list.iter().any(same) {
            list.push(s);
        }
    }

    fn register(&self, route: &str, method: &str, status: u16) -> Series {
        let metadata = Metadata::new(module_path!(), metrics::Level::INFO, None);
        let (route_text, method_text) = (route, method);
        let route = Label::new("route", route.to_string());
        let method = Label::new("method", method.to_string());
        let counted = Key::from_parts(
            REQUESTS,
            vec![
                route.clone(),
                method.clone(),
                Label::new("status", status.to_string()),
            ],
        );
        let timed = Key::from_parts(LATENCY, vec![route, method]);
        Series {
            route: route_text.into(),
            method: method_text.into(),
            status,
            count: self.recorder.register_counter(&counted, &metadata),
            latency: self.recorder.register_histogram(&timed, &metadata),
        }
    }

    fn render(&self, app: &AppState) -> String {
        let metadata = Metadata::new(module_path!(), metrics::Level::INFO, None);
        for figure in app.store.figures() {
            let labels: Vec<Label> = figure
                .labels
                .iter()
                .map(|(name, value)| Label::new(*name, *value))
                .collect();
            let key = Key::from_parts(figure.name, labels);
            if figure.counter {
                self.recorder
                    .describe_counter(figure.name.into(), None, figure.help.into());
                self.recorder
                    .register_counter(&key, &metadata)
                    .absolute(figure.value);
            } else {
                self.recorder
                    .describe_gauge(figure.name.into(), None, figure.help.into());
                self.recorder
                    .register_gauge(&key, &metadata)
                    .set(figure.value as f64);
            }
        }
        self.recorder.handle().render()
    }
}

/// A method's label: its name for the methods HTTP defines, `other` for the rest. A method
/// is any token the client makes up (up to the request line's limit): labelled by name,
/// each new one made two series that lived as long as the process.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Notes the route template a request matched for the access log, which runs outside the
/// router (see [`super::access::Notes`]).
pub async fn note_route(req: Request, next: Next) -> Response {
    super::access::Notes::route(req.extensions());
    next.run(req).await
}

/// The text exposition format Prometheus scrapes.
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(&app),
    )
        .into_response()
}
