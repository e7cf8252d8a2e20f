//! The dispatcher's clock: this component also exports `handle-cron-event` (Spin's
//! `fermyon:spin-cron@2.0.0` world, from wit/). Each tick calls this component's own
//! `POST /internal/dispatch` by Spin service chaining (`http://alert.spin.internal`), so the
//! dispatch runs in the async HTTP service with the templates, signing and outbound HTTP:
//! one code path for the immediate attempt after an event and for the retries.
//!
//! The cron export is synchronous, so the request goes through wasi:http 0.2, whose
//! response can be waited for synchronously (`pollable.block`).

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fermyon:spin-cron/spin-cron@2.0.0",
    });
}

use bindings::{Error, Guest, Metadata};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

struct AlertTick;

impl Guest for AlertTick {
    fn handle_cron_event(_metadata: Metadata) -> Result<(), Error> {
        let request = OutgoingRequest::new(Fields::new());
        request
            .set_method(&Method::Post)
            .and(request.set_scheme(Some(&Scheme::Http)))
            .and(request.set_authority(Some("alert.spin.internal")))
            .and(request.set_path_with_query(Some("/internal/dispatch")))
            .map_err(|()| Error::Other("building the dispatch request".into()))?;
        let body = request
            .body()
            .map_err(|()| Error::Other("dispatch request body".into()))?;
        OutgoingBody::finish(body, None)
            .map_err(|e| Error::Other(format!("dispatch request body: {e:?}")))?;
        let pending = outgoing_handler::handle(request, None)
            .map_err(|e| Error::Other(format!("dispatch: {e:?}")))?;
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or_else(|| Error::Other("dispatch: no response".into()))?
            .map_err(|()| Error::Other("dispatch: response taken twice".into()))?
            .map_err(|e| Error::Other(format!("dispatch: {e:?}")))?;
        match response.status() {
            200..=299 => Ok(()),
            status => Err(Error::Other(format!("dispatch answered {status}"))),
        }
    }
}

bindings::export!(AlertTick with_types_in bindings);
