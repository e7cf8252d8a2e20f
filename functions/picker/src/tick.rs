//! The hourly clock: this component also exports `handle-cron-event` (Spin's
//! `fermyon:spin-cron@2.0.0` world, from wit/). Each tick calls this component's own
//! `POST /internal/cron?ts=<tick>` by Spin service chaining (`http://picker.spin.internal`),
//! where `tessera_picking::schedule::due_jobs` decides what the tick runs; the jobs need the
//! async HTTP service's Postgres and model, so this export only forwards the time.
//!
//! The cron export is synchronous, so the request goes through wasi:http 0.2, whose
//! response can be waited for synchronously (`pollable.block`), as in functions/alert.

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fermyon:spin-cron/spin-cron@2.0.0",
    });
}

use bindings::{Error, Guest, Metadata};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

struct PickerTick;

impl Guest for PickerTick {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let request = OutgoingRequest::new(Fields::new());
        let path = format!("/internal/cron?ts={}", metadata.timestamp);
        request
            .set_method(&Method::Post)
            .and(request.set_scheme(Some(&Scheme::Http)))
            .and(request.set_authority(Some("picker.spin.internal")))
            .and(request.set_path_with_query(Some(&path)))
            .map_err(|()| Error::Other("building the cron request".into()))?;
        let body = request
            .body()
            .map_err(|()| Error::Other("cron request body".into()))?;
        OutgoingBody::finish(body, None)
            .map_err(|e| Error::Other(format!("cron request body: {e:?}")))?;
        let pending = outgoing_handler::handle(request, None)
            .map_err(|e| Error::Other(format!("cron: {e:?}")))?;
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or_else(|| Error::Other("cron: no response".into()))?
            .map_err(|()| Error::Other("cron: response taken twice".into()))?
            .map_err(|e| Error::Other(format!("cron: {e:?}")))?;
        match response.status() {
            200..=299 => Ok(()),
            status => Err(Error::Other(format!("picker cron answered {status}"))),
        }
    }
}

bindings::export!(PickerTick with_types_in bindings);
