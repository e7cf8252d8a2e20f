//! Core wasm modules into components, as Spin loads them: Spin's Rust SDK apps are built for
//! `wasm32-wasip1` (the target its templates name) and its TinyGo apps likewise, so their
//! `.wasm` is a core module whose imports and exports wit-bindgen described in custom
//! sections. `spin up` wraps such a module with the WASI preview 1 adapter (spin-componentize);
//! so does this host, with wit-component and the reactor adapter of the wasmtime release it
//! is built on. A component passes through unchanged.
//!
//! A module of Spin 2.0–2.2's Rust SDK exports `wasi:http/incoming-handler` of WASI's release
//! candidate 2023-10-18; its encoding gets that export renamed to 0.2.0, whose `handle` has the
//! same type here (see crate::wasi_2023_10_18), so the host serves it as a WASIp2 component.

use anyhow::{Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

/// Whether `bytes` is a core module (version 1) rather than a component.
pub fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// `bytes` as a component: a core module is encoded with the preview 1 adapter.
pub fn componentize(bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !is_core_module(&bytes) {
        return Ok(bytes);
    }
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .context("reading the core module's component type (the sections wit-bindgen writes)")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("adding the WASI preview 1 adapter")?
        .encode()
        .context("encoding the module as a component")?;
    let (candidate, release) = crate::wasi_2023_10_18::INCOMING_HANDLER;
    rename_export(&component, candidate, release)
}

/// `component` with its top-level export `from` named `to` (unchanged when it has none).
/// Sections are copied byte for byte; only the export section is encoded again.
fn rename_export(component: &[u8], from: &str, to: &str) -> Result<Vec<u8>> {
    use wasm_encoder::reencode::{ReencodeComponent, RoundtripReencoder};
    use wasmparser::{Chunk, Parser, Payload};

    let mut out = wasm_encoder::Component::new();
    let mut parser = Parser::new(0);
    let mut offset = 0;
    let mut renamed = false;
    loop {
        let Chunk::Parsed { consumed, payload } = parser.parse(&component[offset..], true)? else {
            anyhow::bail!("the component ends early");
        };
        offset += consumed;
        match payload {
            Payload::Version { .. } => {}
            Payload::End(_) => break,
            Payload::ComponentExportSection(reader) => {
                let mut exports = wasm_encoder::ComponentExportSection::new();
                for export in reader {
                    let export = export?;
                    let name = if export.name.0 == from {
                        renamed = true;
                        to
                    } else {
                        export.name.0
                    };
                    let ty = export
                        .ty
                        .map(|ty| RoundtripReencoder.component_type_ref(ty))
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    let kind = RoundtripReencoder.component_export_kind(export.kind);
                    exports.export(name, kind, export.index, ty);
                }
                out.section(&exports);
            }
            other => {
                let Some((id, range)) = other.as_section() else {
                    continue;
                };
                // A nested module or component is one section of this one: its bytes follow
                // the header the parser consumed, and are copied, not parsed.
                if matches!(
                    other,
                    Payload::ModuleSection { .. } | Payload::ComponentSection { .. }
                ) {
                    offset += range.len();
                }
                out.section(&wasm_encoder::RawSection {
                    id,
                    data: &component[range],
                });
            }
        }
    }
    if !renamed {
        return Ok(component.to_vec());
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_become_components_and_components_pass_through() {
        // An empty component (layer 1) is not a core module, and is left as it is.
        let component = b"\0asm\x0d\x00\x01\x00".to_vec();
        assert!(!is_core_module(&component));
        assert_eq!(componentize(component.clone()).unwrap(), component);
        // An empty core module becomes a component (with nothing to export, so the host
        // then refuses it for lacking a handler, as it would any such component).
        let module = b"\0asm\x01\x00\x00\x00".to_vec();
        assert!(is_core_module(&module));
        let encoded = componentize(module).unwrap();
        assert!(!is_core_module(&encoded));
        assert_eq!(&encoded[..4], b"\0asm");
        // Not wasm at all: an error, not a panic.
        let err = componentize(b"\0asm\x01\x00\x00\x00garbage".to_vec()).unwrap_err();
        assert!(format!("{err:#}").contains("component type"), "{err:#}");
    }

    /// A component with a nested core module, an empty instance exported as `name`, and a
    /// custom section.
    fn component_exporting(name: &str) -> Vec<u8> {
        let mut c = wasm_encoder::Component::new();
        c.section(&wasm_encoder::ModuleSection(&wasm_encoder::Module::new()));
        let mut instances = wasm_encoder::ComponentInstanceSection::new();
        instances.export_items(Vec::<(&str, wasm_encoder::ComponentExportKind, u32)>::new());
        c.section(&instances);
        let mut exports = wasm_encoder::ComponentExportSection::new();
        exports.export(name, wasm_encoder::ComponentExportKind::Instance, 0, None);
        c.section(&exports);
        c.section(&wasm_encoder::CustomSection {
            name: "note".into(),
            data: b"kept".as_slice().into(),
        });
        c.finish()
    }

    fn export_names(component: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(component) {
            if let wasmparser::Payload::ComponentExportSection(reader) = payload.unwrap() {
                names.extend(reader.into_iter().map(|e| e.unwrap().name.0.to_string()));
            }
        }
        names
    }

    #[test]
    fn the_candidates_handler_export_is_renamed_and_the_rest_copied() {
        let (candidate, release) = crate::wasi_2023_10_18::INCOMING_HANDLER;
        let renamed = rename_export(&component_exporting(candidate), candidate, release).unwrap();
        wasmparser::Validator::new().validate_all(&renamed).unwrap();
        assert_eq!(export_names(&renamed), [release]);
        assert_eq!(
            renamed,
            component_exporting(release),
            "every other byte is kept"
        );
        // Another export: the component is returned as it was.
        let other = component_exporting("wasi:http/incoming-handler@0.2.6");
        assert_eq!(rename_export(&other, candidate, release).unwrap(), other);
        // Not a component: an error, not a panic.
        assert!(rename_export(b"\0asm\x0d\x00\x01\x00garbage", candidate, release).is_err());
    }
}
