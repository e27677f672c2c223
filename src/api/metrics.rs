//! Prometheus metrics (`GET /metrics`, no credentials, like `/_roster/health`): requests by
//! route template, method and status, their latency, and the store's connections and
//! caches. Each router records into a recorder of its own rather than the process's global
//! one, so servers in one process (the tests) count apart.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Key, Label, Metadata, Recorder, Unit};
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
        Metrics { recorder }
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the router's template
    /// (`/client/v4/accounts/{account_id}/members`), so that ids do not each make a series;
    /// a path no route matched is `unmatched`.
    pub fn record(&self, route: &str, method: &str, status: u16, latency: Duration) {
        let metadata = Metadata::new(module_path!(), metrics::Level::INFO, None);
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
        self.recorder
            .register_counter(&counted, &metadata)
            .increment(1);
        let timed = Key::from_parts(LATENCY, vec![route, method]);
        self.recorder
            .register_histogram(&timed, &metadata)
            .record(latency.as_secs_f64());
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

/// Puts the route template a request matched on its answer, where the access log (which
/// runs outside the router) reads it.
pub async fn note_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
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
