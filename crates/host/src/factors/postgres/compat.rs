//! `fermyon:spin/postgres@2.0.0` (with `rdbms-types`, Spin 2's SDKs) and
//! `spin:postgres/postgres@3.0.0` (Spin 3's), served by the same pools, allow-list and
//! statement handling as `@4`: each call converts its parameters to `@4`'s, runs, and
//! converts the rows back. A column of a type the older interface has no value for arrives
//! as its `unsupported` case, as on Spin.

use super::{Connection, Postgres, PostgresView, connect, run_execute, run_query, traced};
use crate::bindings::compat::spin::postgres::postgres as v3;
use crate::bindings::fermyon::spin::{postgres as v2, rdbms_types as v2t};
use crate::bindings::spin::postgres::postgres as v4;
use crate::state::HostState;
use anyhow::Result;
use wasmtime::component::{Linker, Resource};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    fn view(s: &mut HostState) -> PostgresView<'_> {
        PostgresView {
            state: &mut s.postgres,
            table: &mut s.table,
        }
    }
    v2::add_to_linker::<HostState, Postgres>(linker, view)?;
    v3::add_to_linker::<HostState, Postgres>(linker, view)?;
    Ok(())
}

impl PostgresView<'_> {
    async fn open_v4(
        &mut self,
        address: &str,
    ) -> wasmtime::Result<Result<Resource<Connection>, v4::Error>> {
        let pool = match self.state.authorize(address) {
            Ok(pool) => pool,
            Err(e) => return Ok(Err(e)),
        };
        let spans = self.state.statement_spans();
        Ok(match connect(pool).await {
            Ok(conn) => Ok(self.table.push(conn.traced(spans))?),
            Err(e) => Err(e),
        })
    }

    async fn query_v4(
        &mut self,
        conn: &Resource<Connection>,
        statement: &str,
        params: Result<Vec<v4::ParameterValue>, v4::Error>,
    ) -> wasmtime::Result<Result<v4::RowSet, v4::Error>> {
        let (client, spans) = self.table.get(conn)?.parts();
        Ok(match params {
            Ok(params) => traced(spans, statement, run_query(&client, statement, &params)).await,
            Err(e) => Err(e),
        })
    }

    async fn execute_v4(
        &mut self,
        conn: &Resource<Connection>,
        statement: &str,
        params: Result<Vec<v4::ParameterValue>, v4::Error>,
    ) -> wasmtime::Result<Result<u64, v4::Error>> {
        let (client, spans) = self.table.get(conn)?.parts();
        Ok(match params {
            Ok(params) => traced(spans, statement, run_execute(&client, statement, &params)).await,
            Err(e) => Err(e),
        })
    }
}

fn query_text(q: v4::QueryError) -> String {
    match q {
        v4::QueryError::Text(t) => t,
        v4::QueryError::DbError(d) => d.as_text,
    }
}

// ---- fermyon:spin/postgres@2.0.0 ----

fn v2_error(e: v4::Error) -> v2t::Error {
    match e {
        v4::Error::ConnectionFailed(m) => v2t::Error::ConnectionFailed(m),
        v4::Error::BadParameter(m) => v2t::Error::BadParameter(m),
        v4::Error::QueryFailed(q) => v2t::Error::QueryFailed(query_text(q)),
        v4::Error::ValueConversionFailed(m) => v2t::Error::ValueConversionFailed(m),
        v4::Error::Other(m) => v2t::Error::Other(m),
    }
}

/// Postgres has no unsigned integers: each widens to the next signed type that holds it.
fn v2_params(params: Vec<v2t::ParameterValue>) -> Result<Vec<v4::ParameterValue>, v4::Error> {
    use v2t::ParameterValue as P;
    use v4::ParameterValue as Q;
    params
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(match p {
                P::Boolean(v) => Q::Boolean(v),
                P::Int8(v) => Q::Int8(v),
                P::Int16(v) => Q::Int16(v),
                P::Int32(v) => Q::Int32(v),
                P::Int64(v) => Q::Int64(v),
                P::Uint8(v) => Q::Int16(v.into()),
                P::Uint16(v) => Q::Int32(v.into()),
                P::Uint32(v) => Q::Int64(v.into()),
                P::Uint64(v) => Q::Int64(i64::try_from(v).map_err(|_| {
                    v4::Error::BadParameter(format!(
                        "${}: {v} does not fit Postgres's largest integer (int8)",
                        i + 1
                    ))
                })?),
                P::Floating32(v) => Q::Floating32(v),
                P::Floating64(v) => Q::Floating64(v),
                P::Str(v) => Q::Str(v),
                P::Binary(v) => Q::Binary(v),
                P::DbNull => Q::DbNull,
            })
        })
        .collect()
}

fn v2_rows(set: v4::RowSet) -> v2t::RowSet {
    use v2t::DbDataType as T;
    use v2t::DbValue as V;
    use v4::DbDataType as T4;
    use v4::DbValue as V4;
    v2t::RowSet {
        columns: set
            .columns
            .into_iter()
            .map(|c| v2t::Column {
                name: c.name,
                data_type: match c.data_type {
                    T4::Boolean => T::Boolean,
                    T4::Int8 => T::Int8,
                    T4::Int16 => T::Int16,
                    T4::Int32 => T::Int32,
                    T4::Int64 => T::Int64,
                    T4::Floating32 => T::Floating32,
                    T4::Floating64 => T::Floating64,
                    T4::Str => T::Str,
                    T4::Binary => T::Binary,
                    _ => T::Other,
                },
            })
            .collect(),
        rows: set
            .rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        V4::Boolean(v) => V::Boolean(v),
                        V4::Int8(v) => V::Int8(v),
                        V4::Int16(v) => V::Int16(v),
                        V4::Int32(v) => V::Int32(v),
                        V4::Int64(v) => V::Int64(v),
                        V4::Floating32(v) => V::Floating32(v),
                        V4::Floating64(v) => V::Floating64(v),
                        V4::Str(v) => V::Str(v),
                        V4::Binary(v) => V::Binary(v),
                        V4::DbNull => V::DbNull,
                        _ => V::Unsupported,
                    })
                    .collect()
            })
            .collect(),
    }
}

impl v2::Host for PostgresView<'_> {}

impl v2::HostConnection for PostgresView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v2t::Error>> {
        Ok(self.open_v4(&address).await?.map_err(v2_error))
    }

    async fn query(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<v2t::ParameterValue>,
    ) -> wasmtime::Result<Result<v2t::RowSet, v2t::Error>> {
        Ok(self
            .query_v4(&conn, &statement, v2_params(params))
            .await?
            .map(v2_rows)
            .map_err(v2_error))
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<v2t::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, v2t::Error>> {
        Ok(self
            .execute_v4(&conn, &statement, v2_params(params))
            .await?
            .map_err(v2_error))
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

// ---- spin:postgres/postgres@3.0.0 ----

fn v3_error(e: v4::Error) -> v3::Error {
    match e {
        v4::Error::ConnectionFailed(m) => v3::Error::ConnectionFailed(m),
        v4::Error::BadParameter(m) => v3::Error::BadParameter(m),
        v4::Error::QueryFailed(q) => v3::Error::QueryFailed(query_text(q)),
        v4::Error::ValueConversionFailed(m) => v3::Error::ValueConversionFailed(m),
        v4::Error::Other(m) => v3::Error::Other(m),
    }
}

fn v3_params(params: Vec<v3::ParameterValue>) -> Result<Vec<v4::ParameterValue>, v4::Error> {
    use v3::ParameterValue as P;
    use v4::ParameterValue as Q;
    Ok(params
        .into_iter()
        .map(|p| match p {
            P::Boolean(v) => Q::Boolean(v),
            P::Int8(v) => Q::Int8(v),
            P::Int16(v) => Q::Int16(v),
            P::Int32(v) => Q::Int32(v),
            P::Int64(v) => Q::Int64(v),
            P::Floating32(v) => Q::Floating32(v),
            P::Floating64(v) => Q::Floating64(v),
            P::Str(v) => Q::Str(v),
            P::Binary(v) => Q::Binary(v),
            P::Date(v) => Q::Date(v),
            P::Time(v) => Q::Time(v),
            P::Datetime(v) => Q::Datetime(v),
            P::Timestamp(v) => Q::Timestamp(v),
            P::DbNull => Q::DbNull,
        })
        .collect())
}

fn v3_rows(set: v4::RowSet) -> v3::RowSet {
    use v3::DbDataType as T;
    use v3::DbValue as V;
    use v4::DbDataType as T4;
    use v4::DbValue as V4;
    v3::RowSet {
        columns: set
            .columns
            .into_iter()
            .map(|c| v3::Column {
                name: c.name,
                data_type: match c.data_type {
                    T4::Boolean => T::Boolean,
                    T4::Int8 => T::Int8,
                    T4::Int16 => T::Int16,
                    T4::Int32 => T::Int32,
                    T4::Int64 => T::Int64,
                    T4::Floating32 => T::Floating32,
                    T4::Floating64 => T::Floating64,
                    T4::Str => T::Str,
                    T4::Binary => T::Binary,
                    T4::Date => T::Date,
                    T4::Time => T::Time,
                    T4::Datetime => T::Datetime,
                    T4::Timestamp => T::Timestamp,
                    _ => T::Other,
                },
            })
            .collect(),
        rows: set
            .rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        V4::Boolean(v) => V::Boolean(v),
                        V4::Int8(v) => V::Int8(v),
                        V4::Int16(v) => V::Int16(v),
                        V4::Int32(v) => V::Int32(v),
                        V4::Int64(v) => V::Int64(v),
                        V4::Floating32(v) => V::Floating32(v),
                        V4::Floating64(v) => V::Floating64(v),
                        V4::Str(v) => V::Str(v),
                        V4::Binary(v) => V::Binary(v),
                        V4::Date(v) => V::Date(v),
                        V4::Time(v) => V::Time(v),
                        V4::Datetime(v) => V::Datetime(v),
                        V4::Timestamp(v) => V::Timestamp(v),
                        V4::DbNull => V::DbNull,
                        _ => V::Unsupported,
                    })
                    .collect()
            })
            .collect(),
    }
}

impl v3::Host for PostgresView<'_> {}

impl v3::HostConnection for PostgresView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v3::Error>> {
        Ok(self.open_v4(&address).await?.map_err(v3_error))
    }

    async fn query(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> wasmtime::Result<Result<v3::RowSet, v3::Error>> {
        Ok(self
            .query_v4(&conn, &statement, v3_params(params))
            .await?
            .map(v3_rows)
            .map_err(v3_error))
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, v3::Error>> {
        Ok(self
            .execute_v4(&conn, &statement, v3_params(params))
            .await?
            .map_err(v3_error))
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}
