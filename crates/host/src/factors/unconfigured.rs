//! `fermyon:spin/redis@2.0.0`, `fermyon:spin/mqtt@2.0.0` and `fermyon:spin/mysql@2.0.0`:
//! linked so that components of Spin 2's SDKs (whose world imports all of them) start, but
//! this host has no Redis, MQTT or MySQL client. `open` answers with the interface's own
//! error, after the same `allowed_outbound_hosts` check Spin makes first, so a component
//! sees "not allowed" or "not available here", never a trap.

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::fermyon::spin::{mqtt, mysql, rdbms_types, redis};
use crate::state::HostState;
use anyhow::Result;
use std::sync::Arc;
use tessera_manifest::AllowedHosts;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

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

impl View<'_> {
    /// Whether `address` passes `allowed_outbound_hosts` for `scheme`.
    fn allowed(&self, address: &str, scheme: &str) -> bool {
        match tessera_manifest::outbound::parse_target(address, scheme) {
            Ok(t) => self.state.allowed.allows(&t.scheme, &t.host, t.port),
            Err(_) => false,
        }
    }

    fn not_available(&self, what: &str) -> String {
        format!(
            "{what} is not available on this host (component {}): it has no {what} client; \
             deploy on Spin with a {what} server for this interface",
            self.state.component
        )
    }
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
            return Ok(Err(rdbms_types::Error::ConnectionFailed(format!(
                "address {address} is not permitted: add it to component.{}.allowed_outbound_hosts",
                self.state.component
            ))));
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
