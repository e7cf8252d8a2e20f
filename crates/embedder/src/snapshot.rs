//! For components pre-initialised with the model loaded (the host's Wizer snapshot, see
//! crates/host/src/preinit.rs): loading the model leaves ~200 MB of freed buffers (file
//! bytes, protobuf, the unoptimised graph) still holding data. A snapshot stores only
//! non-zero memory, so zeroing what the allocator holds free shrinks it by that much.

/// Allocates zeroed blocks until the allocator has to grow memory, then frees them all;
/// coarse blocks first, then finer ones. Does nothing off wasm.
pub fn scrub_free_memory() {
    #[cfg(target_arch = "wasm32")]
    for block_size in [1 << 20, 64 << 10, 4 << 10] {
        let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(1024);
        let pages = core::arch::wasm32::memory_size(0);
        loop {
            let block = vec![0u8; block_size];
            if core::arch::wasm32::memory_size(0) != pages {
                break;
            }
            blocks.push(block);
        }
    }
}
