//! Host bindings for the Spin interfaces Tessera implements (see wit/tessera.wit).
//!
//! WIT `async` functions (`open-async`, `query-async`, key-value, variables) get an
//! `&Accessor` so they await I/O without holding the store. The older synchronous Postgres
//! and llm functions are generated as Rust `async` too: the guest blocks, the host thread
//! does not.

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
        default: trappable,
    },
    with: {
        "spin:postgres/postgres.connection": crate::factors::postgres::Connection,
        "spin:postgres/postgres.connection-builder": crate::factors::postgres::ConnectionBuilder,
        "spin:key-value/key-value.store": crate::factors::key_value::StoreHandle,
    },
});

/// The cron trigger's export, `fermyon:spin-cron/spin-cron@2.0.0#handle-cron-event`.
pub mod cron {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "fermyon:spin-cron/spin-cron@2.0.0",
        exports: { default: async },
    });
}
