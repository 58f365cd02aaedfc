//! Per-request cost of the policy check plus the gate decision for ungated calls,
//! beside a bare `HashMap` lookup of the tool name as a baseline.

#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use keygate_gates::{FailureHistory, GateCall, Gates, MemoryGateStore, SystemClock};
use keygate_keys::{KeyId, KeyKind, Principal, ProjectId, ProjectRef, TenantId, TenantRef};
use keygate_scopes::Policy;
use serde_json::json;

const POLICY: &str = r#"
[scopes]
"services:read" = "Read services"
"services:write" = "Change services"

[tools."service.status"]
scopes = ["services:read"]
project_arg = "project"
[tools."service.events"]
scopes = ["services:read"]
project_arg = "project"
[tools."service.logs.build"]
scopes = ["services:read"]
project_arg = "project"
[tools."service.logs.runtime"]
scopes = ["services:read"]
project_arg = "project"
[tools."service.deploy"]
scopes = ["services:write"]
mutating = true
project_arg = "project"
[tools."service.delete"]
scopes = ["services:write"]
mutating = true
project_arg = "project"
gate = { kind = "approval", target_arg = "service", protect = ["keygate"] }
[tools."service.replace"]
scopes = ["services:write"]
mutating = true
project_arg = "project"
gate = { kind = "evidence", target_arg = "service", status_tool = "service.status", failure_field = "has_failure_history", evidence_tools = ["service.events", "service.logs.build", "service.logs.runtime"] }
"#;

/// Polls a future that never waits (the ungated paths touch no store).
fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the ungated path must not wait"),
    }
}

fn bench(c: &mut Criterion) {
    let policy = Policy::from_toml_str(POLICY).expect("valid policy");
    let principal = Principal {
        key_id: KeyId::random().expect("randomness"),
        tenant: TenantRef {
            id: TenantId::new("tn_bench"),
            name: "bench".to_owned(),
        },
        kind: KeyKind::Tenant,
        user: None,
        scopes: std::sync::Arc::new(
            ["services:read", "services:write"]
                .into_iter()
                .map(str::to_owned)
                .collect::<BTreeSet<_>>(),
        ),
        projects: Some(vec![
            ProjectRef {
                id: ProjectId::new("pj_ops"),
                name: "ops".to_owned(),
            },
            ProjectRef {
                id: ProjectId::new("pj_shop"),
                name: "shop".to_owned(),
            },
        ]),
        expires_at: None,
    };
    let gates = Gates::new(Arc::new(MemoryGateStore::new()), Arc::new(SystemClock));
    let args = json!({"project": "shop", "service": "api", "image": "api:2"});
    let key_id = principal.key_id.to_string();

    let baseline: HashMap<String, bool> = policy
        .tools()
        .map(|t| (t.name().to_owned(), t.mutating()))
        .collect();
    let mut group = c.benchmark_group("ungated");
    group.bench_function("baseline_hashmap_lookup", |b| {
        b.iter(|| black_box(baseline.get(black_box("service.deploy"))));
    });
    group.bench_function("authorize_no_gate", |b| {
        b.iter(|| {
            let tool = policy
                .authorize(&principal, black_box("service.deploy"), black_box(&args))
                .expect("allowed")
                .tool();
            black_box(tool.gate().is_none())
        });
    });
    let history = FailureHistory::None;
    group.bench_function("authorize_and_evidence_gate_without_history", |b| {
        b.iter(|| {
            let tool = policy
                .authorize(&principal, black_box("service.replace"), black_box(&args))
                .expect("allowed")
                .tool();
            let spec = tool.gate().expect("gated");
            let call = GateCall::from_args(spec, &key_id, Some("s1"), tool.name(), &args);
            let d = ready(gates.decide(spec, &call, Some(&history))).expect("decided");
            black_box(d.is_allowed())
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
