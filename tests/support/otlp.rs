//! A collector double for OTLP/HTTP: what a [`TestServer`] received on `/v1/traces`,
//! decoded as the protobuf `ExportTraceServiceRequest`s they are.

use crate::TestServer;

/// One exported span, as the collector double received it.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The resource's `service.name`.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent: String,
    pub name: String,
    pub server: bool,
    pub attributes: Vec<(String, String)>,
}

impl Exported {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every span in the OTLP/HTTP protobuf requests `collector` received.
pub fn exported_spans(collector: &TestServer) -> Vec<Exported> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prost::Message;
    let lines = collector.requests();
    for line in &lines {
        assert!(line.starts_with("POST /v1/traces "), "{lines:?}");
    }
    let mut spans = Vec::new();
    for body in collector.bodies() {
        let request = ExportTraceServiceRequest::decode(body.as_slice())
            .unwrap_or_else(|e| panic!("not an OTLP ExportTraceServiceRequest: {e}"));
        for resource in request.resource_spans {
            let service = match resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone())
            {
                Some(Any::StringValue(name)) => name,
                other => panic!("a resource without a service.name: {other:?}"),
            };
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Exported {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    server: span.kind == SpanKind::Server as i32,
                    name: span.name,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| {
                            let value = match kv.value.and_then(|v| v.value) {
                                Some(Any::StringValue(s)) => s,
                                Some(Any::IntValue(n)) => n.to_string(),
                                other => format!("{other:?}"),
                            };
                            (kv.key, value)
                        })
                        .collect(),
                });
            }
        }
    }
    spans
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits (up to a minute) until the exported spans satisfy `done`, then returns them.
pub fn spans_when(collector: &TestServer, done: impl Fn(&[Exported]) -> bool) -> Vec<Exported> {
    crate::wait_for(std::time::Duration::from_secs(60), || {
        let spans = exported_spans(collector);
        done(&spans).then_some(spans)
    })
    .unwrap_or_else(|| {
        panic!(
            "the spans expected never arrived; exported: {:#?}",
            exported_spans(collector)
        )
    })
}
