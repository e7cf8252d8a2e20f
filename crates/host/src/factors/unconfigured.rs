//! `fermyon:spin/redis@2.0.0`, `fermyon:spin/mqtt@2.0.0` and `fermyon:spin/mysql@2.0.0`, and
//! their WASIp3 successors `spin:redis@3.0.0`, `spin:mqtt@3.0.0`, `spin:mysql@3.0.0`: linked
//! so that components of Spin's SDKs (whose worlds import all of them) start, but this host
//! has no Redis, MQTT or MySQL client. `open` answers with the interface's own
//! error, after the same `allowed_outbound_hosts` check Spin makes first, so a component
//! sees "not allowed" or "not available here", never a trap.

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::fermyon::spin::{mqtt, mysql, rdbms_types, redis};
use crate::bindings::spin::mqtt::mqtt as mqtt3;
use crate::bindings::spin::mysql::mysql as mysql3;
use crate::bindings::spin::redis::redis as redis3;
use crate::state::HostState;
use anyhow::Result;
use std::sync::Arc;
use tessera_manifest::AllowedHosts;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

/// A connection that can never be opened; the type exists so the resources link.
pub struct Unconfigured;

#[derive(Default)]
pub struct UnconfiguredFactor;

pub struct UnconfiguredState {
    allowed: Arc<AllowedHosts>,
    component: Arc<str>,
}

impl Factor for UnconfiguredFactor {
    type InstanceState = UnconfiguredState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        fn view(s: &mut HostState) -> View<'_> {
            View {
                state: &mut s.unconfigured,
                table: &mut s.table,
            }
        }
        redis::add_to_linker::<HostState, Unavailable>(linker, view)?;
        mqtt::add_to_linker::<HostState, Unavailable>(linker, view)?;
        rdbms_types::add_to_linker::<HostState, Unavailable>(linker, view)?;
        mysql::add_to_linker::<HostState, Unavailable>(linker, view)?;
        redis3::add_to_linker::<HostState, Unavailable>(linker, view)?;
        mqtt3::add_to_linker::<HostState, Unavailable>(linker, view)?;
        mysql3::add_to_linker::<HostState, Unavailable>(linker, view)?;
        Ok(())
    }

    fn instance_state(&self, component: &ComponentConfig) -> UnconfiguredState {
        UnconfiguredState {
            allowed: component.allowed_hosts.clone(),
            component: component.id.clone(),
        }
    }
}

pub struct Unavailable;

impl HasData for Unavailable {
    type Data<'a> = View<'a>;
}

pub struct View<'a> {
    state: &'a mut UnconfiguredState,
    table: &'a mut ResourceTable,
}

impl UnconfiguredState {
    /// Whether `address` passes `allowed_outbound_hosts` for `scheme`.
    fn allowed(&self, address: &str, scheme: &str) -> bool {
        match tessera_manifest::outbound::parse_target(address, scheme) {
            Ok(t) => self.allowed.allows(&t.scheme, &t.host, t.port),
            Err(_) => false,
        }
    }

    fn not_available(&self, what: &str) -> String {
        format!(
            "{what} is not available on this host (component {}): it has no {what} client; \
             deploy on Spin with a {what} server for this interface",
            self.component
        )
    }

    fn not_permitted(&self, address: &str) -> String {
        format!(
            "address {address} is not permitted: add it to component.{}.allowed_outbound_hosts",
            self.component
        )
    }
}

impl View<'_> {
    fn allowed(&self, address: &str, scheme: &str) -> bool {
        self.state.allowed(address, scheme)
    }

    fn not_available(&self, what: &str) -> String {
        self.state.not_available(what)
    }
}

/// Why `open` of a 3.0.0 interface fails: it never connects.
enum Refusal {
    /// The address is not in `allowed_outbound_hosts` (message for interfaces that carry one).
    NotPermitted(String),
    /// Allowed, but this host has no client for it.
    NoClient(String),
}

fn refuse_v3<T>(
    accessor: &Accessor<T, Unavailable>,
    address: &str,
    scheme: &str,
    what: &str,
) -> Refusal {
    accessor.with(|mut access| {
        let state = &access.get().state;
        if state.allowed(address, scheme) {
            Refusal::NoClient(state.not_available(what))
        } else {
            Refusal::NotPermitted(state.not_permitted(address))
        }
    })
}

/// What every method of a connection answers: none can exist (`open` never succeeds).
const NO_CONNECTION: &str = "no such connection: this host never opens one";

impl redis::Host for View<'_> {}

impl redis::HostConnection for View<'_> {
    fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Unconfigured>, redis::Error>> {
        if !self.allowed(&address, "redis") {
            return Ok(Err(redis::Error::InvalidAddress));
        }
        Ok(Err(redis::Error::Other(self.not_available("Redis"))))
    }
    fn publish(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<u8>,
    ) -> wasmtime::Result<Result<(), redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn get(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn set(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<u8>,
    ) -> wasmtime::Result<Result<(), redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn incr(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
    ) -> wasmtime::Result<Result<i64, redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn del(
        &mut self,
        _: Resource<Unconfigured>,
        _: Vec<String>,
    ) -> wasmtime::Result<Result<u32, redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn sadd(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<String>,
    ) -> wasmtime::Result<Result<u32, redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn smembers(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
    ) -> wasmtime::Result<Result<Vec<String>, redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn srem(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<String>,
    ) -> wasmtime::Result<Result<u32, redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn execute(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<redis::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<redis::RedisResult>, redis::Error>> {
        Ok(Err(redis::Error::Other(NO_CONNECTION.into())))
    }
    fn drop(&mut self, conn: Resource<Unconfigured>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl mqtt::Host for View<'_> {}

impl mqtt::HostConnection for View<'_> {
    fn open(
        &mut self,
        address: String,
        _username: String,
        _password: String,
        _keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<Unconfigured>, mqtt::Error>> {
        if !self.allowed(&address, "mqtt") {
            return Ok(Err(mqtt::Error::InvalidAddress));
        }
        Ok(Err(mqtt::Error::ConnectionFailed(
            self.not_available("MQTT"),
        )))
    }
    fn publish(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<u8>,
        _: mqtt::Qos,
    ) -> wasmtime::Result<Result<(), mqtt::Error>> {
        Ok(Err(mqtt::Error::Other(NO_CONNECTION.into())))
    }
    fn drop(&mut self, conn: Resource<Unconfigured>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl rdbms_types::Host for View<'_> {}

impl mysql::Host for View<'_> {}

impl mysql::HostConnection for View<'_> {
    fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Unconfigured>, rdbms_types::Error>> {
        if !self.allowed(&address, "mysql") {
            return Ok(Err(rdbms_types::Error::ConnectionFailed(
                self.state.not_permitted(&address),
            )));
        }
        Ok(Err(rdbms_types::Error::ConnectionFailed(
            self.not_available("MySQL"),
        )))
    }
    fn query(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<rdbms_types::ParameterValue>,
    ) -> wasmtime::Result<Result<rdbms_types::RowSet, rdbms_types::Error>> {
        Ok(Err(rdbms_types::Error::Other(NO_CONNECTION.into())))
    }
    fn execute(
        &mut self,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<rdbms_types::ParameterValue>,
    ) -> wasmtime::Result<Result<(), rdbms_types::Error>> {
        Ok(Err(rdbms_types::Error::Other(NO_CONNECTION.into())))
    }
    fn drop(&mut self, conn: Resource<Unconfigured>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl redis3::Host for View<'_> {}

impl redis3::HostConnection for View<'_> {
    fn drop(&mut self, conn: Resource<Unconfigured>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl<T> redis3::HostConnectionWithStore<T> for Unavailable {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Unconfigured>, redis3::Error>> {
        Ok(Err(match refuse_v3(accessor, &address, "redis", "Redis") {
            Refusal::NotPermitted(_) => redis3::Error::InvalidAddress,
            Refusal::NoClient(why) => redis3::Error::Other(why),
        }))
    }
    async fn publish(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<u8>,
    ) -> wasmtime::Result<Result<(), redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn get(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn set(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<u8>,
    ) -> wasmtime::Result<Result<(), redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn incr(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
    ) -> wasmtime::Result<Result<i64, redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn del(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: Vec<String>,
    ) -> wasmtime::Result<Result<u32, redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn sadd(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<String>,
    ) -> wasmtime::Result<Result<u32, redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn smembers(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
    ) -> wasmtime::Result<Result<Vec<String>, redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn srem(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<String>,
    ) -> wasmtime::Result<Result<u32, redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
    async fn execute(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<redis3::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<redis3::RedisResult>, redis3::Error>> {
        Ok(Err(redis3::Error::Other(NO_CONNECTION.into())))
    }
}

impl mqtt3::Host for View<'_> {}

impl mqtt3::HostConnection for View<'_> {
    fn drop(&mut self, conn: Resource<Unconfigured>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl<T> mqtt3::HostConnectionWithStore<T> for Unavailable {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
        _username: String,
        _password: String,
        _keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<Unconfigured>, mqtt3::Error>> {
        Ok(Err(match refuse_v3(accessor, &address, "mqtt", "MQTT") {
            Refusal::NotPermitted(_) => mqtt3::Error::InvalidAddress,
            Refusal::NoClient(why) => mqtt3::Error::ConnectionFailed(why),
        }))
    }
    async fn publish(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<u8>,
        _: mqtt3::Qos,
    ) -> wasmtime::Result<Result<(), mqtt3::Error>> {
        Ok(Err(mqtt3::Error::Other(NO_CONNECTION.into())))
    }
}

impl mysql3::Host for View<'_> {}

impl mysql3::HostConnection for View<'_> {
    fn drop(&mut self, conn: Resource<Unconfigured>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

/// What `query` of `spin:mysql@3.0.0` answers: columns, a row stream and a completion.
type MysqlRows = (
    Vec<mysql3::Column>,
    StreamReader<mysql3::Row>,
    FutureReader<Result<(), mysql3::Error>>,
);

impl<T> mysql3::HostConnectionWithStore<T> for Unavailable {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Unconfigured>, mysql3::Error>> {
        Ok(Err(match refuse_v3(accessor, &address, "mysql", "MySQL") {
            Refusal::NotPermitted(why) | Refusal::NoClient(why) => {
                mysql3::Error::ConnectionFailed(why)
            }
        }))
    }
    async fn query(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<mysql3::ParameterValue>,
    ) -> wasmtime::Result<Result<MysqlRows, mysql3::Error>> {
        Ok(Err(mysql3::Error::Other(NO_CONNECTION.into())))
    }
    async fn execute(
        _: &Accessor<T, Self>,
        _: Resource<Unconfigured>,
        _: String,
        _: Vec<mysql3::ParameterValue>,
    ) -> wasmtime::Result<Result<(), mysql3::Error>> {
        Ok(Err(mysql3::Error::Other(NO_CONNECTION.into())))
    }
}
