//! `spin:postgres/postgres@4.2.0` through a connection pool per address.
//!
//! A guest `connection` holds one pooled client for its lifetime, so `BEGIN … COMMIT` across
//! calls works as on a real connection; if the guest drops it inside a transaction the client
//! is rolled back before it returns to the pool. Addresses are checked against the
//! component's `allowed_outbound_hosts` (`postgres://host:port`), as Spin does.

mod compat;
mod values;

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::spin::postgres::postgres::{
    self as pg, Column, Error, ParameterValue, Row, RowSet,
};
use crate::metrics::{Histogram, POOL_WAIT_BUCKETS};
use crate::state::HostState;
use crate::trace::TraceParent;
use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_manifest::AllowedHosts;
use tessera_pg_tls as tls;
use tokio_postgres::Statement;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

/// How the guests' connection pools are sized and how long a guest waits for a connection.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Connections one component may hold to one address at a time.
    pub size_per_component: usize,
    /// How long `open` waits for a free connection before answering `connection-failed`.
    pub wait: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size_per_component: 16,
            wait: Duration::from_secs(5),
        }
    }
}

/// App-wide: one pool per component and connection string. A pool per component is a
/// bulkhead: a component that holds its connections while it waits on another component
/// (chat holds one while the kb answers its self-request) can exhaust only its own pool,
/// never the one the other component needs to answer it (docs/adr/0011).
#[derive(Default)]
pub struct PostgresFactor {
    settings: PoolSettings,
    pools: Mutex<HashMap<(Arc<str>, String), Pool>>,
    /// How long each component's guests waited for a connection, for `/metrics`.
    waits: Mutex<HashMap<Arc<str>, Arc<Histogram>>>,
}

impl PostgresFactor {
    pub fn new(settings: PoolSettings) -> Self {
        Self {
            settings,
            pools: Mutex::default(),
            waits: Mutex::default(),
        }
    }

    /// Connection waits per component (every component that has opened a connection).
    pub fn pool_waits(&self) -> Vec<(Arc<str>, Arc<Histogram>)> {
        let waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        waits.iter().map(|(c, h)| (c.clone(), h.clone())).collect()
    }

    fn waits_of(&self, component: &Arc<str>) -> Arc<Histogram> {
        let mut waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        waits
            .entry(component.clone())
            .or_insert_with(|| Arc::new(Histogram::new(POOL_WAIT_BUCKETS)))
            .clone()
    }

    /// Size, idle and waiting of every pool, for metrics and the load figures.
    pub fn pool_status(&self) -> Vec<(Arc<str>, deadpool_postgres::Status)> {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .iter()
            .map(|((component, _), pool)| (component.clone(), pool.status()))
            .collect()
    }

    fn pool(&self, component: &Arc<str>, address: &str) -> Result<Pool, Error> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let key = (component.clone(), address.to_string());
        if let Some(pool) = pools.get(&key) {
            return Ok(pool.clone());
        }
        let pool = self.build_pool(address)?;
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    fn build_pool(&self, address: &str) -> Result<Pool, Error> {
        let tls::Target {
            mut config, tls, ..
        } = tls::parse(address).map_err(Error::ConnectionFailed)?;
        plan_each_run(&mut config);
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(self.settings.size_per_component)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(self.settings.wait))
            // A server that accepts TCP but never answers must not hold a guest forever.
            .create_timeout(Some(self.settings.wait))
            .recycle_timeout(Some(self.settings.wait))
            .build()
            .map_err(|e| Error::Other(e.to_string()))
    }
}

pub struct PostgresState {
    factor: Arc<PostgresFactor>,
    allowed: Arc<AllowedHosts>,
    component: Arc<str>,
    /// The trace of the request the instance is serving (`None` when unknown).
    trace: Option<TraceParent>,
}

impl Factor for Arc<PostgresFactor> {
    type InstanceState = PostgresState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        pg::add_to_linker::<HostState, Postgres>(linker, |s| PostgresView {
            state: &mut s.postgres,
            table: &mut s.table,
        })?;
        // fermyon:spin/postgres@2.0.0 and spin:postgres@3.0.0 on the same pools.
        compat::add_to_linker(linker)?;
        Ok(())
    }

    fn instance_state(&self, component: &ComponentConfig) -> PostgresState {
        PostgresState {
            factor: self.clone(),
            allowed: component.allowed_hosts.clone(),
            component: component.id.clone(),
            trace: None,
        }
    }
}

/// A pooled client owned by one guest `connection`.
pub struct Connection {
    client: Arc<PooledClient>,
    /// Set when the statements are exported as spans of the request that opened it.
    spans: Option<StatementSpans>,
}

impl Connection {
    fn parts(&self) -> (Arc<PooledClient>, Option<StatementSpans>) {
        (self.client.clone(), self.spans.clone())
    }

    fn traced(mut self, spans: Option<StatementSpans>) -> Self {
        self.spans = spans;
        self
    }
}

/// The request whose child spans a connection's statements are.
#[derive(Clone)]
struct StatementSpans {
    request: TraceParent,
    component: Arc<str>,
}

/// The longest statement text a span carries (statements hold `$n` placeholders, not
/// values).
const MAX_SPAN_STATEMENT: usize = 2048;

/// Runs one statement, exported as a client span when `spans` is set (OpenTelemetry's
/// database conventions: named by the operation, the statement text as `db.query.text`).
async fn traced<R>(
    spans: Option<StatementSpans>,
    statement: &str,
    run: impl Future<Output = Result<R, Error>>,
) -> Result<R, Error> {
    let Some(spans) = spans else {
        return run.await;
    };
    let start = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let result = run.await;
    let operation = statement
        .split_whitespace()
        .next()
        .unwrap_or("statement")
        .to_ascii_uppercase();
    let mut text = statement.trim();
    if text.len() > MAX_SPAN_STATEMENT {
        let mut end = MAX_SPAN_STATEMENT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text = &text[..end];
    }
    tessera_otlp::export(
        tessera_otlp::SpanRecord::new(
            &spans.request.child(),
            Some(spans.request.parent_id),
            operation.as_str(),
            tessera_otlp::Kind::Client,
            start,
            started.elapsed(),
        )
        .attribute("db.system.name", "postgresql")
        .attribute("db.operation.name", operation.as_str())
        .attribute("db.query.text", text)
        .attribute("tessera.component", spans.component.as_ref())
        .failed(result.as_ref().err().map(|e| format!("{e:?}"))),
    );
    result
}

struct PooledClient {
    object: Option<Object>,
    /// Set once the guest starts a transaction; the client is rolled back on release.
    maybe_in_transaction: AtomicBool,
}

impl PooledClient {
    fn client(&self) -> &tokio_postgres::Client {
        self.wrapper()
    }

    fn wrapper(&self) -> &deadpool_postgres::ClientWrapper {
        self.object.as_deref().expect("client present until drop")
    }

    fn note_statement(&self, statement: &str) {
        if let Some(open) = transaction_change(statement) {
            self.maybe_in_transaction.store(open, Ordering::Relaxed);
        }
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if let Some(object) = self.object.take()
            && self.maybe_in_transaction.load(Ordering::Relaxed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                // Outside a transaction this only warns; inside, it keeps the pool clean.
                let _ = object.batch_execute("ROLLBACK").await;
            });
        }
    }
}

/// Whether `statement` opens (`BEGIN`, `START TRANSACTION`) or ends (`COMMIT`, `ROLLBACK`,
/// `END`, `ABORT`) a transaction; `None` for anything else. A client released after its
/// guest committed needs no rollback (which Postgres would answer with a warning).
fn transaction_change(statement: &str) -> Option<bool> {
    let word: String = statement
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "begin" | "start" => Some(true),
        "commit" | "rollback" | "end" | "abort" => Some(false),
        _ => None,
    }
}

/// `connection-builder`: an address plus options, opened by `build`.
pub struct ConnectionBuilder {
    address: String,
}

pub struct Postgres;

impl HasData for Postgres {
    type Data<'a> = PostgresView<'a>;
}

pub struct PostgresView<'a> {
    state: &'a mut PostgresState,
    table: &'a mut ResourceTable,
}

impl PostgresState {
    /// The trace of the request that starts now (statements become its child spans).
    pub fn set_trace(&mut self, trace: Option<TraceParent>) {
        self.trace = trace;
    }

    fn statement_spans(&self) -> Option<StatementSpans> {
        self.trace
            .filter(tessera_otlp::exporting)
            .map(|request| StatementSpans {
                request,
                component: self.component.clone(),
            })
    }

    /// Checks the address against allowed_outbound_hosts and picks its pool, with the
    /// histogram its waits are recorded in.
    fn authorize(&self, address: &str) -> Result<(Pool, Arc<Histogram>), Error> {
        let target = tessera_manifest::outbound::parse_target(address, "postgres")
            .map_err(|e| Error::ConnectionFailed(format!("invalid connection string: {e}")))?;
        if !self
            .allowed
            .allows(&target.scheme, &target.host, target.port)
        {
            tracing::warn!(component = %self.component, host = %target.host, port = target.port,
                "denied outbound postgres connection (not in allowed_outbound_hosts)");
            return Err(Error::ConnectionFailed(format!(
                "access to postgres://{}:{} is not allowed: add it to component.{}.allowed_outbound_hosts",
                target.host, target.port, self.component
            )));
        }
        let pool = self.factor.pool(&self.component, address)?;
        Ok((pool, self.factor.waits_of(&self.component)))
    }
}

/// Statements stay prepared per connection (see `values::prepare`), and Postgres switches a
/// prepared statement to a generic plan after five runs — which can trade an index scan
/// (pgvector's HNSW, a selective filter) for a sequential one. Plan each run for its
/// parameters, as unnamed statements always were; the saving is the round trip, not the
/// planning.
fn plan_each_run(config: &mut tokio_postgres::Config) {
    const SETTING: &str = "-c plan_cache_mode=force_custom_plan";
    let options = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} {SETTING}"),
        _ => SETTING.to_string(),
    };
    config.options(&options);
}

/// Statements one pooled connection keeps prepared; a guest that builds SQL text with
/// literals would otherwise grow the cache without bound.
const MAX_CACHED_STATEMENTS: usize = 256;

async fn connect((pool, waits): (Pool, Arc<Histogram>)) -> Result<Connection, Error> {
    let started = std::time::Instant::now();
    let object = pool.get().await;
    waits.observe(started.elapsed());
    let object = object.map_err(pool_error)?;
    Ok(Connection {
        spans: None,
        client: Arc::new(PooledClient {
            object: Some(object),
            maybe_in_transaction: AtomicBool::new(false),
        }),
    })
}

/// Why no connection could be had, in words a guest can show: a timeout names the pool's
/// size, so an operator knows which limit to raise.
fn pool_error(err: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::{PoolError, TimeoutType};
    let message = match &err {
        PoolError::Timeout(TimeoutType::Wait) => {
            "timed out waiting for a free database connection (the component's pool is full)"
                .to_string()
        }
        PoolError::Timeout(_) => "timed out connecting to the database".to_string(),
        PoolError::Backend(e) => tls::explain(e),
        other => format!("cannot connect to the database: {other}"),
    };
    Error::ConnectionFailed(message)
}

async fn run_query(
    client: &PooledClient,
    statement: &str,
    params: &[ParameterValue],
) -> Result<RowSet, Error> {
    let (stmt, rows) = run_prepared(client, statement, params, |c, stmt, args| {
        Box::pin(c.query(stmt, args))
    })
    .await?;
    let rows = rows
        .iter()
        .map(values::row)
        .collect::<Result<Vec<Row>, Error>>()?;
    Ok(RowSet {
        columns: values::columns(&stmt),
        rows,
    })
}

async fn run_execute(
    client: &PooledClient,
    statement: &str,
    params: &[ParameterValue],
) -> Result<u64, Error> {
    run_prepared(client, statement, params, |c, stmt, args| {
        Box::pin(c.execute(stmt, args))
    })
    .await
    .map(|(_, n)| n)
}

type Run<'a, R> = futures::future::BoxFuture<'a, Result<R, tokio_postgres::Error>>;

/// Prepares `statement` (from the connection's cache when it is there) and runs it with
/// `run`. A cached statement the server no longer knows, or whose tables changed shape, is
/// dropped from the cache and prepared and run again once (see `values::stale_statement`).
async fn run_prepared<R>(
    client: &PooledClient,
    statement: &str,
    params: &[ParameterValue],
    run: impl for<'a> Fn(
        &'a tokio_postgres::Client,
        &'a Statement,
        &'a [&'a (dyn postgres_types::ToSql + Sync)],
    ) -> Run<'a, R>,
) -> Result<(Statement, R), Error> {
    client.note_statement(statement);
    let mut retried = false;
    loop {
        let (stmt, args) = prepare(client, statement, params).await?;
        let refs = values::as_refs(&args);
        match run(client.client(), &stmt, &refs).await {
            Err(err) if !retried && values::stale_statement(&err) => {
                client.wrapper().statement_cache.clear();
                retried = true;
            }
            Err(err) => return Err(values::query_failed(err)),
            Ok(out) => return Ok((stmt, out)),
        }
    }
}

async fn prepare(
    client: &PooledClient,
    statement: &str,
    params: &[ParameterValue],
) -> Result<(Statement, Vec<values::Arg>), Error> {
    let wrapper = client.wrapper();
    if wrapper.statement_cache.size() >= MAX_CACHED_STATEMENTS {
        wrapper.statement_cache.clear();
    }
    values::prepare(wrapper, statement, params).await
}

impl pg::Host for PostgresView<'_> {}

impl pg::HostConnection for PostgresView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let pool = match self.state.authorize(&address) {
            Ok(pool) => pool,
            Err(e) => return Ok(Err(e)),
        };
        let spans = self.state.statement_spans();
        Ok(match connect(pool).await {
            Ok(conn) => Ok(self.table.push(conn.traced(spans))?),
            Err(e) => Err(e),
        })
    }

    async fn query(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let (client, spans) = self.table.get(&conn)?.parts();
        Ok(traced(spans, &statement, run_query(&client, &statement, &params)).await)
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let (client, spans) = self.table.get(&conn)?.parts();
        Ok(traced(spans, &statement, run_execute(&client, &statement, &params)).await)
    }

    fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl pg::HostConnectionBuilder for PostgresView<'_> {
    fn new(&mut self, address: String) -> wasmtime::Result<Resource<ConnectionBuilder>> {
        Ok(self.table.push(ConnectionBuilder { address })?)
    }

    fn set_ca_root(
        &mut self,
        _builder: Resource<ConnectionBuilder>,
        _certificate: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        // The connection string carries the CA instead (crates/pg-tls).
        Ok(Err(Error::Other(
            "set-ca-root is not supported by this host; name the CA file in the connection \
             string instead: ?sslmode=verify-full&sslrootcert=<file>"
                .into(),
        )))
    }

    async fn build(
        &mut self,
        builder: Resource<ConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let address = self.table.get(&builder)?.address.clone();
        pg::HostConnection::open(self, address).await
    }

    fn drop(&mut self, builder: Resource<ConnectionBuilder>) -> wasmtime::Result<()> {
        self.table.delete(builder)?;
        Ok(())
    }
}

/// Clones the client of `conn` (and its spans) out of the store so the query can await
/// without it.
fn client_of<T>(
    accessor: &Accessor<T, Postgres>,
    conn: &Resource<Connection>,
) -> wasmtime::Result<(Arc<PooledClient>, Option<StatementSpans>)> {
    accessor.with(|mut access| Ok(access.get().table.get(conn)?.parts()))
}

impl<T> pg::HostConnectionWithStore<T> for Postgres {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let (pool, spans) = match accessor.with(|mut access| {
            let state = &access.get().state;
            state
                .authorize(&address)
                .map(|pool| (pool, state.statement_spans()))
        }) {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let conn = match connect(pool).await {
            Ok(conn) => conn.traced(spans),
            Err(e) => return Ok(Err(e)),
        };
        accessor.with(|mut access| Ok(Ok(access.get().table.push(conn)?)))
    }

    async fn query_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<Column>,
                StreamReader<Row>,
                FutureReader<Result<(), Error>>,
            ),
            Error,
        >,
    > {
        let (client, spans) = client_of(accessor, &conn)?;
        let ran = traced(spans, &statement, run_query(&client, &statement, &params)).await;
        let RowSet { columns, rows } = match ran {
            Ok(set) => set,
            Err(e) => return Ok(Err(e)),
        };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async {
                Ok::<_, wasmtime::Error>(Ok::<(), Error>(()))
            })?;
            Ok(Ok((columns, rows, done)))
        })
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let (client, spans) = client_of(accessor, &conn)?;
        Ok(traced(spans, &statement, run_execute(&client, &statement, &params)).await)
    }
}

impl<T> pg::HostConnectionBuilderWithStore<T> for Postgres {
    async fn build_async(
        accessor: &Accessor<T, Self>,
        builder: Resource<ConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let address = accessor.with(|mut access| -> wasmtime::Result<String> {
            Ok(access.get().table.get(&builder)?.address.clone())
        })?;
        <Self as pg::HostConnectionWithStore<T>>::open_async(accessor, address).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_tracked_by_their_first_word() {
        assert_eq!(transaction_change("BEGIN"), Some(true));
        assert_eq!(
            transaction_change("  start transaction isolation level serializable"),
            Some(true)
        );
        assert_eq!(transaction_change("COMMIT;"), Some(false));
        assert_eq!(transaction_change("rollback"), Some(false));
        assert_eq!(transaction_change("END"), Some(false));
        assert_eq!(transaction_change("SELECT 1"), None);
        assert_eq!(transaction_change("beginning_balance"), None);
        assert_eq!(transaction_change(""), None);
    }

    #[test]
    fn pooled_connections_plan_each_run_and_keep_the_callers_options() {
        let mut plain: tokio_postgres::Config = "postgres://u@127.0.0.1/db".parse().expect("valid");
        plan_each_run(&mut plain);
        assert_eq!(
            plain.get_options(),
            Some("-c plan_cache_mode=force_custom_plan")
        );
        let mut with: tokio_postgres::Config =
            "postgres://u@127.0.0.1/db?options=-c%20search_path%3Dapp"
                .parse()
                .expect("valid");
        plan_each_run(&mut with);
        assert_eq!(
            with.get_options(),
            Some("-c search_path=app -c plan_cache_mode=force_custom_plan")
        );
    }
}
