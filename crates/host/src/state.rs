//! What one component instance carries in its `Store`.

use crate::factors::{key_value, llm, outbound_http, postgres, sqlite, unconfigured, variables};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub struct HostState {
    pub component: Arc<str>,
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub outbound_http: outbound_http::OutboundHttp,
    pub variables: variables::VariablesState,
    pub key_value: key_value::KeyValueState,
    pub postgres: postgres::PostgresState,
    pub llm: llm::LlmState,
    pub sqlite: sqlite::SqliteState,
    pub unconfigured: unconfigured::UnconfiguredState,
    pub limits: StoreLimits,
    pub deadlines: Arc<Deadlines>,
}

impl HostState {
    /// The trace the instance works in from now on: its outbound requests, Postgres
    /// statements and model calls become child spans of `trace`.
    pub fn set_trace(&mut self, trace: Option<crate::trace::TraceParent>) {
        self.outbound_http.set_trace(trace);
        self.postgres.set_trace(trace);
        self.llm.set_trace(trace);
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound_http,
        }
    }
}

pub fn http_view(state: &mut HostState) -> WasiHttpCtxView<'_> {
    state.http()
}

/// The requests an instance is working on, for its epoch deadline: the instance is stopped
/// when the oldest request still waiting for its response head is older than the timeout.
pub struct Deadlines {
    timeout: Duration,
    pending: Mutex<Vec<Arc<RequestClock>>>,
}

/// One request's start time; `answered` is set when its response head is produced.
pub struct RequestClock {
    pub id: String,
    pub started: Instant,
    pub answered: std::sync::atomic::AtomicBool,
    /// The request's trace context, which the component's outbound requests carry on.
    pub trace: Option<crate::trace::TraceParent>,
}

impl RequestClock {
    pub fn new(id: String) -> Arc<Self> {
        Self::traced(id, None)
    }

    pub fn traced(id: String, trace: Option<crate::trace::TraceParent>) -> Arc<Self> {
        Arc::new(Self {
            id,
            started: Instant::now(),
            answered: Default::default(),
            trace,
        })
    }

    pub fn mark_answered(&self) {
        self.answered
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Deadlines {
    pub fn new(timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            timeout,
            pending: Mutex::new(Vec::new()),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn start(&self, clock: Arc<RequestClock>) {
        self.lock().push(clock);
    }

    /// Whether some pending request has run past the timeout.
    pub fn expired(&self) -> bool {
        let mut pending = self.lock();
        pending.retain(|c| !c.answered.load(std::sync::atomic::Ordering::Relaxed));
        pending.iter().any(|c| c.started.elapsed() > self.timeout)
    }

    /// Ids of requests still waiting, for the log line when an instance dies.
    pub fn pending_ids(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|c| !c.answered.load(std::sync::atomic::Ordering::Relaxed))
            .map(|c| c.id.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<RequestClock>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
