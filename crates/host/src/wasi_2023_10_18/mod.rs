//! WASI's release candidate `0.2.0-rc-2023-10-18`, as far as Spin 2.0–2.2 Rust apps use it.
//!
//! spin-sdk 2.x (late 2023, before WASI 0.2.0) calls `wasi:http` and its `wasi:io` streams of
//! that candidate directly; the rest of its WASI use goes through libc and the preview 1
//! adapter, which the host supplies at 0.2.x when it makes the module a component
//! (crate::componentize). So this is what such an app still needs:
//!
//! - the candidate's `wasi:io/poll`, `wasi:io/streams`, `wasi:http/types` and
//!   `wasi:http/outgoing-handler` imports, served here from the very resources of
//!   wasmtime-wasi(-http)'s 0.2.x implementation (bindgen's `with` maps each candidate resource
//!   to the 0.2.x host type), each function forwarding to its 0.2.x counterpart with the
//!   candidate's shapes converted ([`io`], [`http`]);
//! - its `wasi:http/incoming-handler@0.2.0-rc-2023-10-18` export. Because the resources are
//!   the same host types, that export's `handle` has exactly the type of 0.2.x's; componentize
//!   renames the export to 0.2.0 ([`INCOMING_HANDLER`]) and the host then serves the component
//!   like any WASIp2 one (one instance per request, the same deadlines and admission).
//!
//! Spin keeps per-candidate translation layers of the same kind (spin-factor-wasi,
//! spin-factor-outbound-http). Components whose libc itself targets a candidate (Spin 2's
//! Python and JavaScript SDKs) need the whole candidate WASI and are not served.

mod http;
mod io;

use crate::state::HostState;
use anyhow::Result;
use wasmtime::component::{HasSelf, Linker, ResourceTable};

/// The candidate's handler export, and the 0.2.x name componentize gives it.
pub const INCOMING_HANDLER: (&str, &str) = (
    "wasi:http/incoming-handler@0.2.0-rc-2023-10-18",
    "wasi:http/incoming-handler@0.2.0",
);

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/wasi-2023-10-18",
        world: "tessera:wasi-2023-10-18/host",
        imports: {
            "wasi:io/poll.poll-list": async | trappable,
            "wasi:io/poll.poll-one": async | trappable,
            "wasi:io/streams.[drop]input-stream": async | trappable,
            "wasi:io/streams.[drop]output-stream": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-read": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-skip": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-and-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-zeroes-and-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-splice": async | trappable,
            "wasi:io/streams.[method]output-stream.forward": async | trappable,
            default: trappable,
        },
        with: {
            "wasi:io/poll.pollable": wasmtime_wasi::p2::DynPollable,
            "wasi:io/streams.input-stream": wasmtime_wasi::p2::DynInputStream,
            "wasi:io/streams.output-stream": wasmtime_wasi::p2::DynOutputStream,
            "wasi:io/streams.error": wasmtime_wasi::p2::IoError,
            "wasi:http/types.fields": wasmtime_wasi_http::FieldMap,
            "wasi:http/types.incoming-request": wasmtime_wasi_http::p2::types::HostIncomingRequest,
            "wasi:http/types.outgoing-request": wasmtime_wasi_http::p2::types::HostOutgoingRequest,
            "wasi:http/types.response-outparam": wasmtime_wasi_http::p2::types::HostResponseOutparam,
            "wasi:http/types.incoming-response": wasmtime_wasi_http::p2::types::HostIncomingResponse,
            "wasi:http/types.outgoing-response": wasmtime_wasi_http::p2::types::HostOutgoingResponse,
            "wasi:http/types.future-incoming-response": wasmtime_wasi_http::p2::types::HostFutureIncomingResponse,
            "wasi:http/types.incoming-body": wasmtime_wasi_http::p2::body::HostIncomingBody,
            "wasi:http/types.outgoing-body": wasmtime_wasi_http::p2::body::HostOutgoingBody,
            "wasi:http/types.future-trailers": wasmtime_wasi_http::p2::body::HostFutureTrailers,
        },
        trappable_error_type: {
            "wasi:io/streams.stream-error" => wasmtime_wasi::p2::StreamError,
        },
    });
}

/// Adds the candidate's interfaces to `linker`, beside WASI 0.2.x and 0.3.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    use bindings::wasi::{http, io};
    use wasmtime_wasi_http::WasiHttp;
    io::poll::add_to_linker::<_, HasSelf<ResourceTable>>(linker, table)?;
    io::streams::add_to_linker::<_, HasSelf<ResourceTable>>(linker, table)?;
    http::types::add_to_linker::<_, WasiHttp>(linker, crate::state::http_view)?;
    http::outgoing_handler::add_to_linker::<_, WasiHttp>(linker, crate::state::http_view)?;
    Ok(())
}

fn table(state: &mut HostState) -> &mut ResourceTable {
    &mut state.table
}
