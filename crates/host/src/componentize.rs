//! Core wasm modules into components, as Spin loads them: Spin's Rust SDK apps are built for
//! `wasm32-wasip1` (the target its templates name) and its TinyGo apps likewise, so their
//! `.wasm` is a core module whose imports and exports wit-bindgen described in custom
//! sections. `spin up` wraps such a module with the WASI preview 1 adapter (spin-componentize);
//! so does this host, with wit-component and the reactor adapter of the wasmtime release it
//! is built on. A component passes through unchanged.

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
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .context("reading the core module's component type (the sections wit-bindgen writes)")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("adding the WASI preview 1 adapter")?
        .encode()
        .context("encoding the module as a component")
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
}
