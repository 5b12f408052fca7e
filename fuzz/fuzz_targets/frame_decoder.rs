//! Feeds arbitrary bytes to the runtime's frame decoder, as the payload of one frame from a peer:
//! it parses every kind of frame (JSON ones, and binary batches of sealed messages), tries to
//! open a batch, reads its sealed bytes as a batch's plaintext, and decodes a termination's
//! base64. It must never panic, whatever the bytes.
//!
//! `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run frame_decoder`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let _ = dz_runtime_smol::decode_frame_payload(payload);
});
