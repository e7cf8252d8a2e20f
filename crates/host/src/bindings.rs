//! Host bindings for the Spin interfaces Tessera implements (see wit/tessera.wit).
//!
//! WIT `async` functions (`open-async`, `query-async`, key-value, variables) get an
//! `&Accessor` so they await I/O without holding the store. The older synchronous Postgres,
//! key-value, SQLite and llm functions are generated as Rust `async` too: the guest blocks,
//! the host thread does not.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "tessera:platform/host",
    imports: {
        "spin:postgres/postgres.[static]connection.open": async | trappable,
        "spin:postgres/postgres.[method]connection.query": async | trappable,
        "spin:postgres/postgres.[method]connection.execute": async | trappable,
        "spin:postgres/postgres.[method]connection-builder.build": async | trappable,
        "fermyon:spin/llm.infer": async | trappable,
        "fermyon:spin/llm.generate-embeddings": async | trappable,
        "fermyon:spin/key-value": async | trappable,
        "fermyon:spin/sqlite": async | trappable,
        "fermyon:spin/postgres": async | trappable,
        "spin:sqlite/sqlite": async | trappable,
        "wasi:keyvalue/store": async | trappable,
        "wasi:keyvalue/atomics": async | trappable,
        "wasi:keyvalue/batch": async | trappable,
        default: trappable,
    },
    with: {
        "spin:postgres/postgres.connection": crate::factors::postgres::Connection,
        "spin:postgres/postgres.connection-builder": crate::factors::postgres::ConnectionBuilder,
        "spin:key-value/key-value.store": crate::factors::key_value::StoreHandle,
        "fermyon:spin/key-value.store": crate::factors::key_value::StoreHandle,
        "wasi:keyvalue/store.bucket": crate::factors::key_value::StoreHandle,
        "wasi:keyvalue/atomics.cas": crate::factors::key_value::Cas,
        "fermyon:spin/sqlite.connection": crate::factors::sqlite::Connection,
        "spin:sqlite/sqlite.connection": crate::factors::sqlite::Connection,
        "fermyon:spin/postgres.connection": crate::factors::postgres::Connection,
        "fermyon:spin/mysql.connection": crate::factors::unconfigured::Unconfigured,
        "fermyon:spin/redis.connection": crate::factors::unconfigured::Unconfigured,
        "fermyon:spin/mqtt.connection": crate::factors::unconfigured::Unconfigured,
        "spin:redis/redis.connection": crate::factors::unconfigured::Unconfigured,
        "spin:mqtt/mqtt.connection": crate::factors::unconfigured::Unconfigured,
        "spin:mysql/mysql.connection": crate::factors::unconfigured::Unconfigured,
    },
});

/// `spin:postgres@3.0.0` (Spin 3's SDKs), from wit/compat: see wit/README.md for why it is
/// a root of its own.
pub mod compat {
    wasmtime::component::bindgen!({
        path: "../../wit/compat",
        world: "tessera:compat/host",
        imports: {
            "spin:postgres/postgres": async | trappable,
            default: trappable,
        },
        with: {
            "spin:postgres/postgres.connection": crate::factors::postgres::Connection,
        },
    });
}

/// The cron trigger's export, `fermyon:spin-cron/spin-cron@2.0.0#handle-cron-event`.
pub mod cron {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "fermyon:spin-cron/spin-cron@2.0.0",
        exports: { default: async },
    });
}
