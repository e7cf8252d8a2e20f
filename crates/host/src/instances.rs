//! Spin's instance rules on top of wasmtime-wasi-http's `ProxyHandler`.
//!
//! A WASIp3 component serves up to 128 requests per instance, one at a time by default
//! (`--instance-concurrency`; docs/adr/0011: a trap or a deadline then ends only the request
//! that caused it, and a CPU-bound request never holds up another), and an idle instance is
//! dropped after one second; a WASIp2 component gets a fresh instance per request. Each request has a deadline: the epoch callback interrupts a guest that runs past
//! it (see `App::new_store`), and the worker expiration below retires an instance whose
//! request has been waiting too long.

use crate::app::{App, LoadedComponent};
use crate::metrics::InstanceStats;
use crate::state::{HostState, RequestClock, http_view};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::GuestTaskId;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};

pub const P3_MAX_REUSE: usize = 128;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct ComponentHandler {
    pub app: Arc<App>,
    pub component: Arc<LoadedComponent>,
    pub pre: Arc<ProxyPre<HostState>>,
    /// Instances created and reused, for `/metrics`.
    pub stats: Arc<InstanceStats>,
}

impl HandlerState for ComponentHandler {
    type StoreData = HostState;
    type WorkerExpiration = Expiration;
    type WorkerState = Policy;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiration, Policy>> {
        let mut store = self.app.new_store(&self.component);
        let timeout = self.app.config.request_timeout;
        let proxy = tokio::time::timeout(timeout, self.pre.instantiate_async(&mut store))
            .await
            .map_err(|_| wasmtime::format_err!("instantiation timed out"))??;
        let reuse = matches!(*self.pre, ProxyPre::P3(_));
        self.stats
            .created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Instance {
            store,
            proxy,
            view: http_view,
            expiration: Expiration::new(timeout),
            state: Policy {
                component: self.component.id().into(),
                reuse,
                concurrency: self.app.config.instance_concurrency.max(1),
                timeout,
                stats: self.stats.clone(),
                served: std::sync::atomic::AtomicUsize::new(0),
            },
        })
    }
}

/// Decides how many requests an instance takes and reports how it ended.
pub struct Policy {
    component: Arc<str>,
    reuse: bool,
    concurrency: usize,
    timeout: Duration,
    stats: Arc<InstanceStats>,
    /// Requests this instance has started.
    served: std::sync::atomic::AtomicUsize,
}

impl WorkerState for Policy {
    type StoreData = HostState;
    type RequestData = Arc<RequestClock>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        let (max_total, max_concurrent) = if self.reuse {
            (P3_MAX_REUSE, self.concurrency)
        } else {
            (1, 1)
        };
        if total >= max_total {
            ShouldAccept::Never
        } else if concurrent >= max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: wasmtime::StoreContextMut<'_, HostState>,
        clock: Arc<RequestClock>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.served.fetch_add(1, Relaxed) > 0 {
            self.stats.reused.fetch_add(1, Relaxed);
        }
        // Outbound requests carry the trace of the request the instance is serving; with
        // several at once there is no telling which one a request belongs to.
        let one_at_a_time = !self.reuse || self.concurrency == 1;
        store
            .data_mut()
            .set_trace(clock.trace.filter(|_| one_at_a_time));
        let remaining = self.timeout.saturating_sub(clock.started.elapsed());
        store.data().deadlines.start(clock);
        Box::pin(tokio::time::sleep(remaining))
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        // wasmtime-wasi-http reports an instance whose task was dropped as "worker panicked";
        // outside an unwinding panic that is the runtime cancelling it at shutdown.
        if let Err(err) = &result
            && !std::thread::panicking()
            && err.to_string() == "worker panicked"
        {
            tracing::debug!(component = %self.component, "instance dropped at shutdown");
            return;
        }
        if let Err(err) = result {
            let requests = store.data().deadlines.pending_ids();
            let timed_out = matches!(
                err.downcast_ref::<wasmtime::Trap>(),
                Some(wasmtime::Trap::Interrupt)
            );
            tracing::error!(
                component = %self.component,
                requests = ?requests,
                timed_out,
                error = format!("{err:?}"),
                "component instance failed"
            );
        }
    }
}

/// Retires idle instances after [`IDLE_TIMEOUT`] and stuck ones after the request deadline.
pub struct Expiration {
    timeout: Duration,
    deadline: Option<Instant>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Expiration {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            deadline: None,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

impl WorkerExpiration for Expiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let deadline = match status {
            WorkerStatus::Idle => start + IDLE_TIMEOUT,
            // A small grace beyond the request deadline lets the epoch interrupt report the
            // timeout first, with the request it belongs to.
            WorkerStatus::Requests | WorkerStatus::PostReturn => {
                start + self.timeout + Duration::from_millis(250)
            }
        };
        if self.deadline != Some(deadline) {
            self.deadline = Some(deadline);
            let when = tokio::time::Instant::from_std(deadline);
            self.sleep.as_mut().reset(when);
        }
        self.sleep.as_mut().poll(cx)
    }
}
