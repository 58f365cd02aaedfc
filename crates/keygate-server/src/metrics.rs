//! Prometheus metrics. Labels are routes, outcomes, gate codes and limit scopes: never
//! key material.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use keygate_keys::{Principal, Verifier, VerifyError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    scope: &'static str,
}

/// The server's metrics and the registry that renders them.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    /// The series of `requests` nearly every request counts under (`mcp`, `ok`),
    /// held once it exists: counted without the family's lock and label hash.
    mcp_ok: Arc<OnceLock<Counter>>,
    verify_seconds: Histogram,
    gate_decisions: Family<GateLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("keygate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by route and outcome",
            requests.clone(),
        );
        // 5 µs .. ~80 ms in 15 doublings: memory, SQLite and PostgreSQL all land inside.
        let verify_seconds = Histogram::new(exponential_buckets(5e-6, 2.0, 15));
        registry.register(
            "verify_duration_seconds",
            "Time to verify a presented key against the store",
            verify_seconds.clone(),
        );
        let gate_decisions = Family::<GateLabels, Counter>::default();
        registry.register(
            "gate_decisions",
            "Confirmation-gate decisions by code (ALLOWED when the call went through)",
            gate_decisions.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by the budget that refused them",
            rate_limited.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            mcp_ok: Arc::default(),
            verify_seconds,
            gate_decisions,
            rate_limited,
        }
    }

    pub(crate) fn request(&self, route: &'static str, outcome: &'static str) {
        if route == "mcp" && outcome == "ok" {
            // A clone of a family's counter is that counter (they share one value).
            let counter = self.mcp_ok.get_or_init(|| {
                self.requests
                    .get_or_create(&RequestLabels { route, outcome })
                    .clone()
            });
            counter.inc();
            return;
        }
        self.requests
            .get_or_create(&RequestLabels { route, outcome })
            .inc();
    }

    pub(crate) fn verified(&self, took: Duration) {
        self.verify_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn gate(&self, code: &'static str) {
        self.gate_decisions
            .get_or_create(&GateLabels { code })
            .inc();
    }

    pub(crate) fn limited(&self, scope: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { scope })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// A verifier that times [`Verifier::verify`] into the metrics.
pub(crate) struct TimedVerifier {
    pub(crate) inner: Arc<dyn Verifier>,
    pub(crate) metrics: Metrics,
}

#[async_trait]
impl Verifier for TimedVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let started = Instant::now();
        let result = self.inner.verify(token).await;
        self.metrics.verified(started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_mcp_series_is_the_family_s_own() {
        let metrics = Metrics::new();
        metrics.request("mcp", "ok");
        // A clone counts into the same held series.
        metrics.clone().request("mcp", "ok");
        metrics.request("mcp", "unauthorized");
        let text = metrics.render();
        assert!(
            text.contains("keygate_requests_total{route=\"mcp\",outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("keygate_requests_total{route=\"mcp\",outcome=\"unauthorized\"} 1"),
            "{text}"
        );
    }
}
