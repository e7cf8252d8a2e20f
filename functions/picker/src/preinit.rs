//! The `wizer-initialize` export (world `tessera:platform/preinit`, see wit/tessera.wit):
//! loads the embedding model so the host snapshots an instance that already holds it, and
//! the first discovery run of a fresh instance does not pay the ~0.4 s load (as in
//! functions/kb).

wit_bindgen::generate!({
    path: "../../wit",
    world: "tessera:platform/preinit",
});

struct Preinit;

impl Guest for Preinit {
    fn wizer_initialize() {
        // An error is kept by the model's OnceLock and reported by the first request that
        // needs the model; initialisation itself must not trap.
        let _ = crate::model::load();
        tessera_embedder::snapshot::scrub_free_memory();
    }
}

export!(Preinit);
