//! `spin:sqlite/sqlite@3.1.0` (3.0.0 links to it) and `fermyon:spin/sqlite@2.0.0` on SQLite (rusqlite, with the
//! bundled SQLite): the `default` database is a file per application under the state
//! directory, as Spin keeps one under `.spin/`; other labels come from the runtime config
//! file (`[sqlite_database.<label>]`). A component may open only the labels in its
//! `sqlite_databases`; any other is `access-denied`, as in Spin.
//!
//! Each guest connection is its own SQLite connection, so `last-insert-rowid` and
//! `changes` are that guest's; statements run on the blocking pool, not on the async
//! workers that serve requests. 3.1.0's `*-async` functions (what Spin's WASIp3 SDKs call)
//! do the same work without holding the store, and hand the rows over as a stream.

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::fermyon::spin::sqlite as v2;
use crate::bindings::spin::sqlite::sqlite as v3;
use crate::state::HostState;
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

/// How long a statement waits for another connection's write lock before `io` "database
/// is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteFactor {
    /// Label → database file.
    databases: Arc<BTreeMap<String, PathBuf>>,
}

impl SqliteFactor {
    /// `default_path` is the file of the `default` database; `labels` the databases of the
    /// runtime config file (one named `default` replaces it).
    pub fn new(default_path: PathBuf, labels: BTreeMap<String, PathBuf>) -> Self {
        let mut databases = BTreeMap::from([("default".to_string(), default_path)]);
        databases.extend(labels);
        Self {
            databases: Arc::new(databases),
        }
    }
}

pub struct SqliteState {
    databases: Arc<BTreeMap<String, PathBuf>>,
    allowed: Arc<[String]>,
}

/// An open guest connection.
pub struct Connection {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl Factor for SqliteFactor {
    type InstanceState = SqliteState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        fn view(s: &mut HostState) -> SqliteView<'_> {
            SqliteView {
                state: &mut s.sqlite,
                table: &mut s.table,
            }
        }
        v2::add_to_linker::<HostState, Sqlite>(linker, view)?;
        v3::add_to_linker::<HostState, Sqlite>(linker, view)?;
        Ok(())
    }

    fn validate(&self, component: &ComponentConfig) -> Result<()> {
        for label in component.sqlite_databases.iter() {
            if !self.databases.contains_key(label) {
                bail!(
                    "component.{}.sqlite_databases: no database named {label:?} (this host \
                     provides: {}; declare others in the runtime config file as \
                     [sqlite_database.{label}])",
                    component.id,
                    self.databases
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(())
    }

    fn instance_state(&self, component: &ComponentConfig) -> SqliteState {
        SqliteState {
            databases: self.databases.clone(),
            allowed: component.sqlite_databases.clone(),
        }
    }
}

pub struct Sqlite;

impl HasData for Sqlite {
    type Data<'a> = SqliteView<'a>;
}

pub struct SqliteView<'a> {
    state: &'a mut SqliteState,
    table: &'a mut ResourceTable,
}

/// SQLite's values, between the two interface versions and rusqlite.
enum Value {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

/// Why a call failed, before it becomes an interface version's `error`.
enum Failure {
    NoSuchDatabase,
    AccessDenied,
    DatabaseFull,
    Io(String),
}

struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Failure::DatabaseFull,
            _ => Failure::Io(err.to_string()),
        }
    }
}

impl SqliteState {
    /// The file of `label`, if this component may open it.
    fn database(&self, label: &str) -> Result<PathBuf, Failure> {
        if !self.allowed.iter().any(|l| l == label) {
            return Err(Failure::AccessDenied);
        }
        self.databases
            .get(label)
            .cloned()
            .ok_or(Failure::NoSuchDatabase)
    }
}

/// Opens the database file on the blocking pool.
async fn open_connection(path: PathBuf) -> wasmtime::Result<Result<Connection, Failure>> {
    let opened = tokio::task::spawn_blocking(move || open_file(&path)).await?;
    Ok(opened.map(|conn| Connection {
        conn: Arc::new(Mutex::new(conn)),
    }))
}

/// Runs one statement on the blocking pool.
async fn run_statement(
    conn: Arc<Mutex<rusqlite::Connection>>,
    statement: String,
    params: Vec<Value>,
) -> wasmtime::Result<Result<Rows, Failure>> {
    Ok(tokio::task::spawn_blocking(move || {
        let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        execute(&conn, &statement, params)
    })
    .await?)
}

impl SqliteView<'_> {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Connection, Failure>> {
        match self.state.database(&label) {
            Ok(path) => open_connection(path).await,
            Err(f) => Ok(Err(f)),
        }
    }

    async fn execute(
        &mut self,
        conn: &Resource<Connection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, Failure>> {
        let conn = self.table.get(conn)?.conn.clone();
        run_statement(conn, statement, params).await
    }

    fn with_conn<R>(
        &mut self,
        conn: &Resource<Connection>,
        f: impl FnOnce(&rusqlite::Connection) -> R,
    ) -> wasmtime::Result<R> {
        let conn = self.table.get(conn)?.conn.clone();
        let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&conn))
    }
}

fn open_file(path: &std::path::Path) -> Result<rusqlite::Connection, Failure> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Io(format!("creating {}: {e}", dir.display())))?;
    }
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    params: Vec<Value>,
) -> Result<Rows, Failure> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params: Vec<rusqlite::types::Value> = params.into_iter().map(to_sql).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(from_sql(row.get_ref(i)?));
        }
        out.push(values);
    }
    Ok(Rows { columns, rows: out })
}

fn to_sql(v: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Integer(i) => S::Integer(i),
        Value::Real(f) => S::Real(f),
        Value::Text(t) => S::Text(t),
        Value::Blob(b) => S::Blob(b),
        Value::Null => S::Null,
    }
}

fn from_sql(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as S;
    match v {
        S::Integer(i) => Value::Integer(i),
        S::Real(f) => Value::Real(f),
        // SQLite does not enforce UTF-8 in TEXT; keep what cannot be text as bytes.
        S::Text(t) => match std::str::from_utf8(t) {
            Ok(t) => Value::Text(t.to_string()),
            Err(_) => Value::Blob(t.to_vec()),
        },
        S::Blob(b) => Value::Blob(b.to_vec()),
        S::Null => Value::Null,
    }
}

/// The two interface versions have the same shapes under different types.
macro_rules! version {
    ($v:ident) => {
        impl From<$v::Value> for Value {
            fn from(v: $v::Value) -> Self {
                match v {
                    $v::Value::Integer(i) => Value::Integer(i),
                    $v::Value::Real(f) => Value::Real(f),
                    $v::Value::Text(t) => Value::Text(t),
                    $v::Value::Blob(b) => Value::Blob(b),
                    $v::Value::Null => Value::Null,
                }
            }
        }

        impl From<Value> for $v::Value {
            fn from(v: Value) -> Self {
                match v {
                    Value::Integer(i) => $v::Value::Integer(i),
                    Value::Real(f) => $v::Value::Real(f),
                    Value::Text(t) => $v::Value::Text(t),
                    Value::Blob(b) => $v::Value::Blob(b),
                    Value::Null => $v::Value::Null,
                }
            }
        }

        impl From<Failure> for $v::Error {
            fn from(f: Failure) -> Self {
                match f {
                    Failure::NoSuchDatabase => $v::Error::NoSuchDatabase,
                    Failure::AccessDenied => $v::Error::AccessDenied,
                    Failure::DatabaseFull => $v::Error::DatabaseFull,
                    Failure::Io(m) => $v::Error::Io(m),
                }
            }
        }

        impl From<Rows> for $v::QueryResult {
            fn from(r: Rows) -> Self {
                $v::QueryResult {
                    columns: r.columns,
                    rows: r
                        .rows
                        .into_iter()
                        .map(|values| $v::RowResult {
                            values: values.into_iter().map(Into::into).collect(),
                        })
                        .collect(),
                }
            }
        }

        impl $v::Host for SqliteView<'_> {}
    };
}

version!(v2);
version!(v3);

impl v2::HostConnection for SqliteView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v2::Error>> {
        Ok(match SqliteView::open(self, database).await? {
            Ok(conn) => Ok(self.table.push(conn)?),
            Err(f) => Err(f.into()),
        })
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> wasmtime::Result<Result<v2::QueryResult, v2::Error>> {
        let params = parameters.into_iter().map(Into::into).collect();
        Ok(SqliteView::execute(self, &conn, statement, params)
            .await?
            .map(Into::into)
            .map_err(Into::into))
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl v3::HostConnection for SqliteView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v3::Error>> {
        Ok(match SqliteView::open(self, database).await? {
            Ok(conn) => Ok(self.table.push(conn)?),
            Err(f) => Err(f.into()),
        })
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> wasmtime::Result<Result<v3::QueryResult, v3::Error>> {
        let params = parameters.into_iter().map(Into::into).collect();
        Ok(SqliteView::execute(self, &conn, statement, params)
            .await?
            .map(Into::into)
            .map_err(Into::into))
    }

    async fn last_insert_rowid(&mut self, conn: Resource<Connection>) -> wasmtime::Result<i64> {
        self.with_conn(&conn, |c| c.last_insert_rowid())
    }

    async fn changes(&mut self, conn: Resource<Connection>) -> wasmtime::Result<u64> {
        self.with_conn(&conn, |c| c.changes())
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

/// The SQLite connection behind a guest's handle, out of the store.
fn connection_of<T>(
    accessor: &Accessor<T, Sqlite>,
    conn: &Resource<Connection>,
) -> wasmtime::Result<Arc<Mutex<rusqlite::Connection>>> {
    accessor.with(|mut access| Ok(access.get().table.get(conn)?.conn.clone()))
}

/// What `execute-async` answers: the column names, a row stream and a completion.
type RowStream = (
    Vec<String>,
    StreamReader<v3::RowResult>,
    FutureReader<Result<(), v3::Error>>,
);

impl<T> v3::HostConnectionWithStore<T> for Sqlite {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v3::Error>> {
        let path = match accessor.with(|mut access| access.get().state.database(&database)) {
            Ok(path) => path,
            Err(f) => return Ok(Err(f.into())),
        };
        match open_connection(path).await? {
            Ok(conn) => accessor.with(|mut access| Ok(Ok(access.get().table.push(conn)?))),
            Err(f) => Ok(Err(f.into())),
        }
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> wasmtime::Result<Result<RowStream, v3::Error>> {
        let conn = connection_of(accessor, &conn)?;
        let params = parameters.into_iter().map(Into::into).collect();
        // The statement runs to completion before the stream opens, so the completion future
        // is always `ok`: an error is the call's own result.
        let Rows { columns, rows } = match run_statement(conn, statement, params).await? {
            Ok(rows) => rows,
            Err(f) => return Ok(Err(f.into())),
        };
        let rows: Vec<v3::RowResult> = rows
            .into_iter()
            .map(|values| v3::RowResult {
                values: values.into_iter().map(Into::into).collect(),
            })
            .collect();
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async {
                Ok::<_, wasmtime::Error>(Ok::<(), v3::Error>(()))
            })?;
            Ok(Ok((columns, rows, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        let conn = connection_of(accessor, &conn)?;
        let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        Ok(conn.last_insert_rowid())
    }

    async fn changes_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<u64> {
        let conn = connection_of(accessor, &conn)?;
        let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        Ok(conn.changes())
    }
}
